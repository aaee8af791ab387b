// Original file: proto/magrathea/v1/relay_service.proto

import type { NodeEvent as _magrathea_v1_NodeEvent, NodeEvent__Output as _magrathea_v1_NodeEvent__Output } from '../../magrathea/v1/NodeEvent';
import type { NodeDown as _magrathea_v1_NodeDown, NodeDown__Output as _magrathea_v1_NodeDown__Output } from '../../magrathea/v1/NodeDown';
import type { CaughtUp as _magrathea_v1_CaughtUp, CaughtUp__Output as _magrathea_v1_CaughtUp__Output } from '../../magrathea/v1/CaughtUp';

export interface RelayEvent {
  /**
   * Empty on `caught_up`.
   */
  'node'?: (string);
  /**
   * One WatchNode event of the node, as the daemon sent it.
   */
  'event'?: (_magrathea_v1_NodeEvent | null);
  /**
   * The relay lost (or never had) the node's stream: nothing comes for it until it is back.
   */
  'down'?: (_magrathea_v1_NodeDown | null);
  /**
   * Sent once per stream, after the first catch-up (each node's events after its position, the
   * heartbeat saying it missed nothing, or its `down`): what follows is live. A reader that does
   * not know it ignores it (its node is empty).
   */
  'caught_up'?: (_magrathea_v1_CaughtUp | null);
  'kind'?: "event"|"down"|"caught_up";
}

export interface RelayEvent__Output {
  /**
   * Empty on `caught_up`.
   */
  'node': (string);
  /**
   * One WatchNode event of the node, as the daemon sent it.
   */
  'event'?: (_magrathea_v1_NodeEvent__Output | null);
  /**
   * The relay lost (or never had) the node's stream: nothing comes for it until it is back.
   */
  'down'?: (_magrathea_v1_NodeDown__Output | null);
  /**
   * Sent once per stream, after the first catch-up (each node's events after its position, the
   * heartbeat saying it missed nothing, or its `down`): what follows is live. A reader that does
   * not know it ignores it (its node is empty).
   */
  'caught_up'?: (_magrathea_v1_CaughtUp__Output | null);
  'kind'?: "event"|"down"|"caught_up";
}
