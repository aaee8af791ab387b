// Original file: proto/magrathea/v1/cluster_service.proto

import type { VnodeView as _magrathea_v1_VnodeView, VnodeView__Output as _magrathea_v1_VnodeView__Output } from '../../magrathea/v1/VnodeView';
import type { Long } from '@grpc/proto-loader';

export interface NodeView {
  'name'?: (string);
  'address'?: (string);
  'reachable'?: (boolean);
  /**
   * ms since the epoch of the last message from the daemon.
   */
  'last_seen_ms'?: (number | string | Long);
  'generation'?: (number | string | Long);
  /**
   * Why the node is (or was last) unreachable.
   */
  'error'?: (string);
  'vnodes'?: (_magrathea_v1_VnodeView)[];
  'since_ms'?: (number | string | Long);
}

export interface NodeView__Output {
  'name': (string);
  'address': (string);
  'reachable': (boolean);
  /**
   * ms since the epoch of the last message from the daemon.
   */
  'last_seen_ms': (string);
  'generation': (string);
  /**
   * Why the node is (or was last) unreachable.
   */
  'error': (string);
  'vnodes': (_magrathea_v1_VnodeView__Output)[];
  'since_ms': (string);
}
