// Original file: proto/magrathea/v1/node_service.proto

import type { Long } from '@grpc/proto-loader';

export interface WatchNodeRequest {
  /**
   * 0: start with a snapshot. Otherwise resume after this generation.
   */
  'since_generation'?: (number | string | Long);
}

export interface WatchNodeRequest__Output {
  /**
   * 0: start with a snapshot. Otherwise resume after this generation.
   */
  'since_generation': (string);
}
