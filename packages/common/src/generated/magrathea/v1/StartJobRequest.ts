// Original file: proto/magrathea/v1/node_service.proto

import type { Long } from '@grpc/proto-loader';

export interface StartJobRequest {
  'domain'?: (string);
  'job_id'?: (string);
  'preemptible'?: (boolean);
  /**
   * Default 1.
   */
  'cpus'?: (number);
  /**
   * When set (> 0), refuse with reason stale-generation unless the domain's generation equals it.
   */
  'expected_generation'?: (number | string | Long);
}

export interface StartJobRequest__Output {
  'domain': (string);
  'job_id': (string);
  'preemptible': (boolean);
  /**
   * Default 1.
   */
  'cpus': (number);
  /**
   * When set (> 0), refuse with reason stale-generation unless the domain's generation equals it.
   */
  'expected_generation': (string);
}
