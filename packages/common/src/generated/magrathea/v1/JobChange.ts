// Original file: proto/magrathea/v1/node_service.proto

import type { Job as _magrathea_v1_Job, Job__Output as _magrathea_v1_Job__Output } from '../../magrathea/v1/Job';

/**
 * The change of one domain's job list.
 */
export interface JobChange {
  'domain'?: (string);
  /**
   * Ids of the jobs that left the domain.
   */
  'removed'?: (string)[];
  /**
   * Every job left the domain (e.g. its VM vanished); `removed` is then empty.
   */
  'cleared'?: (boolean);
  /**
   * Jobs that entered the domain, as they were when they entered (the running figures of a
   * job, preempted_seconds and suspended, are current in snapshots and GetNode only; the
   * domain's own preempted_cpu_seconds is current in every change).
   */
  'added'?: (_magrathea_v1_Job)[];
}

/**
 * The change of one domain's job list.
 */
export interface JobChange__Output {
  'domain': (string);
  /**
   * Ids of the jobs that left the domain.
   */
  'removed': (string)[];
  /**
   * Every job left the domain (e.g. its VM vanished); `removed` is then empty.
   */
  'cleared': (boolean);
  /**
   * Jobs that entered the domain, as they were when they entered (the running figures of a
   * job, preempted_seconds and suspended, are current in snapshots and GetNode only; the
   * domain's own preempted_cpu_seconds is current in every change).
   */
  'added': (_magrathea_v1_Job__Output)[];
}
