// Original file: proto/magrathea/v1/node_service.proto


export interface ListImagesRequest {
}

export interface ListImagesRequest__Output {
}
