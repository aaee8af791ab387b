/** The one interface every hypervisor driver implements (simulated, cgroup, qemu, libvirt). */
import type { CapOpKind, DomainOpKind, JobOpKind, Posture, ResetRecord } from '../domain';

/**
 * Every driver says which domain operations it can do; job operations (stopJobs, continueJobs)
 * and the CPU cap (setCpuCap) only the drivers that can (a driver without a cap runs uncapped).
 */
export type DriverCapabilities = Readonly<Record<DomainOpKind, boolean>> &
  Readonly<Partial<Record<JobOpKind | CapOpKind, boolean>>>;

/** Sends a signal to a process (drivers that own processes get it injected: only main.ts touches `process`). */
export type Signaller = (pid: number, signal: 'SIGTERM' | 'SIGKILL') => void;

export type PowerState = 'running' | 'paused' | 'throttled' | 'saved' | 'shut-off' | 'unknown';

export interface Observation {
  readonly power: PowerState;
  /** Memory the domain holds now, bytes (0 when unknown). */
  readonly memoryBytes: number;
  /** CPU weight now (cgroup v2 scale; 0 when unknown). */
  readonly cpuWeight: number;
  /** Free text, e.g. why a domain cannot run. */
  readonly detail: string;
  /** CPU cap in force, CPUs (quota / period; 0 or absent: none, or the driver has no cap). */
  readonly cpuCap?: number;
}

/** One step of a driver operation and how long it took. */
export interface DriverStep {
  readonly name: string;
  readonly millis: number;
}

/** What a preemption really gave back, as measured by the driver. */
export interface ReleaseMeasurement {
  readonly mode: string;
  readonly memoryReleasedBytes: number;
  readonly cpuWeightBefore: number;
  readonly cpuWeightAfter: number;
  /** reclaim: reached | kept | saved (absent for the other modes). */
  readonly outcome?: string;
  /** Why a reclaim fell short or fell back; '' when it did not. */
  readonly reason?: string;
  /** The driver's own steps (reclaim: stop-jobs, drop-caches, swap-on, balloon, save). */
  readonly steps?: readonly DriverStep[];
  /** Balloon target aimed at and reached, bytes (reclaim). */
  readonly targetBytes?: number;
  readonly balloonBytes?: number;
}

export interface AdoptedDomain {
  readonly name: string;
  /** What the recorded state says the domain should be doing. */
  readonly posture: Posture;
}

export interface HypervisorDriver {
  readonly kind: string;
  /** What this driver can do; an operation it cannot do is refused with reason `unsupported`. */
  readonly capabilities: DriverCapabilities;
  /** Takes over the node's domains at daemon start (they may already be running). */
  start(domains: readonly AdoptedDomain[]): Promise<void>;
  stop(): Promise<void>;
  /** Starts the domain; resolves when it is ready to run jobs. */
  boot(domain: string): Promise<void>;
  shutdown(domain: string): Promise<void>;
  /** Suspends the domain's jobs and shrinks it; returns what was really released. */
  preempt(domain: string): Promise<ReleaseMeasurement>;
  /** Undoes preempt: the domain gets its running allowance back and its jobs continue. */
  resume(domain: string): Promise<void>;
  /** Gives an idle domain its running allowance (CPU weight, memory). */
  grow(domain: string): Promise<void>;
  /** Takes a running domain back to its idle allowance. */
  shrink(domain: string): Promise<void>;
  /** Saves the domain to disk and stops it (freeze). */
  save(domain: string): Promise<void>;
  /** Restores a saved domain and lets it run (defrost). */
  restore(domain: string): Promise<void>;
  observe(domain: string): Promise<Observation>;
  /**
   * CPU-counting mode: stops these jobs of the domain (their own processes), leaving the rest
   * of the domain running. Only drivers with the `stop-jobs` capability.
   */
  stopJobs?(domain: string, jobs: readonly string[]): Promise<void>;
  /**
   * Whether stopJobs reaches this domain's jobs (drivers with `stop-jobs` for some domains only,
   * e.g. qemu: the guests with an agent). Absent: every domain.
   */
  stopsJobsOf?(domain: string): boolean;
  /** Undoes stopJobs (also for a job that ended while stopped, so its processes can exit). */
  continueJobs?(domain: string, jobs: readonly string[]): Promise<void>;
  /**
   * CPU-counting mode: limits the domain to `cpus` CPUs of time (null: no limit). Only drivers
   * with the `cap-cpus` capability; must be safe to repeat.
   */
  setCpuCap?(domain: string, cpus: number | null): Promise<void>;
  /**
   * Per-job lifecycle (domains[].lifecycle revert or reboot): brings the domain back to a clean
   * state after a job, whatever it is doing now (running, half-reset by a crashed daemon, gone),
   * and resolves with its steps once the domain is ready for the next job. Run again from the
   * start after a crash, so every step must be safe to repeat.
   */
  reset?(domain: string, r: ResetRecord): Promise<readonly DriverStep[]>;
  /** The steps of the domain's last boot, where the driver has several (status shows them). */
  lastBootSteps?(domain: string): readonly DriverStep[];
  /**
   * Drivers that see a domain die at once (a QEMU child exiting) report it here, so the daemon
   * reconciles without waiting for the next periodic pass. Deliberate stops are not reported.
   */
  onVanished?(listener: (domain: string) => void): void;
}

export const ALL_CAPABILITIES: DriverCapabilities = {
  preempt: true,
  save: true,
  shrink: true,
  shutdown: true,
  resume: true,
  restore: true,
  grow: true,
  boot: true,
};
