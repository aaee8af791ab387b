// Original file: proto/magrathea/v1/relay_service.proto

import type { NodeEvent as _magrathea_v1_NodeEvent, NodeEvent__Output as _magrathea_v1_NodeEvent__Output } from '../../magrathea/v1/NodeEvent';
import type { NodeDown as _magrathea_v1_NodeDown, NodeDown__Output as _magrathea_v1_NodeDown__Output } from '../../magrathea/v1/NodeDown';

export interface RelayEvent {
  'node'?: (string);
  /**
   * One WatchNode event of the node, as the daemon sent it.
   */
  'event'?: (_magrathea_v1_NodeEvent | null);
  /**
   * The relay lost (or never had) the node's stream: nothing comes for it until it is back.
   */
  'down'?: (_magrathea_v1_NodeDown | null);
  'kind'?: "event"|"down";
}

export interface RelayEvent__Output {
  'node': (string);
  /**
   * One WatchNode event of the node, as the daemon sent it.
   */
  'event'?: (_magrathea_v1_NodeEvent__Output | null);
  /**
   * The relay lost (or never had) the node's stream: nothing comes for it until it is back.
   */
  'down'?: (_magrathea_v1_NodeDown__Output | null);
  'kind'?: "event"|"down";
}
