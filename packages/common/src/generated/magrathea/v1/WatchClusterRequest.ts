// Original file: proto/magrathea/v1/cluster_service.proto


export interface WatchClusterRequest {
}

export interface WatchClusterRequest__Output {
}
