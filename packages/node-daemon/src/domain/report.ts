/** What clients see: reported-only state variants and preemption counters, computed at report time. */
import type { ReportedState } from '@magrathea/common';
import type { DomainRecord, JobRecord, NodeState } from './types';
import { isDown, isIdle } from './transition';

/**
 * The reported state name. `occupied-booting` replaces the idle states while another domain
 * boots (the original also masked running domains; we keep their real state, which says more);
 * `running-priority` is a priority domain in `running`.
 */
export function reportedState(node: NodeState, d: DomainRecord): ReportedState {
  if (isIdle(d.state) && node.domains.some((x) => x !== d && x.state === 'booting')) return 'occupied-booting';
  if (d.class === 'priority' && d.state === 'running') return 'running-priority';
  return d.state;
}

/** Milliseconds a job has been preempted, including a preemption in progress. */
export function jobPreemptedMs(j: JobRecord, nowMs: number): number {
  return j.preemptedMs + (j.suspendedSinceMs === null ? 0 : Math.max(0, nowMs - j.suspendedSinceMs));
}

function currentPreemptedCpuMs(d: DomainRecord, nowMs: number): number {
  return d.jobs.reduce((sum, j) => sum + jobPreemptedMs(j, nowMs) * j.cpus, 0);
}

/**
 * The original's counter: for a normal domain, preempted CPU-seconds of its current jobs; for a
 * priority domain, the sum over the host's normal domains (so would-preempt candidates can be
 * ranked by how much their victims have already suffered).
 */
export function preemptedCpuSeconds(node: NodeState, d: DomainRecord, nowMs: number): number {
  if (d.class === 'normal') return currentPreemptedCpuMs(d, nowMs) / 1000;
  return (
    node.domains.filter((x) => x.class === 'normal').reduce((s, x) => s + currentPreemptedCpuMs(x, nowMs), 0) / 1000
  );
}

/** Lifetime preempted CPU-seconds, including preemptions in progress. */
export function preemptedCpuSecondsTotal(d: DomainRecord, nowMs: number): number {
  const inProgress = d.jobs.reduce(
    (s, j) => s + (j.suspendedSinceMs === null ? 0 : Math.max(0, nowMs - j.suspendedSinceMs) * j.cpus),
    0,
  );
  return (d.preemptedCpuMsTotal + inProgress) / 1000;
}

export { isDown };
