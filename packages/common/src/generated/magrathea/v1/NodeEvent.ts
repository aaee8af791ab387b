// Original file: proto/magrathea/v1/node_service.proto

import type { Node as _magrathea_v1_Node, Node__Output as _magrathea_v1_Node__Output } from '../../magrathea/v1/Node';
import type { Change as _magrathea_v1_Change, Change__Output as _magrathea_v1_Change__Output } from '../../magrathea/v1/Change';
import type { Heartbeat as _magrathea_v1_Heartbeat, Heartbeat__Output as _magrathea_v1_Heartbeat__Output } from '../../magrathea/v1/Heartbeat';
import type { Long } from '@grpc/proto-loader';

export interface NodeEvent {
  /**
   * Generation of the change (or of the snapshot; the current one for a heartbeat).
   */
  'generation'?: (number | string | Long);
  'snapshot'?: (_magrathea_v1_Node | null);
  'change'?: (_magrathea_v1_Change | null);
  /**
   * Sent when nothing changed for a while, so an idle daemon is still heard from.
   */
  'heartbeat'?: (_magrathea_v1_Heartbeat | null);
  'kind'?: "snapshot"|"change"|"heartbeat";
}

export interface NodeEvent__Output {
  /**
   * Generation of the change (or of the snapshot; the current one for a heartbeat).
   */
  'generation': (string);
  'snapshot'?: (_magrathea_v1_Node__Output | null);
  'change'?: (_magrathea_v1_Change__Output | null);
  /**
   * Sent when nothing changed for a while, so an idle daemon is still heard from.
   */
  'heartbeat'?: (_magrathea_v1_Heartbeat__Output | null);
  'kind'?: "snapshot"|"change"|"heartbeat";
}
