// Original file: proto/magrathea/v1/relay_service.proto

import type { NodePosition as _magrathea_v1_NodePosition, NodePosition__Output as _magrathea_v1_NodePosition__Output } from '../../magrathea/v1/NodePosition';

export interface WatchNodesRequest {
  'nodes'?: (_magrathea_v1_NodePosition)[];
}

export interface WatchNodesRequest__Output {
  'nodes': (_magrathea_v1_NodePosition__Output)[];
}
