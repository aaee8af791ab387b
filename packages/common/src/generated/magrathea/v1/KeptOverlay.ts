// Original file: proto/magrathea/v1/domain.proto

import type { Long } from '@grpc/proto-loader';

/**
 * The overlay of a failed job, kept for debugging (domains[].keepFailed).
 */
export interface KeptOverlay {
  'job_id'?: (string);
  /**
   * Absolute path on the node.
   */
  'file'?: (string);
  'bytes'?: (number | string | Long);
  'kept_at_ms'?: (number | string | Long);
}

/**
 * The overlay of a failed job, kept for debugging (domains[].keepFailed).
 */
export interface KeptOverlay__Output {
  'job_id': (string);
  /**
   * Absolute path on the node.
   */
  'file': (string);
  'bytes': (string);
  'kept_at_ms': (string);
}
