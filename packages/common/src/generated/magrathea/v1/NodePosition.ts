// Original file: proto/magrathea/v1/relay_service.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Where a reader stands on one node.
 */
export interface NodePosition {
  'node'?: (string);
  /**
   * 0: start with a snapshot. Otherwise resume after this generation.
   */
  'since_generation'?: (number | string | Long);
}

/**
 * Where a reader stands on one node.
 */
export interface NodePosition__Output {
  'node': (string);
  /**
   * 0: start with a snapshot. Otherwise resume after this generation.
   */
  'since_generation': (string);
}
