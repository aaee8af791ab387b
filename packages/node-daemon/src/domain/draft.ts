/** The working copy a transition mutates, and the state predicates both modes share. */
import type { StoredState } from '@magrathea/common';
import type { DomainRecord, JobRecord } from './types';

/** States the recompute rule may reassign. */
const IDLE_STATES: ReadonlySet<StoredState> = new Set(['free', 'occupied', 'occupied-would-preempt']);
const DOWN_STATES: ReadonlySet<StoredState> = new Set(['down', 'down-bootable']);

export function isIdle(state: StoredState): boolean {
  return IDLE_STATES.has(state);
}

export function isDown(state: StoredState): boolean {
  return DOWN_STATES.has(state);
}

/** Holds the machine: runs jobs and is not preempted. */
export function holdsMachine(state: StoredState): boolean {
  return state === 'running' || state === 'running-preemptible';
}

/** Mutable working copy used inside one transition. */
export type Draft = { -readonly [K in keyof DomainRecord]: DomainRecord[K] } & { jobs: JobRecord[] };

export function draftOf(d: DomainRecord): Draft {
  return { ...d, jobs: [...d.jobs] };
}

export function runningStateOf(d: Draft): StoredState {
  if (d.class === 'priority') return 'running';
  return d.jobs.every((j) => j.preemptible) ? 'running-preemptible' : 'running';
}

/** Ends the preemption clock of every suspended job (on resume, or when the job ends). */
export function settleJobs(d: Draft, atMs: number, jobs: JobRecord[]): JobRecord[] {
  return jobs.map((j) => {
    if (j.suspendedSinceMs === null) return j;
    const ms = Math.max(0, atMs - j.suspendedSinceMs);
    d.preemptedCpuMsTotal += ms * j.cpus;
    return { ...j, preemptedMs: j.preemptedMs + ms, suspendedSinceMs: null };
  });
}
