/**
 * Honest accounting during preemption: the jobs of a preempted domain are suspended in PBS too
 * (`qsig -s admin-suspend`), so walltime stops, `qstat` shows the truth and PBS's mom really
 * stops their processes; when the domain resumes, `qsig -s admin-resume`. In CPU-counting mode
 * (partial preemption) a running domain may have some jobs suspended: only those are suspended
 * in PBS, the domain's other jobs are left running.
 *
 * PBS's view converges on the daemons' instead of following transitions once: every job of a
 * preempted domain is wanted suspended, every job PBS has admin-suspended in a running domain is
 * wanted running, and a pass compares that with `qstat` and signals what differs — again and again
 * with back-off while PBS refuses (a job that execjob_begin accepted but PBS has not run yet answers
 * "Request invalid for state of job"), and on a timer for every suspended job anyway.
 *
 * Facts of OpenPBS 23.06 this works around (shown by the real-PBS suite):
 * - a qsig to a job whose mom is frozen never returns, and the server applies it once the mom
 *   thaws: jobs of a domain preempted by `pause` or `save` are left alone (PBS shows them running);
 * - a manager's plain `qsig -s resume` hands the job to the scheduler, whose resume loop never ends
 *   if that resume fails: only admin-suspend/admin-resume are used;
 * - an emptied maintenance_jobs is never removed from the server's database, so at a restart a vnode
 *   whose last admin-suspended job still exists comes back in `maintenance` (and stays there, even
 *   after the job is purged; suspending and resuming the job again does not clear it either).
 *   Prevented by purging, once they have finished, the history of the jobs the database still lists
 *   (MaintenanceLedger; `purgeResumedJobHistory`); a vnode PBS has put there anyway (a restart while
 *   such a job ran) is reported with the way out (`magrathea pbs recreate-vnode`).
 */
import type { DomainEntry, NodeChange } from './cluster-view';
import type { FilterConfig } from './config';
import type { PbsVnode } from './pbs-watch';
import { runProcess } from './run-process';
import type { PbsCallerDeps } from './run-process';

type PbsConfig = NonNullable<FilterConfig['pbs']>;
type Want = 'suspended' | 'running';
/** What qstat says: finished (in the history), missing (not known at all), … ; unknown: qstat did not answer. */
type PbsState = 'running' | 'suspended' | 'finished' | 'missing' | 'other' | 'unknown';
const isGone = (s: PbsState | undefined): boolean => s === 'finished' || s === 'missing';
/** qstat calls run at once (one job each). */
const QSTAT_PARALLEL = 4;

/** PBS job ids (`1234.server`, `12[3].server`, `5[].server`); anything else never reaches qsig. */
export const PBS_JOB_ID = /^[0-9]+(\[[0-9]*\])?(\.[A-Za-z0-9][A-Za-z0-9_.-]*)?$/;

/** Modes whose domain keeps its mom answering (pause and save stop the whole domain). */
const MOM_ANSWERS = (mode: string): boolean => mode !== 'pause' && mode !== 'save';

/**
 * What PBS's database holds as each vnode's `maintenance_jobs`, as far as our own qsigs tell:
 * PBS saves the list when an admin-suspend or admin-resume leaves it non-empty, and never when it
 * becomes empty — so the last non-empty list stays in the database, and at a restart every job in
 * it that still exists (history counts) puts the vnode back in maintenance.
 */
export class MaintenanceLedger {
  private readonly mem = new Map<string, Set<string>>();
  private readonly db = new Map<string, Set<string>>();

  suspended(vnode: string, job: string): void {
    const m = this.mem.get(vnode) ?? new Set<string>();
    m.add(job);
    this.mem.set(vnode, m);
    this.db.set(vnode, new Set(m));
  }

  resumed(vnode: string, job: string): void {
    const m = this.mem.get(vnode);
    if (!m) return;
    m.delete(job);
    if (m.size > 0) this.db.set(vnode, new Set(m));
    else this.mem.delete(vnode);
  }

  /** The job left PBS (ended or deleted while suspended): PBS drops it from the list, and may not save that. */
  gone(job: string): void {
    for (const [v, m] of this.mem) {
      m.delete(job);
      if (m.size === 0) this.mem.delete(v);
    }
  }

  /** PBS shows the job in a vnode's maintenance_jobs (found after a restart): its history is to be purged too. */
  listed(vnode: string, job: string): void {
    const d = this.db.get(vnode) ?? new Set<string>();
    d.add(job);
    this.db.set(vnode, d);
  }

  /** Jobs PBS's database may still list for some vnode. */
  referenced(): string[] {
    return [...new Set([...this.db.values()].flatMap((s) => [...s]))];
  }

  /** The job's history is gone: no restart can find it any more. */
  purged(job: string): void {
    for (const [v, d] of this.db) {
      d.delete(job);
      if (d.size === 0) this.db.delete(v);
    }
  }
}

interface Tracked {
  readonly job: string;
  node: string;
  domain: string;
  vnode: string;
  want: Want;
  /** Next attempt not before (ms); grows while PBS refuses. */
  notBefore: number;
  failures: number;
}

export class Accounting {
  private readonly tracked = new Map<string, Tracked>();
  /** What PBS's database lists as maintenance_jobs: those jobs' history is purged once they have finished. */
  readonly ledger = new MaintenanceLedger();
  /** Job id → its creation time as qstat last showed it. */
  private readonly seenCtime = new Map<string, string>();
  /**
   * Job id → creation time of the job we signalled under that id. PBS reuses job ids after a
   * restart: a purge must never hit a newer job that carries an old id.
   */
  private readonly identity = new Map<string, string>();

  private remember(job: string): void {
    const c = this.seenCtime.get(job);
    if (c !== undefined && !this.identity.has(job)) this.identity.set(job, c);
  }
  /** Domains whose jobs are not signalled because the domain is paused (logged once per preemption). */
  private readonly pausedLogged = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private timerDue = Infinity;
  private running: Promise<void> | null = null;
  private stopped = false;
  private lastFullPass = -Infinity;
  private qstatMissing = false;
  /** qstat ran but its last answer told nothing (PBS unreachable?): warned once until it answers again. */
  private qstatUnclear = false;

  /** Monotonic time, ms: every wait here is a duration (a wall clock step neither stalls nor floods the passes). */
  private readonly mono: () => number;

  constructor(
    private readonly pbs: PbsConfig,
    private readonly deps: PbsCallerDeps,
  ) {
    this.mono = deps.mono ?? (() => performance.now());
  }

  readonly onView = ({ node, domains }: NodeChange): void => {
    for (const { name, before, after } of domains) {
      const key = `${node.cfg.name}/${name}`;
      if (after && after.storedState === 'preempted') {
        if (!MOM_ANSWERS(after.releaseMode)) {
          if (!this.pausedLogged.has(key)) {
            this.pausedLogged.add(key);
            this.deps.logger.info(
              { node: node.cfg.name, domain: name, mode: after.releaseMode, jobs: after.jobIds },
              'domain preempted by stopping it whole: its mom cannot suspend jobs, PBS shows them running',
            );
          }
        } else for (const j of after.jobIds) this.want(j, 'suspended', node.cfg.name, after);
      } else {
        this.pausedLogged.delete(key);
        // CPU-counting mode suspends single jobs of a running domain: exactly those are wanted suspended.
        if (after)
          for (const j of after.jobIds) {
            if (after.jobs.get(j)?.suspended) this.want(j, 'suspended', node.cfg.name, after);
            else if (this.tracked.has(j)) this.want(j, 'running', node.cfg.name, after);
          }
      }
      // Jobs that left the domain: PBS ended them (or will); stop tracking.
      for (const j of before?.jobIds ?? [])
        if (!after?.jobs.has(j)) {
          this.tracked.delete(j);
          this.ledger.gone(j);
        }
    }
    this.schedule(0);
  };

  private want(job: string, want: Want, node: string, e: DomainEntry): void {
    if (!PBS_JOB_ID.test(job)) {
      this.deps.logger.warn(
        { node, domain: e.snapshot.name, job: job.slice(0, 100) },
        'not a PBS job id; not signalled',
      );
      return;
    }
    const t = this.tracked.get(job);
    if (t && t.want === want) return;
    this.tracked.set(job, { job, node, domain: e.snapshot.name, vnode: e.vnode, want, notBefore: 0, failures: 0 });
  }

  /**
   * PbsWatch's view of the vnodes: a vnode in `maintenance` whose domain is not preempted was left
   * there by PBS (a restart, see the file comment) or by an admin-suspend of ours that was lost.
   */
  readonly onPbsVnodes = (vnodes: ReadonlyMap<string, PbsVnode>): void => {
    for (const [vnode, v] of vnodes) {
      if (!/maintenance/.test(v.pbsState)) {
        this.stuckWarned.delete(vnode);
        continue;
      }
      const owner = [...this.tracked.values()].find((t) => t.vnode === vnode);
      if (owner?.want === 'suspended') continue; // ours, preempted
      for (const j of v.maintenanceJobs) if (PBS_JOB_ID.test(j)) this.repairs.set(j, { vnode, jobs: v.jobs });
      if (v.maintenanceJobs.length === 0)
        this.warnStuck(vnode, 'PBS keeps it in maintenance with no job listed', v.jobs);
    }
    if (this.repairs.size > 0) this.schedule(0);
  };

  /** job → its vnode (and the vnode's running jobs): jobs PBS lists in maintenance_jobs of a vnode whose domain is not preempted. */
  private readonly repairs = new Map<string, { vnode: string; jobs: readonly string[] }>();
  private readonly stuckWarned = new Set<string>();

  /**
   * A vnode PBS keeps in maintenance although nothing of ours is suspended there. PBS 23.06 leaves
   * no way to clear it but deleting and re-creating the vnode (which `magrathea pbs recreate-vnode`
   * does, once the vnode runs no job).
   */
  private warnStuck(vnode: string, why: string, running: readonly string[]): void {
    if (this.stuckWarned.has(vnode)) return;
    this.stuckWarned.add(vnode);
    this.deps.logger.error(
      { vnode, why, running, fix: `magrathea pbs recreate-vnode ${vnode}` },
      running.length > 0
        ? 'vnode left in maintenance by PBS: no new job is placed there; re-create it once its jobs have ended'
        : 'vnode left in maintenance by PBS: re-create it (magrathea pbs recreate-vnode)',
    );
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    const due = this.mono() + delayMs;
    if (this.timer && this.timerDue <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerDue = Infinity;
      if (this.running) return; // the pass in progress schedules the next one when it ends
      this.running = this.pass().finally(() => {
        this.running = null;
        this.schedule(this.nextDelay());
      });
    }, delayMs);
    this.timer.unref();
  }

  /** When the next pass is due: at once for work due now, else the soonest back-off, at most the re-check interval. */
  private nextDelay(): number {
    const now = this.mono();
    const soonest = Math.min(...[...this.tracked.values()].map((t) => Math.max(0, t.notBefore - now)), Infinity);
    const repairsOrPurges = this.repairs.size > 0 ? 1000 : Infinity;
    return Math.min(soonest, repairsOrPurges, this.pbs.accountingRecheckMs);
  }

  /**
   * qstat of these jobs: id → what PBS says. One job per call: OpenPBS 23.06's
   * `qstat -x -f -F json A B` prints only A (plain `-f` prints both), so a call for several jobs
   * would have the others taken as gone. A few calls at a time.
   */
  private async qstat(ids: readonly string[]): Promise<Map<string, PbsState>> {
    const out = new Map<string, PbsState>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ids.length) {
        const id = ids[next++]!;
        out.set(id, await this.qstatOne(id));
      }
    };
    await Promise.all(Array.from({ length: Math.min(QSTAT_PARALLEL, ids.length) }, worker));
    return out;
  }

  /**
   * What PBS says of one job. Only PBS's own answer that it knows no such job counts as `missing`
   * (a server that cannot be reached, a timeout or an answer that is not its JSON is `unknown`:
   * nothing is dropped for it).
   */
  private async qstatOne(id: string): Promise<PbsState> {
    const r = await (this.deps.run ?? runProcess)(
      this.pbs.qstat,
      ['-x', '-f', '-F', 'json', '--', id],
      '',
      this.pbs.qmgrTimeoutMs,
      { maxStdoutBytes: 16 * 1024 * 1024 },
    );
    if (r.spawnError !== null || r.timedOut) {
      this.deps.metrics.pbsReads.inc({ command: 'qstat', result: 'failed' });
      if (!this.qstatMissing)
        this.deps.logger.error(
          { spawnError: r.spawnError, timedOut: r.timedOut },
          'cannot run qstat; signalling without it',
        );
      this.qstatMissing = true;
      return 'unknown';
    }
    this.qstatMissing = false;
    let job: { job_state?: unknown; ctime?: unknown } | undefined;
    try {
      const o = JSON.parse(r.stdout || 'null') as { Jobs?: Record<string, typeof job> } | null;
      job =
        o !== null &&
        typeof o === 'object' &&
        o.Jobs !== null &&
        typeof o.Jobs === 'object' &&
        Object.hasOwn(o.Jobs, id)
          ? o.Jobs[id]
          : undefined;
    } catch {
      job = undefined;
    }
    if (job === null || typeof job !== 'object') {
      if (r.code !== 0 && /Unknown Job Id/i.test(r.output)) {
        this.deps.metrics.pbsReads.inc({ command: 'qstat', result: 'ok' });
        this.seenCtime.delete(id);
        return 'missing';
      }
      this.deps.metrics.pbsReads.inc({ command: 'qstat', result: 'failed' });
      const line = { job: id, code: r.code, output: r.output.slice(0, 500) };
      if (this.qstatUnclear) this.deps.logger.debug(line, 'qstat gave no state of the job');
      else this.deps.logger.warn(line, 'qstat gave no state of the job');
      this.qstatUnclear = true;
      return 'unknown';
    }
    this.deps.metrics.pbsReads.inc({ command: 'qstat', result: 'ok' });
    this.qstatUnclear = false;
    const s = job.job_state;
    if (typeof job.ctime === 'string') this.seenCtime.set(id, job.ctime);
    else this.seenCtime.delete(id);
    return s === 'F' ? 'finished' : s === 'R' ? 'running' : s === 'S' ? 'suspended' : 'other';
  }

  /** One qsig; returns what PBS answered. */
  private async qsig(
    signal: 'admin-suspend' | 'admin-resume',
    job: string,
  ): Promise<'ok' | 'gone' | 'not-now' | 'not-ours' | 'failed'> {
    const r = await (this.deps.run ?? runProcess)(this.pbs.qsig, ['-s', signal, '--', job], '', this.pbs.qmgrTimeoutMs);
    const text = r.output;
    const result =
      r.code === 0 && !r.timedOut
        ? 'ok'
        : /Unknown Job Id|Job has finished|job has been deleted/i.test(text)
          ? 'gone'
          : /requested resume signal/i.test(text)
            ? 'not-ours' // suspended by someone else (plain suspend): not ours to resume
            : /invalid for state of job|Request invalid/i.test(text)
              ? 'not-now'
              : 'failed';
    this.deps.metrics.qsig.inc({ signal, result });
    if (result === 'failed')
      this.deps.logger.warn(
        { signal, job, code: r.code, timedOut: r.timedOut, output: text.slice(0, 500) },
        'qsig failed; retrying',
      );
    else this.deps.logger.debug({ signal, job, result }, 'qsig');
    return result;
  }

  private async pass(): Promise<void> {
    const now = this.mono();
    const full = now - this.lastFullPass >= this.pbs.accountingRecheckMs;
    const due = [...this.tracked.values()].filter((t) => full || t.notBefore <= now);
    const purgeable = full && this.pbs.purgeResumedJobHistory ? this.ledger.referenced() : [];
    const ids = [...new Set([...due.map((t) => t.job), ...purgeable, ...this.repairs.keys()])];
    if (ids.length === 0) return;
    if (full) this.lastFullPass = now;
    const states = await this.qstat(ids);
    const acted = new Set<string>();
    for (const t of due) {
      if (this.stopped) return;
      if (this.tracked.get(t.job) !== t) continue; // changed meanwhile
      const pbs = states.get(t.job) ?? 'unknown';
      if (isGone(pbs)) {
        this.tracked.delete(t.job);
        this.ledger.gone(t.job);
        continue;
      }
      if (pbs === 'other' || (t.want === 'suspended' && pbs === 'suspended')) {
        this.backoff(t, pbs === 'other'); // not running yet (prerun, exiting): ask again soon
        continue;
      }
      if (t.want === 'running' && pbs === 'running') {
        this.tracked.delete(t.job); // converged; nothing left to follow
        continue;
      }
      const signal = t.want === 'suspended' ? 'admin-suspend' : 'admin-resume';
      this.remember(t.job);
      const r = await this.qsig(signal, t.job);
      acted.add(t.job);
      if (this.tracked.get(t.job) !== t) continue;
      if (r === 'gone') {
        this.tracked.delete(t.job);
        this.ledger.gone(t.job);
      } else if (r === 'not-ours') {
        this.tracked.delete(t.job);
        this.deps.logger.info(
          { node: t.node, domain: t.domain, job: t.job },
          'job suspended by someone else in PBS; left as it is',
        );
      } else if (r === 'ok') {
        t.failures = 0;
        if (t.want === 'running') {
          this.tracked.delete(t.job);
          this.ledger.resumed(t.vnode, t.job);
          this.deps.logger.info({ node: t.node, domain: t.domain, job: t.job }, 'PBS accounting: job resumed');
        } else {
          this.ledger.suspended(t.vnode, t.job);
          t.notBefore = this.mono() + this.pbs.accountingRecheckMs;
          this.deps.logger.info({ node: t.node, domain: t.domain, job: t.job }, 'PBS accounting: job suspended');
        }
      } else this.backoff(t, true);
    }
    // Repairs act on states read before the signals above: never on a job just signalled.
    for (const j of acted) this.repairs.delete(j);
    await this.repair(states);
    await this.purge(states);
  }

  private backoff(t: Tracked, refused: boolean): void {
    if (refused) t.failures++;
    t.notBefore =
      this.mono() + (refused ? Math.min(250 * 2 ** Math.min(t.failures, 6), 10_000) : this.pbs.accountingRecheckMs);
  }

  /**
   * The jobs listed in the maintenance_jobs of a vnode whose domain is not preempted: one of ours
   * suspended while the filter was away is resumed; a running or ended one was left there by PBS
   * (a pbs_server restart, see the file comment): reported with the way out, its history purged
   * once it has finished so that no later restart repeats it.
   */
  private async repair(states: ReadonlyMap<string, PbsState>): Promise<void> {
    for (const [job, { vnode, jobs }] of [...this.repairs]) {
      this.repairs.delete(job);
      const s = states.get(job) ?? 'unknown';
      this.remember(job);
      if (s === 'suspended') {
        if ((await this.qsig('admin-resume', job)) === 'ok') {
          this.ledger.resumed(vnode, job);
          this.deps.logger.info(
            { vnode, job },
            'PBS accounting: job resumed (suspended while its domain is not preempted)',
          );
        }
      } else if (s === 'running' || isGone(s)) {
        this.warnStuck(vnode, `PBS lists job ${job} (${s}) in its maintenance_jobs after a pbs_server restart`, jobs);
        this.ledger.listed(vnode, job);
      }
    }
  }

  /** Purges the history of finished jobs PBS's database still lists (they would put their vnode in maintenance at a restart). */
  private async purge(states: ReadonlyMap<string, PbsState>): Promise<void> {
    if (!this.pbs.purgeResumedJobHistory) return;
    for (const job of this.ledger.referenced()) {
      const s = states.get(job);
      const known = this.identity.get(job);
      if (
        s === 'missing' ||
        (known !== undefined && this.seenCtime.get(job) !== undefined && this.seenCtime.get(job) !== known)
      ) {
        // Gone, or the id now names a newer job (ids are reused after a restart): nothing of ours to purge.
        this.ledger.purged(job);
        this.identity.delete(job);
        continue;
      }
      if (s !== 'finished') continue; // not read this pass, still running, or exiting: later
      // `qdel -x` deletes a job that is not finished: look again right before, and only purge that same finished job.
      const again = await this.qstat([job]);
      const same = known === undefined || this.seenCtime.get(job) === known;
      if (again.get(job) !== 'finished' || !same) continue;
      const r = await (this.deps.run ?? runProcess)(
        this.pbs.qdel,
        ['-x', '-W', 'force', '--', job],
        '',
        this.pbs.qmgrTimeoutMs,
      );
      this.ledger.purged(job);
      this.identity.delete(job);
      if (r.code === 0)
        this.deps.logger.info(
          { job },
          'history of a once-suspended job purged (PBS would otherwise put its vnode in maintenance at a restart)',
        );
      else
        this.deps.logger.warn(
          { job, code: r.code, spawnError: r.spawnError, output: r.output.slice(0, 300) },
          'could not purge the history of a once-suspended job (its vnode may come back in maintenance at a pbs_server restart)',
        );
    }
  }

  /** Resolves when no pass is running (tests, shutdown). */
  async idle(): Promise<void> {
    await this.running;
  }

  /** Jobs the accounting still follows (tests, status). */
  get following(): number {
    return this.tracked.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
