// Original file: proto/magrathea/v1/domain.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A job recorded in a domain.
 */
export interface Job {
  'id'?: (string);
  /**
   * True when the job may be suspended by a priority domain (single-node job in a normal domain).
   */
  'preemptible'?: (boolean);
  'cpus'?: (number);
  /**
   * Wall-clock start time, milliseconds since the Unix epoch.
   */
  'started_at_ms'?: (number | string | Long);
  /**
   * Seconds this job has spent preempted so far (including a preemption still in progress).
   */
  'preempted_seconds'?: (number | string);
  /**
   * True while the job is suspended by a preemption.
   */
  'suspended'?: (boolean);
  /**
   * Times the job has been suspended (CPU-counting mode's anti-starvation rank; the least
   * preempted jobs are chosen first).
   */
  'preemptions'?: (number);
}

/**
 * A job recorded in a domain.
 */
export interface Job__Output {
  'id': (string);
  /**
   * True when the job may be suspended by a priority domain (single-node job in a normal domain).
   */
  'preemptible': (boolean);
  'cpus': (number);
  /**
   * Wall-clock start time, milliseconds since the Unix epoch.
   */
  'started_at_ms': (string);
  /**
   * Seconds this job has spent preempted so far (including a preemption still in progress).
   */
  'preempted_seconds': (number);
  /**
   * True while the job is suspended by a preemption.
   */
  'suspended': (boolean);
  /**
   * Times the job has been suspended (CPU-counting mode's anti-starvation rank; the least
   * preempted jobs are chosen first).
   */
  'preemptions': (number);
}
