/**
 * Flap damping (pure): a domain that drops (goes down, fails its boot, or is taken offline)
 * more than `maxFlaps` times within `windowMs` is held out of scheduling for `holdMs`; every
 * further drop while held extends the hold. The filter publishes a held domain as accepting
 * nothing, so a VM in a crash loop stops attracting jobs that would be lost with it.
 */
import type { StoredState } from '@magrathea/common';

export interface FlapPolicy {
  readonly maxFlaps: number;
  readonly windowMs: number;
  readonly holdMs: number;
}

export interface FlapRecord {
  /** Times of the drops inside the window, oldest first. */
  readonly drops: readonly number[];
  /** Held out of scheduling until then (ms since the epoch), or 0. */
  readonly heldUntilMs: number;
}

export const NO_FLAPS: FlapRecord = { drops: [], heldUntilMs: 0 };

const DOWN = new Set<StoredState>(['down', 'down-bootable']);

/** Is going from `before` to `after` a drop? (Into a down state, or offline switched on.) */
export function isDrop(
  before: { state: StoredState; offline: boolean },
  after: { state: StoredState; offline: boolean },
): boolean {
  const wentDown = !DOWN.has(before.state) && before.state !== 'removed' && DOWN.has(after.state);
  const wentOffline = !before.offline && after.offline;
  return wentDown || wentOffline;
}

/** Records a drop at `now`. */
export function recordDrop(r: FlapRecord, now: number, p: FlapPolicy): FlapRecord {
  const drops = [...r.drops.filter((t) => now - t < p.windowMs), now];
  const held = drops.length > p.maxFlaps || r.heldUntilMs > now;
  return { drops, heldUntilMs: held ? Math.max(r.heldUntilMs, now + p.holdMs) : r.heldUntilMs };
}

/** Drops within the window as of `now`. */
export function flapCount(r: FlapRecord, now: number, p: FlapPolicy): number {
  return r.drops.filter((t) => now - t < p.windowMs).length;
}
