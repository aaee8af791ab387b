// Original file: proto/magrathea/v1/node_service.proto

import type { Long } from '@grpc/proto-loader';

export interface SetImageResponse {
  'generation'?: (number | string | Long);
  'state'?: (string);
  /**
   * Jobs ended by now (lost: PBS requeues or fails them by their own policy).
   */
  'lost_jobs'?: (string)[];
  /**
   * True when the switch waits for the domain's running jobs to end.
   */
  'waiting_for_jobs'?: (boolean);
}

export interface SetImageResponse__Output {
  'generation': (string);
  'state': (string);
  /**
   * Jobs ended by now (lost: PBS requeues or fails them by their own policy).
   */
  'lost_jobs': (string)[];
  /**
   * True when the switch waits for the domain's running jobs to end.
   */
  'waiting_for_jobs': (boolean);
}
