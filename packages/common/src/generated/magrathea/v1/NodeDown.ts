// Original file: proto/magrathea/v1/relay_service.proto


export interface NodeDown {
  'error'?: (string);
}

export interface NodeDown__Output {
  'error': (string);
}
