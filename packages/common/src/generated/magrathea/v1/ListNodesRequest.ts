// Original file: proto/magrathea/v1/cluster_service.proto


export interface ListNodesRequest {
}

export interface ListNodesRequest__Output {
}
