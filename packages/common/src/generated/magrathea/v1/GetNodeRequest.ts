// Original file: proto/magrathea/v1/node_service.proto


export interface GetNodeRequest {
}

export interface GetNodeRequest__Output {
}
