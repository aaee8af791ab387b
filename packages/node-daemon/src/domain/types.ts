/** Data of the pure core: a node's domains, their jobs, and the commands that change them. */
import type { DomainActionName, DomainClass, RefusalReason, StoredState } from '@magrathea/common';

export interface JobRecord {
  readonly id: string;
  readonly preemptible: boolean;
  readonly cpus: number;
  readonly startedMs: number;
  /** Milliseconds spent preempted in finished preemptions. */
  readonly preemptedMs: number;
  /** Start of the preemption in progress, or null when the job is not suspended. */
  readonly suspendedSinceMs: number | null;
  /**
   * Times this job has been suspended (CPU-counting mode's anti-starvation rank: the least
   * preempted jobs are chosen first). Absent in records written before the field existed: 0.
   */
  readonly preemptions?: number;
}

export interface DomainRecord {
  readonly name: string;
  readonly class: DomainClass;
  readonly state: StoredState;
  /** Node generation of this domain's last committed change. */
  readonly generation: number;
  /** Time of the last state change (ms since the epoch). */
  readonly sinceMs: number;
  readonly jobs: readonly JobRecord[];
  readonly offline: boolean;
  readonly offlineReason: string;
  /** Preempted CPU-milliseconds accumulated over the domain's life (finished preemptions). */
  readonly preemptedCpuMsTotal: number;
  /** Why the domain is down (empty when it is not). */
  readonly downReason: string;
  /** True while a reboot (rather than a first boot) is in progress. */
  readonly rebooting: boolean;
  /**
   * A per-job reset in progress (domains[].lifecycle revert or reboot): the domain is `booting`
   * until it is clean again. Absent when none is (and in records written before the field existed).
   */
  readonly resetting?: ResetRecord;
  /** The last job that failed since the last reset ('' or absent: none); its overlay is kept by the reset. */
  readonly failedJob?: string;
  /**
   * The image `set-image` switched the domain to (absent: the configured domains[].image). Set
   * when the switch's boot ends (complete or failed: the overlay is on the new image by then).
   */
  readonly image?: string;
  /**
   * A `set-image` in progress: no job starts; while jobs run the domain drains, then it is
   * `booting` (shut down, new overlay on this image's base, boot) until the boot ends.
   */
  readonly pendingImage?: string;
}

/** What a domain does after each job (domains[].lifecycle). */
export type Lifecycle = 'persistent' | 'revert' | 'reboot';

/** A journalled per-job reset: replayed after a crash, it is run again from the start. */
export interface ResetRecord {
  readonly policy: 'revert' | 'reboot';
  /** The job whose end started the reset. */
  readonly afterJob: string;
  /** A failed job whose overlay the reset keeps ('' for none). */
  readonly keepFor: string;
}

/**
 * CPU-counting mode (opt-in per node): several domains run at once while their jobs' CPUs fit
 * the node, and a priority job suspends only as many batch CPUs as it needs.
 */
export interface CpuCounting {
  /** The node's CPUs: what running jobs may hold in all. */
  readonly cpus: number;
  /**
   * Normal domains whose jobs can be suspended one by one (the driver stops a job's own
   * processes). The others are suspended whole, as in exclusive mode.
   */
  readonly perJob: readonly string[];
}

export interface NodeState {
  /** Bumped once per committed command that changed anything. */
  readonly generation: number;
  /** In configuration order. */
  readonly domains: readonly DomainRecord[];
  /** Present in CPU-counting mode; absent: exclusive mode (the original's, the default). */
  readonly cpuCounting?: CpuCounting;
}

/** A job named with its domain. */
export interface JobRef {
  readonly domain: string;
  readonly jobId: string;
}

interface CommandBase {
  readonly domain: string;
  /** When the command was accepted (ms since the epoch); recorded so replay is deterministic. */
  readonly atMs: number;
}

export interface StartJobCommand extends CommandBase {
  readonly kind: 'start-job';
  readonly jobId: string;
  readonly preemptible: boolean;
  readonly cpus: number;
  /** 0: no fencing. Otherwise the domain's generation must equal it. */
  readonly expectedGeneration: number;
}

export interface EndJobCommand extends CommandBase {
  readonly kind: 'end-job';
  readonly jobId: string;
  /** The job's exit status when the caller knows it (non-zero: the job failed). */
  readonly exitStatus?: number;
  /**
   * The domain's lifecycle when it is not persistent (the manager fills it in from the config,
   * so replay does what the first run did): the domain's last job ending starts a reset.
   */
  readonly reset?: 'revert' | 'reboot';
}

export interface ActionCommand extends CommandBase {
  readonly kind: 'action';
  readonly action: DomainActionName;
  readonly reason: string;
}

/**
 * Switch the domain to another catalogue image (the manager has checked the image is known,
 * differs and the domain is image-backed). With `now`, running jobs are ended as lost.
 */
export interface SetImageCommand extends CommandBase {
  readonly kind: 'set-image';
  readonly image: string;
  readonly now: boolean;
}

/** The driver reports that a boot finished (the domain is ready). */
export interface BootCompleteCommand extends CommandBase {
  readonly kind: 'boot-complete';
}

/** The driver reports that a boot failed. */
export interface BootFailedCommand extends CommandBase {
  readonly kind: 'boot-failed';
  readonly reason: string;
}

/** Reconciliation found the domain's VM gone: it is down and its jobs are lost. */
export interface ObservedDownCommand extends CommandBase {
  readonly kind: 'observed-down';
  readonly reason: string;
}

/**
 * The domain has been up with no job for its idle time (domains[].idleShutdownMs): it goes down.
 * Nothing changes when it has a job, is not idle or is already down (a job started meanwhile).
 */
export interface IdleDownCommand extends CommandBase {
  readonly kind: 'idle-down';
  readonly reason: string;
}

export type Command =
  | StartJobCommand
  | EndJobCommand
  | ActionCommand
  | SetImageCommand
  | BootCompleteCommand
  | BootFailedCommand
  | ObservedDownCommand
  | IdleDownCommand;

export type CommandKind = Command['kind'];

/** A refused command: nothing changes. `unknown-domain` maps to NOT_FOUND, the rest to FAILED_PRECONDITION. */
export interface Refusal {
  readonly ok: false;
  readonly reason: RefusalReason | 'unknown-domain';
  readonly message: string;
}

export interface Accepted {
  readonly ok: true;
  readonly next: NodeState;
  /** True when nothing changed (idempotent repeat, unknown job ended, ...). */
  readonly noop: boolean;
  /** Names of the domains whose record changed. */
  readonly changed: readonly string[];
  readonly preempted: readonly string[];
  readonly resumed: readonly string[];
  /** Jobs dropped because their domain's VM vanished. */
  readonly lostJobs: readonly JobRecord[];
  readonly warning: string;
  /** Jobs suspended by this command (CPU-counting mode; in exclusive mode, those of the preempted domains). */
  readonly suspendedJobs: readonly JobRef[];
  /** Jobs resumed by this command. */
  readonly resumedJobs: readonly JobRef[];
}

export type TransitionResult = Accepted | Refusal;
