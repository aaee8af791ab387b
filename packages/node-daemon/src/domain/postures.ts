/**
 * What the hypervisor driver must do for a committed transition, derived by comparing each
 * domain's "posture" before and after. Ordered as the original did it (reference §1.5):
 * release first (suspend victims, save, shrink, shut down), then take (resume, restore, grow,
 * boot) — so a winner is never grown before its victims have given way, and on wake-up the
 * priority domain is shrunk before the batch domain is resumed.
 */
import type { StoredState } from '@magrathea/common';
import type { DomainRecord, NodeState } from './types';

export type Posture = 'off' | 'booting' | 'idle' | 'active' | 'preempted' | 'saved';

export function postureOf(state: StoredState): Posture {
  switch (state) {
    case 'down':
    case 'down-bootable':
    case 'removed':
      return 'off';
    case 'booting':
      return 'booting';
    case 'free':
    case 'occupied':
    case 'occupied-would-preempt':
      return 'idle';
    case 'running':
    case 'running-preemptible':
      return 'active';
    case 'preempted':
      return 'preempted';
    case 'frozen':
      return 'saved';
  }
}

/** Operations on a whole domain. */
export type DomainOpKind = 'preempt' | 'save' | 'shrink' | 'shutdown' | 'resume' | 'restore' | 'grow' | 'boot';
/** Operations on some jobs of a domain (CPU-counting mode, drivers that can stop one job alone). */
export type JobOpKind = 'stop-jobs' | 'continue-jobs';
/** CPU-counting mode: limits a domain to the CPUs its running jobs hold (drivers that can; skipped by the others). */
export type CapOpKind = 'cap-cpus';
export type DriverOpKind = DomainOpKind | JobOpKind | CapOpKind;

export interface DriverOp {
  readonly op: DriverOpKind;
  readonly domain: string;
  /** The jobs of a job operation. */
  readonly jobs?: readonly string[];
  /** cap-cpus: the domain's CPU cap after the operation and before it (null: no cap). */
  readonly cpus?: number | null;
  readonly fromCpus?: number | null;
}

/** The CPU cap of a domain that runs no job (its OS, the mom and the daemon's own steps still need a little). */
export const IDLE_CPU_CAP = 1;

/**
 * CPU-counting mode: the cap of a domain that is up (idle, running or preempted) is the CPUs of
 * its running (not suspended) jobs, at least IDLE_CPU_CAP; a domain that is off, booting or
 * saved has none (null). Exclusive mode caps nothing.
 */
export function cpuCapOf(node: NodeState, d: DomainRecord): number | null {
  if (!node.cpuCounting) return null;
  const p = postureOf(d.state);
  if (p !== 'idle' && p !== 'active' && p !== 'preempted') return null;
  const running = d.jobs.reduce((s, j) => s + (j.suspendedSinceMs === null ? j.cpus : 0), 0);
  return Math.max(IDLE_CPU_CAP, running);
}

/** `cap-cpus` down is a release (after the stops), `cap-cpus` up a take (before the continues). */
const ORDER: readonly string[] = [
  'preempt',
  'stop-jobs',
  'cap-cpus-down',
  'save',
  'shrink',
  'shutdown',
  'resume',
  'restore',
  'grow',
  'cap-cpus-up',
  'continue-jobs',
  'boot',
];

function orderOf(o: DriverOp): number {
  if (o.op !== 'cap-cpus') return ORDER.indexOf(o.op);
  const down =
    o.cpus !== null && o.cpus !== undefined && o.fromCpus !== null && o.fromCpus !== undefined && o.cpus < o.fromCpus;
  return ORDER.indexOf(down ? 'cap-cpus-down' : 'cap-cpus-up');
}

function opsFor(from: Posture, to: Posture, rebooting: boolean, resetting: boolean): DriverOpKind[] {
  if (from === to) return [];
  switch (to) {
    case 'off':
      return ['shutdown'];
    case 'booting':
      // A per-job reset (lifecycle revert/reboot) throws the VM away in its background boot, and
      // an image switch shuts it down in its own: no graceful shutdown holds up the command.
      if (resetting) return ['boot'];
      return rebooting && from !== 'off' ? ['shutdown', 'boot'] : ['boot'];
    case 'idle':
      if (from === 'active') return ['shrink'];
      if (from === 'preempted') return ['resume', 'shrink'];
      if (from === 'saved') return ['restore', 'shrink'];
      return []; // booting → idle: the boot already brought it up
    case 'active':
      if (from === 'idle') return ['grow'];
      if (from === 'preempted') return ['resume'];
      if (from === 'saved') return ['restore'];
      return ['grow'];
    case 'preempted':
      return ['preempt'];
    case 'saved':
      return ['save'];
  }
}

/**
 * The driver operations that take `prev` to `next`, in execution order. Boots are listed
 * last; the manager runs them in the background (a boot takes seconds) and reports their end
 * as a `boot-complete` or `boot-failed` command.
 */
export function planDriverOps(prev: NodeState, next: NodeState, skip: ReadonlySet<string> = new Set()): DriverOp[] {
  const ops: DriverOp[] = [];
  const perJob = new Set(next.cpuCounting?.perJob ?? []);
  next.domains.forEach((d, i) => {
    const before = prev.domains[i];
    if (!before || skip.has(d.name)) return;
    const from = postureOf(before.state);
    const to = postureOf(d.state);
    for (const op of opsFor(from, to, d.rebooting, d.resetting !== undefined || d.pendingImage !== undefined)) {
      // A domain whose jobs are stopped one by one is never stopped whole: its jobs' own operations do it.
      if (perJob.has(d.name) && (op === 'preempt' || op === 'resume')) continue;
      ops.push({ op, domain: d.name });
    }
    const capBefore = cpuCapOf(prev, before);
    const capAfter = cpuCapOf(next, d);
    if (capAfter !== null && capAfter !== capBefore)
      ops.push({ op: 'cap-cpus', domain: d.name, cpus: capAfter, fromCpus: capBefore });
    if (!perJob.has(d.name) || to === 'off') return;
    const was = new Map(before.jobs.map((k) => [k.id, k]));
    const now = new Map(d.jobs.map((j) => [j.id, j]));
    const stop = d.jobs.filter((j) => j.suspendedSinceMs !== null && was.get(j.id)?.suspendedSinceMs === null);
    // Resumed, or ended while suspended (its processes must be let go to die).
    const cont = before.jobs.filter(
      (k) => k.suspendedSinceMs !== null && (now.get(k.id)?.suspendedSinceMs ?? null) === null,
    );
    if (stop.length > 0) ops.push({ op: 'stop-jobs', domain: d.name, jobs: stop.map((j) => j.id) });
    if (cont.length > 0) ops.push({ op: 'continue-jobs', domain: d.name, jobs: cont.map((j) => j.id) });
  });
  return ops.sort((a, b) => orderOf(a) - orderOf(b));
}

/** The operation that undoes `o` (a cap goes back to the one before it), or null when none does. */
export function inverseOp(o: DriverOp): DriverOp | null {
  if (o.op === 'cap-cpus')
    return { op: 'cap-cpus', domain: o.domain, cpus: o.fromCpus ?? null, fromCpus: o.cpus ?? null };
  const inv = inverseOf(o.op);
  return inv ? { op: inv, domain: o.domain, ...(o.jobs ? { jobs: o.jobs } : {}) } : null;
}

/** The operation that undoes `op` (used to roll back a half-done sequence). */
export function inverseOf(op: DriverOpKind): DriverOpKind | null {
  switch (op) {
    case 'preempt':
      return 'resume';
    case 'resume':
      return 'preempt';
    case 'shrink':
      return 'grow';
    case 'grow':
      return 'shrink';
    case 'save':
      return 'restore';
    case 'restore':
      return 'save';
    case 'stop-jobs':
      return 'continue-jobs';
    case 'continue-jobs':
      return 'stop-jobs';
    case 'cap-cpus':
      return 'cap-cpus'; // with the cap before it: inverseOp
    case 'shutdown':
    case 'boot':
      return null;
  }
}
