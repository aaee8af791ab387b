// Original file: proto/magrathea/v1/node_service.proto

import type { Domain as _magrathea_v1_Domain, Domain__Output as _magrathea_v1_Domain__Output } from '../../magrathea/v1/Domain';
import type { JobChange as _magrathea_v1_JobChange, JobChange__Output as _magrathea_v1_JobChange__Output } from '../../magrathea/v1/JobChange';
import type { Long } from '@grpc/proto-loader';

/**
 * One committed change. Slim by design: it carries what changed, never whole job lists, so its
 * size (and the daemon's backlog of changes kept for resuming watchers) grows with what a
 * command touched, not with the jobs a domain holds.
 */
export interface Change {
  /**
   * What caused it: start-job | end-job | action:<name> | boot-complete | boot-failed | observed-down | ...
   */
  'cause'?: (string);
  /**
   * The domain the command named.
   */
  'domain'?: (string);
  'job_id'?: (string);
  /**
   * Every domain whose reported record changed, as it is after the change, with its jobs
   * left out (Domain.jobs_omitted = true, Domain.job_count set): a domain's job list changes
   * only by `job_changes`. (A record with jobs_omitted = false, from a sender that does not
   * slim its changes, carries the whole list and replaces the reader's.)
   */
  'domains'?: (_magrathea_v1_Domain)[];
  'at_ms'?: (number | string | Long);
  /**
   * How the job lists changed. A reader keeps each domain's list from the last snapshot and
   * applies these in order: the jobs after the change are the jobs before, minus `removed`
   * (or none with `cleared`), plus `added`.
   */
  'job_changes'?: (_magrathea_v1_JobChange)[];
}

/**
 * One committed change. Slim by design: it carries what changed, never whole job lists, so its
 * size (and the daemon's backlog of changes kept for resuming watchers) grows with what a
 * command touched, not with the jobs a domain holds.
 */
export interface Change__Output {
  /**
   * What caused it: start-job | end-job | action:<name> | boot-complete | boot-failed | observed-down | ...
   */
  'cause': (string);
  /**
   * The domain the command named.
   */
  'domain': (string);
  'job_id': (string);
  /**
   * Every domain whose reported record changed, as it is after the change, with its jobs
   * left out (Domain.jobs_omitted = true, Domain.job_count set): a domain's job list changes
   * only by `job_changes`. (A record with jobs_omitted = false, from a sender that does not
   * slim its changes, carries the whole list and replaces the reader's.)
   */
  'domains': (_magrathea_v1_Domain__Output)[];
  'at_ms': (string);
  /**
   * How the job lists changed. A reader keeps each domain's list from the last snapshot and
   * applies these in order: the jobs after the change are the jobs before, minus `removed`
   * (or none with `cleared`), plus `added`.
   */
  'job_changes': (_magrathea_v1_JobChange__Output)[];
}
