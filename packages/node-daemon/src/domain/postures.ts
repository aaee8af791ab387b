/**
 * What the hypervisor driver must do for a committed transition, derived by comparing each
 * domain's "posture" before and after. Ordered as the original did it (reference §1.5):
 * release first (suspend victims, save, shrink, shut down), then take (resume, restore, grow,
 * boot) — so a winner is never grown before its victims have given way, and on wake-up the
 * priority domain is shrunk before the batch domain is resumed.
 */
import type { StoredState } from '@magrathea/common';
import type { NodeState } from './types';

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

export type DriverOpKind = 'preempt' | 'save' | 'shrink' | 'shutdown' | 'resume' | 'restore' | 'grow' | 'boot';

export interface DriverOp {
  readonly op: DriverOpKind;
  readonly domain: string;
}

const ORDER: readonly DriverOpKind[] = ['preempt', 'save', 'shrink', 'shutdown', 'resume', 'restore', 'grow', 'boot'];

function opsFor(from: Posture, to: Posture, rebooting: boolean): DriverOpKind[] {
  if (from === to) return [];
  switch (to) {
    case 'off':
      return ['shutdown'];
    case 'booting':
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
  next.domains.forEach((d, i) => {
    const before = prev.domains[i];
    if (!before || skip.has(d.name)) return;
    for (const op of opsFor(postureOf(before.state), postureOf(d.state), d.rebooting)) ops.push({ op, domain: d.name });
  });
  return ops.sort((a, b) => ORDER.indexOf(a.op) - ORDER.indexOf(b.op));
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
    case 'shutdown':
    case 'boot':
      return null;
  }
}
