// Original file: proto/magrathea/v1/cluster_service.proto

import type { ListNodesResponse as _magrathea_v1_ListNodesResponse, ListNodesResponse__Output as _magrathea_v1_ListNodesResponse__Output } from '../../magrathea/v1/ListNodesResponse';
import type { NodeView as _magrathea_v1_NodeView, NodeView__Output as _magrathea_v1_NodeView__Output } from '../../magrathea/v1/NodeView';

export interface ClusterEvent {
  'snapshot'?: (_magrathea_v1_ListNodesResponse | null);
  'node'?: (_magrathea_v1_NodeView | null);
  'kind'?: "snapshot"|"node";
}

export interface ClusterEvent__Output {
  'snapshot'?: (_magrathea_v1_ListNodesResponse__Output | null);
  'node'?: (_magrathea_v1_NodeView__Output | null);
  'kind'?: "snapshot"|"node";
}
