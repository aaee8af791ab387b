/** State, class and reason names shared by the daemon, the filter and the CLI (ARCHITECTURE §3). */

/** States the daemon stores and journals. */
export const STORED_STATES = [
  'down',
  'down-bootable',
  'booting',
  'free',
  'occupied-would-preempt',
  'occupied',
  'running-preemptible',
  'running',
  'preempted',
  'frozen',
  'removed',
] as const;
export type StoredState = (typeof STORED_STATES)[number];

/** Variants computed when status is reported, never stored. */
export const REPORTED_ONLY_STATES = ['occupied-booting', 'running-priority'] as const;
export type ReportedOnlyState = (typeof REPORTED_ONLY_STATES)[number];

/** Every state name a client can see. */
export type ReportedState = StoredState | ReportedOnlyState;
export const REPORTED_STATES: readonly ReportedState[] = [...STORED_STATES, ...REPORTED_ONLY_STATES];

export function isReportedState(s: string): s is ReportedState {
  return (REPORTED_STATES as readonly string[]).includes(s);
}

export const DOMAIN_CLASSES = ['normal', 'priority'] as const;
export type DomainClass = (typeof DOMAIN_CLASSES)[number];

export const DOMAIN_ACTIONS = ['boot', 'down', 'reboot', 'freeze', 'defrost', 'offline', 'online', 'remove'] as const;
export type DomainActionName = (typeof DOMAIN_ACTIONS)[number];

export function isDomainAction(s: string): s is DomainActionName {
  return (DOMAIN_ACTIONS as readonly string[]).includes(s);
}

/**
 * Machine-readable reasons for a refused command. They travel in the gRPC trailer
 * `magrathea-reason` and in hook API bodies.
 */
export const REFUSAL_REASONS = [
  'occupied',
  'preempted',
  'booting',
  'down',
  'frozen',
  'removed',
  'offline',
  'frozen-exists',
  'stale-generation',
  'job-elsewhere',
  'has-jobs',
  'not-running',
  'not-priority',
  'not-frozen',
  'not-down',
  'already-offline',
  'driver-failed',
  'unsupported',
  // The journal could not be written (disk full, I/O error): nothing was changed.
  'storage-failed',
  // The state directory was deleted or replaced under the daemon: nothing can be made durable.
  'state-dir-lost',
  // CPU-counting mode: the job's CPUs do not fit the node (even by suspending every preemptible job it may displace).
  'no-free-cpus',
  // set-image: the domain is switching to another image (no job starts until it is up on it).
  'switching-image',
  // set-image: the image is not in the node's catalogue, is the one the domain runs, or the domain runs no catalogue image.
  'unknown-image',
  'same-image',
  'not-image-backed',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Metadata key carrying a refusal reason on gRPC errors. */
export const REASON_METADATA_KEY = 'magrathea-reason';
