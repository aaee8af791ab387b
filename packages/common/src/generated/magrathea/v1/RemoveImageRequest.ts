// Original file: proto/magrathea/v1/node_service.proto


export interface RemoveImageRequest {
  'name'?: (string);
}

export interface RemoveImageRequest__Output {
  'name': (string);
}
