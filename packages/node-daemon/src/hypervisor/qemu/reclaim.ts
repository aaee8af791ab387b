/**
 * The `reclaim` preemption of a QEMU domain, and its undoing on resume:
 *
 *   preempt: stop the jobs (SIGSTOP, guest agent) → drop the guest's caches → swap disk on →
 *            inflate the balloon in steps to the target, watching it move, within the deadline →
 *            short of the target: save the domain (onShortfall: save) or keep what was reached;
 *   resume:  (restore if it was saved) → deflate the balloon → swap off → continue the jobs.
 *
 * What was done inside the guest is written to a small record file next to the VM's other
 * files, so a daemon that restarted in between still undoes exactly that. When the agent does
 * not answer (missing, hung), nothing waits longer than agentTimeoutMs per request: the
 * balloon alone does what it can, and that counts as a shortfall (with the reason).
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { DriverStep, ReleaseMeasurement } from '../hypervisor-driver';
import type { GuestMemInfo, JobSelector } from '../guest-agent';
import { GuestAgent, GuestControl } from '../guest-agent';
import type { ReclaimOutcome } from './reclaim-plan';
import { CLOSE_ENOUGH, nextStep, reclaimTarget, shortfallReason, watch } from './reclaim-plan';

const MiB = 1024 * 1024;
/** The Debian guest kernel needs about this much to keep running (reference/hypervisors.md §1). */
export const GUEST_MINIMUM_BYTES = 64 * MiB;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the reclaim needs of the VM and of the driver around it. */
export interface ReclaimContext {
  qmp<T>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  /** QEMU's resident memory now, bytes. */
  rss(): number;
  /** Saves the domain to disk and stops QEMU (the driver's save). */
  save(): Promise<void>;
  readonly agentSocket: string;
  readonly recordFile: string;
}

export interface ReclaimSettings {
  readonly ramBytes: number;
  readonly requestedBytes: number;
  readonly marginBytes: number;
  readonly stepBytes: number;
  readonly deadlineMs: number;
  readonly stallMs: number;
  readonly agentTimeoutMs: number;
  readonly swapOffTimeoutMs: number;
  readonly onShortfall: 'save' | 'keep';
  readonly jobs: JobSelector;
  readonly swap: boolean;
}

/** What was done inside the guest, to be undone on resume. */
export interface ReclaimRecord {
  jobsStopped: boolean;
  swapOn: boolean;
  saved: boolean;
}

export function readRecord(file: string): ReclaimRecord | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    return { jobsStopped: v.jobsStopped === true, swapOn: v.swapOn === true, saved: v.saved === true };
  } catch {
    return null;
  }
}

function writeRecord(file: string, r: ReclaimRecord): void {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(r));
  fs.renameSync(`${file}.tmp`, file);
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function timed<T>(steps: DriverStep[], name: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    steps.push({ name, millis: performance.now() - t0 });
  }
}

async function balloonActual(ctx: ReclaimContext): Promise<number> {
  const r = await ctx.qmp<{ actual?: unknown }>('query-balloon');
  if (typeof r.actual !== 'number') throw new Error('query-balloon returned no actual size');
  return r.actual;
}

/** The guest's available memory from the balloon's statistics (when the agent gave none), or 0. */
async function statsAvailable(ctx: ReclaimContext): Promise<number> {
  try {
    const r = await ctx.qmp<{ stats?: Record<string, number> }>('qom-get', {
      path: '/machine/peripheral/balloon0',
      property: 'guest-stats',
    });
    const a = r.stats?.['stat-available-memory'];
    return typeof a === 'number' && a > 0 ? a : 0;
  } catch {
    return 0;
  }
}

export async function reclaim(ctx: ReclaimContext, s: ReclaimSettings): Promise<ReleaseMeasurement> {
  const steps: DriverStep[] = [];
  const before = ctx.rss();
  const record: ReclaimRecord = { jobsStopped: false, swapOn: false, saved: false };
  writeRecord(ctx.recordFile, record);
  let problem = '';
  let mem: GuestMemInfo | null = null;
  let agent: GuestAgent | null = null;
  try {
    agent = await timed(steps, 'agent-connect', () => GuestAgent.connect(ctx.agentSocket, s.agentTimeoutMs));
    const g = new GuestControl(agent, s.agentTimeoutMs);
    // Recorded before: a request that timed out may still have stopped some of them.
    record.jobsStopped = true;
    writeRecord(ctx.recordFile, record);
    await timed(steps, 'stop-jobs', () => g.stopJobs(s.jobs));
    await timed(steps, 'drop-caches', () => g.dropCaches());
    if (s.swap) {
      record.swapOn = true;
      writeRecord(ctx.recordFile, record);
      await timed(steps, 'swap-on', () => g.swapOn());
    }
    mem = await g.memInfo();
  } catch (err) {
    problem = `guest agent: ${message(err)}`;
  } finally {
    agent?.close();
  }

  const actual0 = await balloonActual(ctx);
  const target = reclaimTarget({
    actualBytes: actual0,
    requestedBytes: s.requestedBytes,
    availableBytes: mem ? mem.availableBytes : await statsAvailable(ctx),
    swapFreeBytes: mem && s.swap ? mem.swapFreeBytes : 0,
    marginBytes: s.marginBytes,
    minimumBytes: GUEST_MINIMUM_BYTES,
  });
  let reached = actual0;
  let stopped: 'deadline' | 'stalled' | null = null;
  await timed(steps, 'balloon', async () => {
    const start = Date.now();
    let step = nextStep(actual0, target, s.stepBytes);
    let lastProgress = start;
    await ctx.qmp('balloon', { value: step });
    for (;;) {
      const d = watch({
        nowMs: Date.now(),
        startMs: start,
        deadlineMs: s.deadlineMs,
        lastProgressMs: lastProgress,
        stallMs: s.stallMs,
        actualBytes: reached,
        stepBytes: step,
        leadBytes: s.stepBytes / 2,
        targetBytes: target,
      });
      if (d === 'reached') return;
      if (d === 'deadline' || d === 'stalled') {
        stopped = d;
        return;
      }
      if (d === 'next-step') {
        step = nextStep(step, target, s.stepBytes);
        lastProgress = Date.now();
        await ctx.qmp('balloon', { value: step });
      }
      await sleep(50);
      const now = await balloonActual(ctx);
      if (now < reached - MiB / 4) lastProgress = Date.now();
      reached = Math.min(reached, now);
    }
  });
  const short = stopped !== null || reached > target + CLOSE_ENOUGH;
  const reasons = [problem];
  if (stopped) reasons.push(shortfallReason(stopped, reached, target, s));
  let outcome: ReclaimOutcome = 'reached';
  if (short || problem) {
    if (s.onShortfall === 'save') {
      await timed(steps, 'save', () => ctx.save());
      record.saved = true;
      writeRecord(ctx.recordFile, record);
      outcome = 'saved';
      reasons.push('escalated to save (onShortfall: save)');
    } else {
      outcome = 'kept';
      reasons.push('kept what was reached (onShortfall: keep)');
    }
  }
  const after = record.saved ? 0 : ctx.rss();
  return {
    mode: 'reclaim',
    memoryReleasedBytes: Math.max(0, before - after),
    cpuWeightBefore: 0,
    cpuWeightAfter: 0,
    outcome,
    reason: outcome === 'reached' && !problem ? '' : reasons.filter(Boolean).join('; '),
    steps,
    targetBytes: target,
    balloonBytes: reached,
  };
}

/**
 * Undoes a reclaim on a running VM (restored first by the caller if it was saved): balloon back
 * to full size, swap off, jobs continued. A swap that cannot be turned off stays on (its pages
 * come back as they are touched) and is returned as the problem; jobs that cannot be continued
 * fail the resume.
 */
export async function unreclaim(
  ctx: ReclaimContext,
  s: ReclaimSettings,
  record: ReclaimRecord,
): Promise<{ steps: DriverStep[]; problem: string }> {
  const steps: DriverStep[] = [];
  let problem = '';
  await timed(steps, 'deflate', async () => {
    await ctx.qmp('balloon', { value: s.ramBytes });
    const until = Date.now() + s.deadlineMs;
    while (Date.now() < until && (await balloonActual(ctx)) < s.ramBytes - CLOSE_ENOUGH) await sleep(50);
  });
  let agent: GuestAgent | null = null;
  const session = async (): Promise<GuestControl> => {
    if (!agent || agent.closed)
      agent = await timed(steps, 'agent-connect', () => GuestAgent.connect(ctx.agentSocket, s.agentTimeoutMs));
    return new GuestControl(agent, s.agentTimeoutMs);
  };
  try {
    if (record.swapOn) {
      try {
        const g = await session();
        await timed(steps, 'swap-off', () => g.swapOff(s.swapOffTimeoutMs));
      } catch (err) {
        problem = `the swap disk stays on: ${message(err)}`;
      }
    }
    // A time-out ends a session: the jobs get a new one.
    if (record.jobsStopped) {
      const g = await session();
      await timed(steps, 'continue-jobs', () => g.continueJobs(s.jobs));
    }
  } finally {
    (agent as GuestAgent | null)?.close();
  }
  fs.rmSync(ctx.recordFile, { force: true });
  return { steps, problem };
}
