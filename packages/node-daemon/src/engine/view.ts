/** Turns the core's records into the wire shapes of magrathea.v1 (gRPC) and into plain summaries (the hook API). */
import type {
  DomainClass,
  DomainInput,
  JobInput,
  JobRefInput,
  NodeInput,
  PhaseInput,
  ReportedState,
  ResetInput,
} from '@magrathea/common';
import type { DomainRecord, JobRecord, JobRef, NodeState } from '../domain';
import {
  draftOf,
  freeForNormal,
  freeForPriority,
  jobPreemptedMs,
  preemptedCpuSeconds,
  preemptedCpuSecondsTotal,
  reportedState,
  victimUnits,
} from '../domain';
import type { DriverStep, Observation, ReleaseMeasurement } from '../hypervisor/hypervisor-driver';

/** What the driver last observed of a domain, and whether it disagrees with the recorded state. */
export interface ObservedInfo extends Observation {
  readonly observedAtMs: number;
  readonly drift: boolean;
}

/** What the domain's last preemption released, and its phases. */
export interface ReleaseInfo extends ReleaseMeasurement {
  readonly atMs: number;
  readonly phases: readonly PhaseInput[];
}

/** The overlay of a failed job kept for debugging. */
export interface KeptOverlayInfo {
  readonly jobId: string;
  readonly file: string;
  readonly bytes: number;
  readonly keptAtMs: number;
}

/** A finished per-job reset, as status and metrics show it. */
export interface ResetInfo {
  /** revert | reboot for a reset, boot for a boot. */
  readonly policy: 'revert' | 'reboot' | 'boot';
  readonly afterJob: string;
  readonly keptFor: string;
  readonly atMs: number;
  readonly millis: number;
  readonly steps: readonly DriverStep[];
  /** '' when it succeeded. */
  readonly error: string;
}

/** What the manager knows of a domain beyond its record (observation, release, flap damping). */
export interface DomainExtras {
  readonly observed?: ObservedInfo | undefined;
  readonly release?: ReleaseInfo | undefined;
  /** Flap damping: drops within the window, and held-out-of-scheduling-until (wall clock, 0: not held). */
  readonly flapCount?: number;
  readonly heldUntilMs?: number;
  /** How much longer the hold lasts, ms (measured on the monotonic clock; 0: not held). */
  readonly heldForMs?: number;
  /** The image the domain runs (set-image's, else the config's). */
  readonly image?: string;
  /** domains[].lifecycle (default persistent). */
  readonly lifecycle?: string;
  readonly reset?: ResetInfo | undefined;
  /** The last boot (policy `boot`). */
  readonly boot?: ResetInfo | undefined;
  /** Overlays kept of failed jobs, oldest first. */
  readonly kept?: readonly KeptOverlayInfo[];
  /** domains[].wakeOnDemand, how much longer a failed boot's back-off lasts (ms), domains[].idleShutdownMs. */
  readonly wakeOnDemand?: boolean;
  readonly wakeBackoffForMs?: number;
  readonly idleShutdownMs?: number;
}

/** One job in the wire shape. */
export function jobView(j: JobRecord, nowMs: number): JobInput {
  return {
    id: j.id,
    preemptible: j.preemptible,
    cpus: j.cpus,
    started_at_ms: j.startedMs,
    preempted_seconds: jobPreemptedMs(j, nowMs) / 1000,
    suspended: j.suspendedSinceMs !== null,
    preemptions: j.preemptions ?? 0,
  };
}

export function jobRefView(j: JobRef): JobRefInput {
  return { domain: j.domain, job_id: j.jobId };
}

/** What CPU-counting mode tells of a domain's CPUs (all 0 in exclusive mode). */
export function domainCpus(
  node: NodeState,
  d: DomainRecord,
): Pick<DomainInput, 'cpus_running' | 'cpus_suspended' | 'cpus_free' | 'cpus_displaceable' | 'per_job_suspension'> {
  const m = node.cpuCounting;
  if (!m) return { cpus_running: 0, cpus_suspended: 0, cpus_free: 0, cpus_displaceable: 0, per_job_suspension: false };
  const ds = node.domains.map(draftOf);
  const sum = (js: readonly JobRecord[]) => js.reduce((s, j) => s + j.cpus, 0);
  const running = d.state === 'running' || d.state === 'running-preemptible';
  return {
    cpus_running: running ? sum(d.jobs.filter((j) => j.suspendedSinceMs === null)) : 0,
    cpus_suspended: sum(d.jobs.filter((j) => j.suspendedSinceMs !== null)),
    cpus_free: Math.max(0, d.class === 'priority' ? freeForPriority(ds, m) : freeForNormal(ds, m)),
    cpus_displaceable: d.class === 'priority' ? victimUnits(ds, m).reduce((s, u) => s + u.cpus, 0) : 0,
    per_job_suspension: m.perJob.includes(d.name),
  };
}

/** Whether a domain's CPU figures (running, suspended, free, displaceable) are the same in two states. */
export function sameCpus(prev: NodeState, before: DomainRecord, next: NodeState, after: DomainRecord): boolean {
  const a = domainCpus(prev, before);
  const b = domainCpus(next, after);
  return (
    a.cpus_running === b.cpus_running &&
    a.cpus_suspended === b.cpus_suspended &&
    a.cpus_free === b.cpus_free &&
    a.cpus_displaceable === b.cpus_displaceable
  );
}

/**
 * One domain in the wire shape of magrathea.v1 (GetNode, WatchNode). With `omitJobs` (the slim
 * records of a Change) the job list is left out and only counted.
 */
export function domainView(
  node: NodeState,
  d: DomainRecord,
  nowMs: number,
  extras: DomainExtras = {},
  omitJobs = false,
): DomainInput {
  const o = extras.observed;
  const r = extras.release;
  const heldForMs = extras.heldForMs ?? 0;
  return {
    flap_count: extras.flapCount ?? 0,
    held_until_ms: heldForMs > 0 ? (extras.heldUntilMs ?? 0) : 0,
    held_for_ms: heldForMs,
    jobs_omitted: omitJobs,
    job_count: d.jobs.length,
    name: d.name,
    image: extras.image ?? '',
    pending_image: d.pendingImage ?? '',
    domain_class: d.class,
    state: reportedState(node, d),
    stored_state: d.state,
    generation: d.generation,
    since_ms: d.sinceMs,
    jobs: omitJobs ? [] : d.jobs.map((j) => jobView(j, nowMs)),
    offline: d.offline,
    offline_reason: d.offlineReason,
    preempted_cpu_seconds: preemptedCpuSeconds(node, d, nowMs),
    preempted_cpu_seconds_total: preemptedCpuSecondsTotal(d, nowMs),
    observed: o
      ? {
          power: o.power,
          memory_bytes: o.memoryBytes,
          cpu_weight: o.cpuWeight,
          cpu_cap: o.cpuCap ?? 0,
          detail: o.detail,
          observed_at_ms: o.observedAtMs,
          drift: o.drift,
        }
      : null,
    down_reason: d.downReason,
    ...domainCpus(node, d),
    last_release: r
      ? {
          at_ms: r.atMs,
          mode: r.mode,
          memory_released_bytes: r.memoryReleasedBytes,
          cpu_weight_before: r.cpuWeightBefore,
          cpu_weight_after: r.cpuWeightAfter,
          phases: [...r.phases],
          outcome: r.outcome ?? '',
          reason: r.reason ?? '',
          steps: (r.steps ?? []).map((x) => ({ name: x.name, millis: x.millis })),
          target_bytes: r.targetBytes ?? 0,
          balloon_bytes: r.balloonBytes ?? 0,
        }
      : null,
    lifecycle: extras.lifecycle ?? 'persistent',
    resetting: d.resetting !== undefined,
    last_reset: extras.reset ? resetView(extras.reset) : null,
    last_boot: extras.boot ? resetView(extras.boot) : null,
    wake_on_demand: extras.wakeOnDemand ?? false,
    wake_backoff_for_ms: extras.wakeBackoffForMs ?? 0,
    idle_shutdown_ms: extras.idleShutdownMs ?? 0,
    kept_overlays: (extras.kept ?? []).map((k) => ({
      job_id: k.jobId,
      file: k.file,
      bytes: k.bytes,
      kept_at_ms: k.keptAtMs,
    })),
  };
}

function resetView(x: ResetInfo): ResetInput {
  return {
    policy: x.policy,
    after_job: x.afterJob,
    at_ms: x.atMs,
    millis: x.millis,
    steps: x.steps.map((st) => ({ name: st.name, millis: st.millis })),
    error: x.error,
    kept_for: x.keptFor,
  };
}

/** One domain's facts as plain typed values, for an edge that does not speak the wire shapes (the hook API). */
export interface DomainSummary {
  readonly name: string;
  readonly class: DomainClass;
  /** Reported state (ARCHITECTURE §3), with the reported-only variants. */
  readonly state: ReportedState;
  readonly generation: number;
  readonly sinceMs: number;
  readonly offline: boolean;
  readonly jobIds: readonly string[];
  /** Preempted CPU-seconds of the host's current work (what ranking uses). */
  readonly preemptedCpuSeconds: number;
  /** Held out of scheduling for flapping, now. */
  readonly held: boolean;
  /** The image the domain runs ('' for none). */
  readonly image: string;
  /** The image the domain is switching to ('' for none). */
  readonly pendingImage: string;
}

/** One domain as a plain summary (the hook API's status). */
export function domainSummary(
  node: NodeState,
  d: DomainRecord,
  nowMs: number,
  extras: DomainExtras = {},
): DomainSummary {
  return {
    name: d.name,
    class: d.class,
    state: reportedState(node, d),
    generation: d.generation,
    sinceMs: d.sinceMs,
    offline: d.offline,
    jobIds: d.jobs.map((j) => j.id),
    preemptedCpuSeconds: preemptedCpuSeconds(node, d, nowMs),
    held: (extras.heldForMs ?? 0) > 0,
    image: extras.image ?? '',
    pendingImage: d.pendingImage ?? '',
  };
}

/** One sample of the host's memory and load. */
export interface HostSample {
  readonly memoryTotalBytes: number;
  readonly memoryAvailableBytes: number;
  readonly load1: number;
  readonly cpus: number;
  readonly sampledAtMs: number;
}

/** The whole node in the wire shape of magrathea.v1. */
export function nodeView(
  name: string,
  driver: string,
  node: NodeState,
  nowMs: number,
  extras: (d: DomainRecord) => DomainExtras,
  host: HostSample | null,
  version = '',
): NodeInput {
  return {
    name,
    version,
    generation: node.generation,
    driver,
    reported_at_ms: nowMs,
    host: host
      ? {
          memory_total_bytes: host.memoryTotalBytes,
          memory_available_bytes: host.memoryAvailableBytes,
          load1: host.load1,
          cpus: host.cpus,
          sampled_at_ms: host.sampledAtMs,
        }
      : null,
    domains: node.domains.map((d) => domainView(node, d, nowMs, extras(d))),
    cpu_counting: node.cpuCounting !== undefined,
    cpus: node.cpuCounting?.cpus ?? 0,
  };
}
