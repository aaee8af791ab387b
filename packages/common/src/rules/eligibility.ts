/**
 * Which job class a domain accepts now, and how good a place it is (pure, no I/O).
 *
 * A domain accepts jobs of its own class (normal domain → `normal` jobs, priority domain →
 * `priority` jobs) when a start there would be allowed by the node daemon right now, and
 * nothing otherwise. Published to PBS as `resources_available.magrathea`; every chunk of a
 * job asks for exactly one of the tokens, so the unmodified scheduler matches them.
 */

export type JobClass = 'normal' | 'priority';

/** The published token: a job class, or `none`. */
export type MagratheaToken = JobClass | 'none';

export interface DomainFacts {
  readonly class: JobClass;
  /** Reported state name (ARCHITECTURE §3), e.g. `free`, `running-priority`, `occupied-booting`. */
  readonly state: string;
  readonly offline: boolean;
  /** The original's counter: preempted CPU-seconds of the host's current work (see report.ts). */
  readonly preemptedCpuSeconds: number;
  /** False when the node's daemon has not been heard from within the grace period. */
  readonly reachable: boolean;
  /** Held out of scheduling for flapping (the daemon's flap damping). */
  readonly held?: boolean;
  /** The image the domain is switching to (`magrathea domain set-image`; '' or absent: none). */
  readonly pendingImage?: string;
}

/** States in which a start of the domain's own class is allowed now. */
const ACCEPTING = new Set(['free', 'occupied-would-preempt', 'running-preemptible', 'running', 'running-priority']);
const RUNNING = new Set(['running-preemptible', 'running', 'running-priority']);

export interface Eligibility {
  readonly accepts: readonly JobClass[];
  /** Comma-joined string_array value for PBS: the accepted classes, or `none`. */
  readonly token: string;
  /** Higher is better (for `node_sort_key: "magrathea_rank HIGH"`); 0 when nothing is accepted. */
  readonly rank: number;
  /** Why: a short human reason, shown in comments and `Candidates`. */
  readonly reason: string;
}

/**
 * Rank bands reproduce and improve the original's order: pack onto domains already running
 * jobs (300–400), then free domains (200), then would-preempt domains (100–200) with the
 * least accumulated preemption first, so the node that has suffered least is preempted next.
 */
export function eligibility(d: DomainFacts): Eligibility {
  if (!d.reachable) return { accepts: [], token: 'none', rank: 0, reason: 'node daemon unreachable' };
  if (d.offline) return { accepts: [], token: 'none', rank: 0, reason: 'domain offline' };
  if (d.held) return { accepts: [], token: 'none', rank: 0, reason: 'held: flapping (flap damping)' };
  if (d.pendingImage) return { accepts: [], token: 'none', rank: 0, reason: `switching image to ${d.pendingImage}` };
  if (!ACCEPTING.has(d.state)) return { accepts: [], token: 'none', rank: 0, reason: `domain ${d.state}` };
  const accepts: JobClass[] = [d.class];
  if (RUNNING.has(d.state)) return { accepts, token: d.class, rank: 350, reason: `packs onto running domain` };
  if (d.state === 'free') return { accepts, token: d.class, rank: 200, reason: 'free' };
  // occupied-would-preempt: 100 < rank ≤ 199, decreasing with accumulated preemption.
  const penalty = 99 * (1 - 1 / (1 + Math.max(0, d.preemptedCpuSeconds) / 3600));
  return {
    accepts,
    token: d.class,
    rank: Math.round((199 - penalty) * 1000) / 1000,
    reason: `would preempt (victims preempted ${Math.round(d.preemptedCpuSeconds)} cpu-s so far)`,
  };
}
