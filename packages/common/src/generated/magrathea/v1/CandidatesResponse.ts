// Original file: proto/magrathea/v1/cluster_service.proto

import type { VnodeView as _magrathea_v1_VnodeView, VnodeView__Output as _magrathea_v1_VnodeView__Output } from '../../magrathea/v1/VnodeView';

export interface CandidatesResponse {
  'vnodes'?: (_magrathea_v1_VnodeView)[];
}

export interface CandidatesResponse__Output {
  'vnodes': (_magrathea_v1_VnodeView__Output)[];
}
