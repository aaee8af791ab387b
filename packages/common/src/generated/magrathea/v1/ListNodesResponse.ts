// Original file: proto/magrathea/v1/cluster_service.proto

import type { NodeView as _magrathea_v1_NodeView, NodeView__Output as _magrathea_v1_NodeView__Output } from '../../magrathea/v1/NodeView';

export interface ListNodesResponse {
  'nodes'?: (_magrathea_v1_NodeView)[];
}

export interface ListNodesResponse__Output {
  'nodes': (_magrathea_v1_NodeView__Output)[];
}
