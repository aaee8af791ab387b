// Original file: proto/magrathea/v1/node_service.proto

import type { Long } from '@grpc/proto-loader';

export interface DomainActionResponse {
  'generation'?: (number | string | Long);
  'state'?: (string);
}

export interface DomainActionResponse__Output {
  'generation': (string);
  'state': (string);
}
