/**
 * Publishes the cluster view to PBS as a manager: changes are coalesced per vnode (only the
 * newest value is written), written in batches through one `qmgr` process per batch with the
 * commands on stdin, never more than one batch in flight, retried with back-off. A batch
 * that opens capacity also starts a scheduling cycle (rate-limited): a changed vnode
 * resource alone does not make PBS schedule.
 */
import type { Logger } from 'pino';
import type { VnodeValues } from '../core';
import { opensCapacity, vnodeValues } from '../core';
import type { NodeChange } from './cluster-view';
import type { FilterConfig } from './config';
import type { Metrics } from './metrics';
import { runProcess } from './run-process';

type PbsConfig = NonNullable<FilterConfig['pbs']>;

interface Pending {
  values: VnodeValues;
  /** Daemon commit times of the changes this value carries (for the latency metric). */
  commits: number[];
}

const same = (a: VnodeValues | undefined, b: VnodeValues): boolean =>
  a !== undefined && a.magrathea === b.magrathea && a.state === b.state && a.rank === b.rank && a.comment === b.comment;

/** One qmgr command setting every published attribute of a vnode. */
export function vnodeCommand(vnode: string, v: VnodeValues): string {
  const comment = v.comment.replace(/["\\\n]/g, ' ').slice(0, 80);
  return `set node ${vnode} resources_available.magrathea = ${v.magrathea}, resources_available.magrathea_state = ${v.state}, resources_available.magrathea_rank = ${v.rank}, comment = "${comment}"`;
}

export class Publisher {
  private pending = new Map<string, Pending>();
  private readonly published = new Map<string, VnodeValues>();
  private inFlight = false;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = 0;
  private retryMs: number;
  private lastKickMs = -Infinity;
  private kickOwed = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly pbs: PbsConfig,
    private readonly deps: { logger: Logger; metrics: Metrics; now: () => number },
  ) {
    this.retryMs = pbs.retryInitialMs;
  }

  /** View listener: queue the new values of the changed domains' vnodes. */
  readonly onView = ({ node, domains, commitAtMs }: NodeChange): void => {
    for (const { after } of domains) {
      if (!after) continue;
      const vnode = after.vnode;
      const values = vnodeValues(node.snapshot, after.snapshot);
      const p = this.pending.get(vnode);
      if (!p && same(this.published.get(vnode), values)) continue;
      const commits = p?.commits ?? [];
      if (commitAtMs > 0 && commits.length < 1000) commits.push(commitAtMs);
      this.pending.set(vnode, { values, commits });
    }
    this.schedule(this.pbs.batchDelayMs);
  };

  /** Arms the flush timer; a sooner flush replaces a later one (an owed kick must not hold back updates). */
  private schedule(delayMs: number): void {
    if (this.stopped || this.inFlight || (this.pending.size === 0 && !this.kickOwed)) return;
    const due = this.deps.now() + delayMs;
    if (this.timer) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, delayMs);
  }

  private async flush(): Promise<void> {
    if (this.inFlight || this.stopped) return;
    const batch = this.pending;
    this.pending = new Map();
    const lines: string[] = [];
    let opens = false;
    for (const [vnode, p] of batch) {
      lines.push(vnodeCommand(vnode, p.values));
      if (opensCapacity(this.published.get(vnode), p.values)) opens = true;
    }
    const now = this.deps.now();
    let kick = false;
    if (opens || this.kickOwed) {
      if (now - this.lastKickMs >= this.pbs.kickMinIntervalMs) kick = true;
      else this.kickOwed = true;
    }
    if (kick) lines.push('set server scheduling = true');
    if (lines.length === 0) return this.settle();
    this.inFlight = true;
    const t0 = this.deps.now();
    const r = await runProcess(
      this.pbs.qmgr,
      this.pbs.server ? [this.pbs.server] : [],
      lines.map((l) => `${l}\n`).join(''),
      this.pbs.qmgrTimeoutMs,
    );
    this.inFlight = false;
    if (r.code === 0) {
      const done = this.deps.now();
      this.retryMs = this.pbs.retryInitialMs;
      this.deps.metrics.batches.inc({ result: 'ok' });
      const oldest = Math.min(...[...batch.values()].flatMap((p) => p.commits), done);
      this.deps.logger.debug(
        { vnodes: batch.size, qmgrMs: done - t0, oldestCommitAgeMs: done - oldest, kick },
        'qmgr batch written',
      );
      if (batch.size > 0) this.deps.metrics.batchSize.observe(batch.size);
      for (const [vnode, p] of batch) {
        this.published.set(vnode, p.values);
        for (const c of p.commits) this.deps.metrics.publicationLatency.observe(Math.max(0, done - c) / 1000);
      }
      if (kick) {
        this.lastKickMs = now;
        this.kickOwed = false;
        this.deps.metrics.kicks.inc();
      }
      this.schedule(
        this.kickOwed && this.pending.size === 0
          ? Math.max(0, this.pbs.kickMinIntervalMs - (done - this.lastKickMs))
          : this.pbs.batchDelayMs,
      );
    } else {
      this.deps.metrics.batches.inc({ result: r.timedOut ? 'timeout' : 'failed' });
      this.deps.logger.error(
        {
          code: r.code,
          timedOut: r.timedOut,
          output: r.output.slice(0, 2000),
          vnodes: batch.size,
          retryMs: this.retryMs,
        },
        'qmgr batch failed; retrying',
      );
      // Put the batch back unless newer values arrived meanwhile (those win).
      for (const [vnode, p] of batch) {
        const newer = this.pending.get(vnode);
        if (newer) newer.commits.unshift(...p.commits);
        else this.pending.set(vnode, p);
      }
      if (kick) this.kickOwed = true;
      const wait = this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, this.pbs.retryMaxMs);
      this.schedule(wait);
    }
    this.settle();
  }

  private settle(): void {
    if (!this.inFlight && this.pending.size === 0 && !this.timer) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  /** Resolves when nothing is pending or in flight (tests, shutdown). */
  idle(): Promise<void> {
    if (!this.inFlight && this.pending.size === 0 && !this.timer) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** What was last written for a vnode. */
  publishedValues(vnode: string): VnodeValues | undefined {
    return this.published.get(vnode);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
