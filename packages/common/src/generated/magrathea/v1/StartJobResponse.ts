// Original file: proto/magrathea/v1/node_service.proto

import type { Phase as _magrathea_v1_Phase, Phase__Output as _magrathea_v1_Phase__Output } from '../../magrathea/v1/Phase';
import type { JobRef as _magrathea_v1_JobRef, JobRef__Output as _magrathea_v1_JobRef__Output } from '../../magrathea/v1/JobRef';
import type { Long } from '@grpc/proto-loader';

export interface StartJobResponse {
  'generation'?: (number | string | Long);
  /**
   * Domains preempted by this start.
   */
  'preempted'?: (string)[];
  /**
   * True when the job was already recorded (idempotent repeat).
   */
  'already_running'?: (boolean);
  /**
   * Reported state of the domain after the start.
   */
  'state'?: (string);
  'phases'?: (_magrathea_v1_Phase)[];
  /**
   * Jobs suspended to make room (CPU-counting mode: only these; exclusive mode: every job of
   * the preempted domains).
   */
  'suspended_jobs'?: (_magrathea_v1_JobRef)[];
}

export interface StartJobResponse__Output {
  'generation': (string);
  /**
   * Domains preempted by this start.
   */
  'preempted': (string)[];
  /**
   * True when the job was already recorded (idempotent repeat).
   */
  'already_running': (boolean);
  /**
   * Reported state of the domain after the start.
   */
  'state': (string);
  'phases': (_magrathea_v1_Phase__Output)[];
  /**
   * Jobs suspended to make room (CPU-counting mode: only these; exclusive mode: every job of
   * the preempted domains).
   */
  'suspended_jobs': (_magrathea_v1_JobRef__Output)[];
}
