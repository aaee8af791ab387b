// Original file: proto/magrathea/v1/node_service.proto


export interface PullImageRequest {
  'name'?: (string);
}

export interface PullImageRequest__Output {
  'name': (string);
}
