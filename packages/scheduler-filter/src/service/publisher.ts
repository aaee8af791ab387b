/**
 * Publishes the cluster view to PBS as a manager: changes are coalesced per vnode (only the
 * newest value is written), written in batches through one `qmgr` process per batch with the
 * commands on stdin, never more than one batch in flight, retried with back-off. A batch
 * that opens capacity also starts a scheduling cycle (rate-limited): a changed vnode
 * resource alone does not make PBS schedule.
 *
 * qmgr's exit status reflects only the last command of a batch, so success is read from its
 * error lines (`qmgr obj=VNODE svr=…: message`): a vnode PBS refused is retried on its own with
 * back-off and logged once per reason, the others count as written. What PBS holds is compared
 * with what was written (`reassert`, fed by PbsWatch) and written again where it differs.
 */
import type { VnodeValues } from '../core';
import { opensCapacity } from '../core';
import { vnodeValues } from '../core';
import type { NodeChange } from './cluster-view';
import { DOMAIN_NAME } from '@magrathea/common/rules';
import type { FilterConfig } from './config';
import { VNODE } from './config';
import { qmgrObjectErrors, runProcess } from './run-process';
import type { PbsCallerDeps } from './run-process';

type PbsConfig = NonNullable<FilterConfig['pbs']>;

interface Pending {
  values: VnodeValues;
  /** Daemon commit times of the changes this value carries (for the latency metric). */
  commits: number[];
  /** Not before this time (a vnode PBS refused waits out its back-off), ms. */
  notBefore: number;
  /** Consecutive refusals of this vnode (its back-off grows with them). */
  failures: number;
}

/** What PBS holds for a vnode (from pbsnodes). */
export interface HeldValues {
  readonly magrathea: string | null;
  readonly state: string | null;
  readonly rank: number | null;
  readonly image: string | null;
  /** resources_available.magrathea_cpus (null: unset). */
  readonly cpus?: number | null;
  readonly comment: string;
}

const same = (a: VnodeValues | undefined, b: VnodeValues): boolean =>
  a !== undefined &&
  a.magrathea === b.magrathea &&
  a.state === b.state &&
  a.rank === b.rank &&
  a.comment === b.comment &&
  a.image === b.image &&
  a.cpus === b.cpus;

/** A comment as qmgr gets it: printable ASCII without quotes or backslashes, at most 80 characters. */
export const sanitizeComment = (c: string): string => c.replace(/[^\x20-\x7e]|["\\]/g, ' ').slice(0, 80);

/** A value that may not be written into a qmgr command. */
export class PbsValueError extends Error {
  override readonly name = 'PbsValueError';
}

const TOKEN = /^(?:none|(?:normal|priority)(?:,(?:normal|priority))*)$/;
const STATE = /^[a-z][a-z-]{0,39}$/;

/**
 * One qmgr command setting every published attribute of a vnode (the image only when the domain
 * has one). Every value is checked against what qmgr may get here, whatever produced it: a
 * value that does not fit throws PbsValueError and nothing is written for the vnode.
 */
export function vnodeCommand(vnode: string, v: VnodeValues, withImage = true, withCpus = true): string {
  if (!VNODE.test(vnode)) throw new PbsValueError(`vnode name ${JSON.stringify(vnode.slice(0, 80))} is not writable`);
  if (!TOKEN.test(v.magrathea)) throw new PbsValueError(`magrathea value ${JSON.stringify(v.magrathea.slice(0, 80))}`);
  if (!STATE.test(v.state)) throw new PbsValueError(`magrathea_state value ${JSON.stringify(v.state.slice(0, 80))}`);
  if (!Number.isFinite(v.rank) || Math.abs(v.rank) > 1e9) throw new PbsValueError(`magrathea_rank value ${v.rank}`);
  if (v.image !== '' && !DOMAIN_NAME.test(v.image))
    throw new PbsValueError(`magrathea_image value ${JSON.stringify(v.image.slice(0, 80))}`);
  if (v.cpus !== null && !(Number.isSafeInteger(v.cpus) && v.cpus >= 0 && v.cpus <= 1e6))
    throw new PbsValueError(`magrathea_cpus value ${v.cpus}`);
  const image = withImage && v.image ? `, resources_available.magrathea_image = ${v.image}` : '';
  const cpus = withCpus && v.cpus !== null ? `, resources_available.magrathea_cpus = ${v.cpus}` : '';
  return `set node ${vnode} resources_available.magrathea = ${v.magrathea}, resources_available.magrathea_state = ${v.state}, resources_available.magrathea_rank = ${v.rank}, comment = "${sanitizeComment(v.comment)}"${image}${cpus}`;
}

function reasonOf(message: string): string {
  if (/Unknown node/i.test(message)) return 'unknown-node';
  if (/Unknown resource/i.test(message)) return 'unknown-resource';
  return 'other';
}

export class Publisher {
  private pending = new Map<string, Pending>();
  private readonly published = new Map<string, VnodeValues>();
  /** The last refusal logged per vnode (logged again only when the reason changes). */
  private readonly refused = new Map<string, string>();
  private inFlight = false;
  private timer: NodeJS.Timeout | null = null;
  private timerDue = 0;
  private retryMs: number;
  private lastKickMs = -Infinity;
  private kickOwed = false;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];
  /** PBS has no magrathea_image resource (not installed): publish without images. */
  private imageUnknown = false;
  /** PBS has no magrathea_cpus resource (not installed): publish without free CPUs. */
  private cpusUnknown = false;

  private readonly mono: () => number;

  constructor(
    private readonly pbs: PbsConfig,
    private readonly deps: PbsCallerDeps,
  ) {
    this.retryMs = pbs.retryInitialMs;
    this.mono = deps.mono ?? (() => performance.now());
  }

  /** View listener: queue the new values of the changed domains' vnodes. */
  readonly onView = ({ node, domains, commitAtMs }: NodeChange): void => {
    for (const { after } of domains) {
      if (!after) continue;
      this.queue(after.vnode, vnodeValues(node.snapshot, after.snapshot), commitAtMs);
    }
    this.schedule(this.pbs.batchDelayMs);
  };

  private queue(vnode: string, values: VnodeValues, commitAtMs: number): void {
    const p = this.pending.get(vnode);
    if (!p && same(this.published.get(vnode), values)) return;
    const commits = p?.commits ?? [];
    if (commitAtMs > 0 && commits.length < 1000) commits.push(commitAtMs);
    this.pending.set(vnode, { values, commits, notBefore: p?.notBefore ?? 0, failures: p?.failures ?? 0 });
  }

  /**
   * Compares what PBS holds with what was written last; a vnode that differs (a hand qmgr, a
   * mom hook that took it out after a refused start, a server that lost it) is written again.
   */
  reassert(held: ReadonlyMap<string, HeldValues>): void {
    let n = 0;
    for (const [vnode, v] of this.published) {
      if (this.pending.has(vnode)) continue;
      const h = held.get(vnode);
      if (!h) continue; // not a PBS node (yet): the write itself reports it
      const differs =
        h.magrathea !== v.magrathea ||
        h.state !== v.state ||
        h.rank !== v.rank ||
        h.comment !== sanitizeComment(v.comment) ||
        (v.image !== '' && !this.imageUnknown && h.image !== v.image) ||
        (v.cpus !== null && !this.cpusUnknown && h.cpus !== undefined && h.cpus !== v.cpus);
      if (!differs) continue;
      this.deps.logger.info(
        { vnode, pbs: { magrathea: h.magrathea, state: h.state, comment: h.comment }, published: v.magrathea },
        'vnode values changed behind the filter; writing them again',
      );
      this.deps.metrics.reasserted.inc();
      this.published.delete(vnode);
      this.pending.set(vnode, { values: v, commits: [], notBefore: 0, failures: 0 });
      n++;
    }
    if (n > 0) this.schedule(0);
  }

  /** PBS came back (after failures, or a server restart): write every vnode again. */
  republishAll(): void {
    for (const [vnode, v] of this.published)
      if (!this.pending.has(vnode)) this.pending.set(vnode, { values: v, commits: [], notBefore: 0, failures: 0 });
    this.published.clear();
    this.schedule(0);
  }

  /** Arms the flush timer; a sooner flush replaces a later one (an owed kick must not hold back updates). */
  private schedule(delayMs: number): void {
    if (this.stopped || this.inFlight || (this.pending.size === 0 && !this.kickOwed)) return;
    const now = this.mono();
    const earliest = Math.min(...[...this.pending.values()].map((p) => p.notBefore), Infinity);
    const due = Math.max(now + delayMs, this.kickOwed ? now + delayMs : earliest);
    if (this.timer) {
      if (this.timerDue <= due) return;
      clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, due - now);
  }

  private async flush(): Promise<void> {
    if (this.inFlight || this.stopped) return;
    const now = this.mono();
    const batch = new Map<string, Pending>();
    for (const [vnode, p] of this.pending) if (p.notBefore <= now) batch.set(vnode, p);
    for (const vnode of batch.keys()) this.pending.delete(vnode);
    const lines: string[] = [];
    let opens = false;
    for (const [vnode, p] of batch) {
      try {
        lines.push(vnodeCommand(vnode, p.values, !this.imageUnknown, !this.cpusUnknown));
      } catch (err) {
        if (!(err instanceof PbsValueError)) throw err;
        batch.delete(vnode);
        this.deps.metrics.vnodeWriteFailures.inc({ reason: 'invalid' });
        this.deps.logger.error(
          { vnode: vnode.slice(0, 100), problem: err.message },
          'vnode value not written to PBS: it does not fit a qmgr command',
        );
        continue;
      }
      if (opensCapacity(this.published.get(vnode), p.values)) opens = true;
    }
    let kick = false;
    if (opens || this.kickOwed) {
      if (now - this.lastKickMs >= this.pbs.kickMinIntervalMs) kick = true;
      else this.kickOwed = true;
    }
    if (kick) lines.push('set server scheduling = true');
    if (lines.length === 0) {
      this.schedule(this.pbs.batchDelayMs);
      return this.settle();
    }
    this.inFlight = true;
    const t0 = this.mono();
    const r = await (this.deps.run ?? runProcess)(
      this.pbs.qmgr,
      this.pbs.server ? [this.pbs.server] : [],
      lines.map((l) => `${l}\n`).join(''),
      this.pbs.qmgrTimeoutMs,
    );
    this.inFlight = false;
    const errors = qmgrObjectErrors(r.stderr);
    // qmgr ran the batch when it exited 0, or named the objects it refused; anything else (not
    // started, hung, no server) means nothing is known to be written.
    const ran = !r.timedOut && r.spawnError === null && (r.code === 0 || errors.length > 0);
    if (ran) {
      this.written(batch, errors, kick, now, t0);
    } else {
      this.failed(batch, r, kick);
    }
    this.settle();
  }

  /** The batch ran: vnodes PBS refused are retried on their own, the rest count as written. */
  private written(
    batch: ReadonlyMap<string, Pending>,
    errors: readonly { obj: string; message: string }[],
    kick: boolean,
    startedMs: number,
    t0: number,
  ): void {
    const done = this.deps.now();
    const doneMono = this.mono();
    this.retryMs = this.pbs.retryInitialMs;
    const refused = new Map<string, string>();
    for (const e of errors) if (batch.has(e.obj)) refused.set(e.obj, e.message);
    this.deps.metrics.batches.inc({ result: refused.size > 0 ? 'partial' : 'ok' });
    const oldest = Math.min(...[...batch.values()].flatMap((p) => p.commits), done);
    this.deps.logger.debug(
      { vnodes: batch.size, refused: refused.size, qmgrMs: doneMono - t0, oldestCommitAgeMs: done - oldest, kick },
      'qmgr batch written',
    );
    if (batch.size > 0) this.deps.metrics.batchSize.observe(batch.size);
    const imageRefused =
      !this.imageUnknown &&
      [...refused].some(
        ([v, m]) => reasonOf(m) === 'unknown-resource' && !/magrathea_cpus/.test(m) && batch.get(v)?.values.image,
      );
    if (imageRefused) {
      this.imageUnknown = true;
      this.deps.logger.error(
        {},
        'PBS has no magrathea_image resource (run magrathea pbs install); publishing without images',
      );
    }
    // Where PBS's message does not name the resource it lacks: without images first, then without CPUs.
    const cpusRefused =
      !this.cpusUnknown &&
      [...refused].some(
        ([v, m]) =>
          reasonOf(m) === 'unknown-resource' &&
          (/magrathea_cpus/.test(m) || !imageRefused) &&
          (batch.get(v)?.values.cpus ?? null) !== null,
      );
    if (cpusRefused) {
      this.cpusUnknown = true;
      this.deps.logger.error(
        {},
        'PBS has no magrathea_cpus resource (run magrathea pbs install); publishing without free CPUs',
      );
    }
    for (const [vnode, p] of batch) {
      const why = refused.get(vnode);
      if (why === undefined) {
        this.published.set(vnode, p.values);
        if (this.refused.delete(vnode)) this.deps.logger.info({ vnode }, 'PBS accepted the vnode values again');
        for (const c of p.commits) this.deps.metrics.publicationLatency.observe(Math.max(0, done - c) / 1000);
        continue;
      }
      this.deps.metrics.vnodeWriteFailures.inc({ reason: reasonOf(why) });
      if (this.refused.get(vnode) !== why) {
        this.refused.set(vnode, why);
        this.deps.logger.error(
          { vnode, pbs: why, command: vnodeCommand(vnode, p.values, !this.imageUnknown, !this.cpusUnknown) },
          'PBS refused the values of a vnode (qmgr); retrying it alone',
        );
      }
      const failures = p.failures + 1;
      const wait =
        (imageRefused || cpusRefused) && reasonOf(why) === 'unknown-resource'
          ? 0
          : Math.min(this.pbs.retryInitialMs * 2 ** (failures - 1), this.pbs.retryMaxMs);
      const newer = this.pending.get(vnode);
      if (newer) newer.commits.unshift(...p.commits);
      else this.pending.set(vnode, { ...p, failures, notBefore: doneMono + wait });
    }
    if (kick) {
      this.lastKickMs = startedMs;
      this.kickOwed = false;
      this.deps.metrics.kicks.inc();
    }
    this.schedule(
      this.kickOwed && this.pending.size === 0
        ? Math.max(0, this.pbs.kickMinIntervalMs - (doneMono - this.lastKickMs))
        : this.pbs.batchDelayMs,
    );
  }

  /** The batch did not run (qmgr missing, hung, or PBS unreachable): all of it again later. */
  private failed(batch: ReadonlyMap<string, Pending>, r: Awaited<ReturnType<typeof runProcess>>, kick: boolean): void {
    this.deps.metrics.batches.inc({ result: r.timedOut ? 'timeout' : 'failed' });
    this.deps.logger.error(
      {
        code: r.code,
        timedOut: r.timedOut,
        spawnError: r.spawnError,
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
