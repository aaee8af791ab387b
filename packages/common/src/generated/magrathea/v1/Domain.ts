// Original file: proto/magrathea/v1/domain.proto

import type { Job as _magrathea_v1_Job, Job__Output as _magrathea_v1_Job__Output } from '../../magrathea/v1/Job';
import type { DriverObservation as _magrathea_v1_DriverObservation, DriverObservation__Output as _magrathea_v1_DriverObservation__Output } from '../../magrathea/v1/DriverObservation';
import type { Release as _magrathea_v1_Release, Release__Output as _magrathea_v1_Release__Output } from '../../magrathea/v1/Release';
import type { Reset as _magrathea_v1_Reset, Reset__Output as _magrathea_v1_Reset__Output } from '../../magrathea/v1/Reset';
import type { KeptOverlay as _magrathea_v1_KeptOverlay, KeptOverlay__Output as _magrathea_v1_KeptOverlay__Output } from '../../magrathea/v1/KeptOverlay';
import type { Long } from '@grpc/proto-loader';

export interface Domain {
  'name'?: (string);
  /**
   * normal | priority
   */
  'domain_class'?: (string);
  /**
   * Reported state name (ARCHITECTURE §3), including the reported-only variants
   * occupied-booting and running-priority.
   */
  'state'?: (string);
  /**
   * The stored state the reported one is derived from.
   */
  'stored_state'?: (string);
  /**
   * Node generation of this domain's last committed change.
   */
  'generation'?: (number | string | Long);
  /**
   * Time of the last state change, ms since the Unix epoch.
   */
  'since_ms'?: (number | string | Long);
  'jobs'?: (_magrathea_v1_Job)[];
  'offline'?: (boolean);
  'offline_reason'?: (string);
  /**
   * Preempted CPU-seconds of the jobs now in the domain (the original's counter; for a
   * priority domain the sum over the normal domains of the host).
   */
  'preempted_cpu_seconds'?: (number | string);
  /**
   * Preempted CPU-seconds accumulated over the domain's whole life.
   */
  'preempted_cpu_seconds_total'?: (number | string);
  'observed'?: (_magrathea_v1_DriverObservation | null);
  /**
   * Why the domain is down, when it is.
   */
  'down_reason'?: (string);
  'last_release'?: (_magrathea_v1_Release | null);
  /**
   * Flap damping: drops (down, failed boot, offline) within the damping window.
   */
  'flap_count'?: (number);
  /**
   * Held out of scheduling until then (ms since the epoch) for flapping; 0 when not held.
   */
  'held_until_ms'?: (number | string | Long);
  /**
   * The image the domain runs (domains[].image; published to PBS as resources_available.magrathea_image).
   */
  'image'?: (string);
  /**
   * How much longer the domain is held out of scheduling, ms, as of this message (0: not held).
   * Unlike held_until_ms it does not depend on the daemon's and the reader's wall clocks
   * agreeing (or staying put): a reader counts it down on its own monotonic clock.
   */
  'held_for_ms'?: (number | string | Long);
  /**
   * True when `jobs` is left out of this record: in a Change (see Change.job_changes), where a
   * domain's job list changes only by the change's job_changes. Snapshots and GetNode always
   * carry the whole list (false).
   */
  'jobs_omitted'?: (boolean);
  /**
   * Number of jobs in the domain (set also when `jobs` is omitted).
   */
  'job_count'?: (number);
  /**
   * CPU-counting mode (Node.cpu_counting), else 0: CPUs of the domain's running jobs, of its
   * suspended jobs, what a job of this domain may take now without suspending anything (a batch
   * domain leaves room for the node's suspended jobs), and, for a priority domain, the CPUs of
   * the batch work it would displace at most.
   */
  'cpus_running'?: (number);
  'cpus_suspended'?: (number);
  'cpus_free'?: (number);
  'cpus_displaceable'?: (number);
  /**
   * True when the domain's jobs are suspended one by one (CPU-counting mode, a driver that can
   * stop one job alone); false: the domain is suspended whole.
   */
  'per_job_suspension'?: (boolean);
  /**
   * Per-job lifecycle (numbers from 40 on, kept clear of other additions):
   * persistent | revert | reboot (domains[].lifecycle).
   */
  'lifecycle'?: (string);
  /**
   * True while a per-job reset runs (the domain is booting and takes no job until it is clean).
   */
  'resetting'?: (boolean);
  /**
   * The last reset of the domain (absent before the first).
   */
  'last_reset'?: (_magrathea_v1_Reset | null);
  /**
   * Overlays kept of failed jobs (domains[].keepFailed), oldest first.
   */
  'kept_overlays'?: (_magrathea_v1_KeptOverlay)[];
  /**
   * The domain's last boot (not a per-job reset): policy "boot", its steps (qemu revert domains:
   * new-overlay, restore or boot and golden; others: the whole boot), absent before the first.
   */
  'last_boot'?: (_magrathea_v1_Reset | null);
  /**
   * The image the domain is switching to (magrathea domain set-image), '' when it is not: the
   * domain takes no new job meanwhile (published as magrathea=none).
   */
  'pending_image'?: (string);
  /**
   * Wake on demand (numbers from 50 on, kept clear of other additions; domains[].wakeOnDemand):
   * the filter boots the domain, when it is down-bootable, for a queued job that asks for its image.
   */
  'wake_on_demand'?: (boolean);
  /**
   * After a failed boot, how much longer the domain is not offered for a wake-up, ms, as of this
   * message (domains[].bootBackoffMs; 0: it is offered). A duration, like held_for_ms.
   */
  'wake_backoff_for_ms'?: (number | string | Long);
  /**
   * domains[].idleShutdownMs: the domain goes down after this long up with no job (0: never).
   */
  'idle_shutdown_ms'?: (number | string | Long);
}

export interface Domain__Output {
  'name': (string);
  /**
   * normal | priority
   */
  'domain_class': (string);
  /**
   * Reported state name (ARCHITECTURE §3), including the reported-only variants
   * occupied-booting and running-priority.
   */
  'state': (string);
  /**
   * The stored state the reported one is derived from.
   */
  'stored_state': (string);
  /**
   * Node generation of this domain's last committed change.
   */
  'generation': (string);
  /**
   * Time of the last state change, ms since the Unix epoch.
   */
  'since_ms': (string);
  'jobs': (_magrathea_v1_Job__Output)[];
  'offline': (boolean);
  'offline_reason': (string);
  /**
   * Preempted CPU-seconds of the jobs now in the domain (the original's counter; for a
   * priority domain the sum over the normal domains of the host).
   */
  'preempted_cpu_seconds': (number);
  /**
   * Preempted CPU-seconds accumulated over the domain's whole life.
   */
  'preempted_cpu_seconds_total': (number);
  'observed': (_magrathea_v1_DriverObservation__Output | null);
  /**
   * Why the domain is down, when it is.
   */
  'down_reason': (string);
  'last_release': (_magrathea_v1_Release__Output | null);
  /**
   * Flap damping: drops (down, failed boot, offline) within the damping window.
   */
  'flap_count': (number);
  /**
   * Held out of scheduling until then (ms since the epoch) for flapping; 0 when not held.
   */
  'held_until_ms': (string);
  /**
   * The image the domain runs (domains[].image; published to PBS as resources_available.magrathea_image).
   */
  'image': (string);
  /**
   * How much longer the domain is held out of scheduling, ms, as of this message (0: not held).
   * Unlike held_until_ms it does not depend on the daemon's and the reader's wall clocks
   * agreeing (or staying put): a reader counts it down on its own monotonic clock.
   */
  'held_for_ms': (string);
  /**
   * True when `jobs` is left out of this record: in a Change (see Change.job_changes), where a
   * domain's job list changes only by the change's job_changes. Snapshots and GetNode always
   * carry the whole list (false).
   */
  'jobs_omitted': (boolean);
  /**
   * Number of jobs in the domain (set also when `jobs` is omitted).
   */
  'job_count': (number);
  /**
   * CPU-counting mode (Node.cpu_counting), else 0: CPUs of the domain's running jobs, of its
   * suspended jobs, what a job of this domain may take now without suspending anything (a batch
   * domain leaves room for the node's suspended jobs), and, for a priority domain, the CPUs of
   * the batch work it would displace at most.
   */
  'cpus_running': (number);
  'cpus_suspended': (number);
  'cpus_free': (number);
  'cpus_displaceable': (number);
  /**
   * True when the domain's jobs are suspended one by one (CPU-counting mode, a driver that can
   * stop one job alone); false: the domain is suspended whole.
   */
  'per_job_suspension': (boolean);
  /**
   * Per-job lifecycle (numbers from 40 on, kept clear of other additions):
   * persistent | revert | reboot (domains[].lifecycle).
   */
  'lifecycle': (string);
  /**
   * True while a per-job reset runs (the domain is booting and takes no job until it is clean).
   */
  'resetting': (boolean);
  /**
   * The last reset of the domain (absent before the first).
   */
  'last_reset': (_magrathea_v1_Reset__Output | null);
  /**
   * Overlays kept of failed jobs (domains[].keepFailed), oldest first.
   */
  'kept_overlays': (_magrathea_v1_KeptOverlay__Output)[];
  /**
   * The domain's last boot (not a per-job reset): policy "boot", its steps (qemu revert domains:
   * new-overlay, restore or boot and golden; others: the whole boot), absent before the first.
   */
  'last_boot': (_magrathea_v1_Reset__Output | null);
  /**
   * The image the domain is switching to (magrathea domain set-image), '' when it is not: the
   * domain takes no new job meanwhile (published as magrathea=none).
   */
  'pending_image': (string);
  /**
   * Wake on demand (numbers from 50 on, kept clear of other additions; domains[].wakeOnDemand):
   * the filter boots the domain, when it is down-bootable, for a queued job that asks for its image.
   */
  'wake_on_demand': (boolean);
  /**
   * After a failed boot, how much longer the domain is not offered for a wake-up, ms, as of this
   * message (domains[].bootBackoffMs; 0: it is offered). A duration, like held_for_ms.
   */
  'wake_backoff_for_ms': (string);
  /**
   * domains[].idleShutdownMs: the domain goes down after this long up with no job (0: never).
   */
  'idle_shutdown_ms': (string);
}
