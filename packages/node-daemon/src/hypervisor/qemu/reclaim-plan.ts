/**
 * The pure core of the `reclaim` preemption (no I/O): how low the balloon may go, the next
 * step of the inflation, and when to stop watching it (the original's loop: inflate in steps,
 * watch the balloon move, give up when it stops moving or the deadline passes).
 */

const MiB = 1024 * 1024;

export interface TargetInput {
  /** Where the balloon is now (QEMU's `actual`), bytes. */
  readonly actualBytes: number;
  /** What the configuration asks a reclaimed domain to keep, bytes. */
  readonly requestedBytes: number;
  /** What the guest can give without swapping (its MemAvailable), bytes. */
  readonly availableBytes: number;
  /** Free swap in the guest (0 without a swap disk), bytes. */
  readonly swapFreeBytes: number;
  /** Left to the guest above what it uses, bytes. */
  readonly marginBytes: number;
  /** Never below this, whatever the figures say (the guest kernel's own minimum), bytes. */
  readonly minimumBytes: number;
}

/**
 * The balloon target of a reclaim: as low as asked, but the guest keeps what it uses that can
 * go neither to its swap nor away as cache, plus the margin; never above where it is now.
 */
export function reclaimTarget(i: TargetInput): number {
  const movable = Math.max(0, i.availableBytes) + Math.max(0, i.swapFreeBytes);
  const mustKeep = Math.max(0, i.actualBytes - movable) + Math.max(0, i.marginBytes);
  const t = Math.max(i.requestedBytes, i.minimumBytes, mustKeep);
  return Math.max(0, Math.min(i.actualBytes, t));
}

/** The next balloon value: one step below `current`, never below `target`. */
export function nextStep(currentBytes: number, targetBytes: number, stepBytes: number): number {
  return Math.max(targetBytes, currentBytes - Math.max(MiB, stepBytes));
}

export interface WatchState {
  readonly nowMs: number;
  /** When the reclaim started (its deadline counts from here). */
  readonly startMs: number;
  readonly deadlineMs: number;
  /** Last time the balloon reached a new low. */
  readonly lastProgressMs: number;
  /** No new low for this long: the guest gives no more. */
  readonly stallMs: number;
  readonly actualBytes: number;
  /** The value the balloon was last set to. */
  readonly stepBytes: number;
  /** How far above the current step the balloon may still be when the next step is set. */
  readonly leadBytes: number;
  readonly targetBytes: number;
}

export type WatchDecision = 'reached' | 'next-step' | 'wait' | 'deadline' | 'stalled';

/** Within this of a value counts as there (the guest balloons in pages, QEMU reports in bytes). */
export const CLOSE_ENOUGH = MiB;

export function watch(s: WatchState): WatchDecision {
  if (s.actualBytes <= s.targetBytes + CLOSE_ENOUGH) return 'reached';
  if (s.nowMs - s.startMs >= s.deadlineMs) return 'deadline';
  // The next step is set when the balloon is half-way into the current one, so the guest never
  // waits for the host between steps.
  if (s.actualBytes <= s.stepBytes + Math.max(CLOSE_ENOUGH, s.leadBytes)) return 'next-step';
  if (s.nowMs - s.lastProgressMs >= s.stallMs) return 'stalled';
  return 'wait';
}

export type ReclaimOutcome = 'reached' | 'kept' | 'saved' | 'failed';

/** A reclaim's report line: what was reached against what was asked, and why it stopped. */
export function shortfallReason(
  why: 'deadline' | 'stalled',
  reachedBytes: number,
  targetBytes: number,
  ms: { deadlineMs: number; stallMs: number },
): string {
  const r = Math.round(reachedBytes / MiB);
  const t = Math.round(targetBytes / MiB);
  return why === 'deadline'
    ? `the balloon reached ${r} MiB of the ${t} MiB target before reclaimDeadlineMs (${ms.deadlineMs} ms)`
    : `the balloon stopped at ${r} MiB of the ${t} MiB target (no progress for ${ms.stallMs} ms)`;
}
