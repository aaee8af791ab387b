/**
 * Runs commands one at a time per node, in a fixed order: journal the intent → run the driver
 * operations → journal the commit (fsync) → commit in memory → notify watchers. A command is
 * acknowledged only after its commit is on disk. A failing driver operation rolls back the
 * operations already done and refuses the command: nothing is left half-switched.
 */
import type { Logger } from 'pino';
import type { DomainClass, NodeEventInput, PhaseInput } from '@magrathea/common';
import type {
  Accepted,
  Command,
  CpuCounting,
  DomainRecord,
  DriverOp,
  Lifecycle,
  NodeState,
  ResetRecord,
} from '../domain';
import {
  checkInvariants,
  initialNodeState,
  inverseOp,
  cpuCapOf,
  planDriverOps,
  postureOf,
  recomputed,
  reportedState,
  transition,
} from '../domain';
import type { FlapPolicy, FlapRecord, Posture } from '../domain';
import { flapCount, isDrop, NO_FLAPS, recordDrop } from '../domain';
import {
  ConfigError,
  DaemonError,
  DomainNotFoundError,
  JournalCorruptError,
  RefusedError,
  StorageError,
  UnavailableError,
} from '../errors';
import { jobListChange } from '@magrathea/common';
import type { JobChangeInput } from '@magrathea/common';
import { EventHub } from './event-hub';
import type {
  DriverStep,
  HypervisorDriver,
  Observation,
  PowerState,
  ReleaseMeasurement,
} from '../hypervisor/hypervisor-driver';
import type { Journal } from '../journal/journal';
import type {
  DomainExtras,
  DomainSummary,
  HostSample,
  KeptOverlayInfo,
  ObservedInfo,
  ReleaseInfo,
  ResetInfo,
} from './view';

export type { KeptOverlayInfo, ResetInfo } from './view';
import { domainSummary, domainView, jobView, nodeView, sameCpus } from './view';

/** The time sources (tests pass a ManualClock). */
export interface Clock {
  /** Wall-clock time, ms since the epoch: what is recorded and reported. */
  now(): number;
  /**
   * Monotonic time, ms from any origin: what durations (flap holds) are measured on, so a wall
   * clock stepped back or forward stretches or cuts none of them. Default `performance.now()`.
   */
  readonly monotonicMs?: () => number;
}

/** Wall-clock time for records, `performance.now()` for durations. */
export const systemClock: Clock = { now: () => Date.now(), monotonicMs: () => performance.now() };

/** A configured domain as the manager needs it. */
export interface ManagedDomain {
  readonly name: string;
  readonly class: DomainClass;
  /** Boot the domain when the daemon starts and finds it down. */
  readonly autostart: boolean;
  /** The image the domain runs ('' or absent: none). */
  readonly image?: string;
  /** What the domain does after each job (default persistent). */
  readonly lifecycle?: Lifecycle;
  /** The filter may boot it for a queued job of its image (default false). */
  readonly wakeOnDemand?: boolean;
  /** Taken down after this long up with no job, ms (0 or absent: never). */
  readonly idleShutdownMs?: number;
  /** Not offered for a wake-up this long after a failed boot, ms (default 60000). */
  readonly bootBackoffMs?: number;
}

/** What the manager is configured with. */
export interface DomainManagerOptions {
  readonly nodeName: string;
  readonly domains: readonly ManagedDomain[];
  /** Compact the journal into a snapshot after this many records. */
  readonly snapshotEvery: number;
  /** Events kept for watchers that resume. */
  readonly eventBacklog: number;
  /** Flap damping (default: more than 3 drops in 10 min holds the domain for 10 min). */
  readonly flapDamping?: FlapPolicy;
  /** The daemon's version, reported in the node view (default ''). */
  readonly version?: string;
  /**
   * CPU-counting mode with the node's CPUs (absent: exclusive mode). Normal domains are
   * suspended job by job where the driver can stop one job alone, else whole.
   */
  readonly cpuCounting?: { readonly cpus: number };
}

/**
 * The image layer as set-image needs it (absent: no domain is image-backed). The manager's
 * record of a domain's image is the authority: the layer is told it before every boot.
 */
export interface ImageSwitch {
  /** The domain gets its disks from a catalogue image. */
  backed(domain: string): boolean;
  /** The image is in the node's catalogue. */
  known(image: string): boolean;
  /** Downloads the image into the cache if it is not there (a digest mismatch rejects). */
  pull(image: string): Promise<void>;
  /** The domain's disks are on this image (no overlay is thrown away: a boot replaces one on another base). */
  adopt(domain: string, image: string): void;
  /** Throws the domain's overlay away and puts it on this image (the VM is shut off). */
  switchTo(domain: string, image: string): Promise<void>;
}

/** What the manager is given: journal, driver, clock, logger and observers. */
export interface DomainManagerDeps {
  readonly journal: Journal;
  readonly driver: HypervisorDriver;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly hostSample?: () => HostSample | null;
  /** Told of every committed command that changed something (metrics: preemptions and their phases). */
  readonly onCommitted?: (outcome: Outcome) => void;
  /** Told of every finished per-job reset and boot (policy `boot`; metrics: their phase timings). */
  readonly onReset?: (domain: string, reset: ResetInfo) => void;
  /** The overlays kept of a domain's failed jobs, oldest first (domains[].keepFailed). */
  readonly keptOverlays?: (domain: string) => readonly KeptOverlayInfo[];
  /** The image layer (set-image; absent: no domain is image-backed). */
  readonly images?: ImageSwitch;
  /**
   * Told when the durable state stops (a problem: the state directory was deleted or replaced)
   * or starts again (null) being usable; the daemon reports NOT_SERVING meanwhile.
   */
  readonly onStorage?: (problem: string | null) => void;
}

/** The result of an accepted command. */
export interface Outcome {
  readonly result: Accepted;
  readonly generation: number;
  /** Reported state of the command's domain afterwards. */
  readonly state: string;
  readonly phases: readonly PhaseInput[];
}

/** What `recover()` found in the journal. */
export interface RecoveryReport {
  readonly replayed: number;
  readonly dangling: number;
  readonly tornBytes: number;
  readonly fromSnapshot: boolean;
  readonly generation: number;
}

/** Distributive Omit, so each command variant keeps its own fields. */
type WithoutTime<T> = T extends unknown ? Omit<T, 'atMs'> : never;
/** A command as callers give it (the manager stamps the time). */
export type CommandInput = WithoutTime<Command>;

function expectedPower(p: Posture, power: PowerState, perJob = false): boolean {
  // A domain whose jobs are stopped one by one keeps running itself (only the jobs' processes stop).
  if (perJob && p === 'preempted') return power === 'running';
  switch (p) {
    case 'off':
      return power === 'shut-off';
    case 'idle':
    case 'active':
      return power === 'running';
    case 'preempted':
      return power === 'throttled' || power === 'paused' || power === 'saved';
    case 'saved':
      return power === 'saved' || power === 'shut-off';
    case 'booting':
      return true;
  }
}

/** The engine of one node: runs commands one at a time in the fixed order of the file comment. */
export class DomainManager {
  private state: NodeState;
  private seq = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private accepting = false;
  private readonly observations = new Map<string, ObservedInfo>();
  private readonly releases = new Map<string, ReleaseInfo>();
  private readonly resets = new Map<string, ResetInfo>();
  private readonly boots = new Map<string, ResetInfo>();
  /** When (monotonic ms) each domain's last boot failed, for the wake-up back-off. */
  private readonly bootFailedAt = new Map<string, number>();
  /** Since when (monotonic ms) each domain has been seen idle with no job (domains[].idleShutdownMs). */
  private readonly idleSince = new Map<string, number>();
  /** Flap history per domain, on the monotonic clock (in memory: a restart forgets it, and holds end). */
  private readonly flaps = new Map<string, FlapRecord>();
  /** Journal records at which a failed compaction is tried again. */
  private compactRetryAt = 0;
  /** Why the state directory is unusable now (checked at every command and reconciliation), or null. */
  private storageProblem: string | null = null;
  private get flapPolicy(): FlapPolicy {
    return this.opts.flapDamping ?? { maxFlaps: 3, windowMs: 600_000, holdMs: 600_000 };
  }
  private readonly bootsInFlight = new Map<string, Promise<void>>();
  private dangling: readonly { seq: number; cmd: Command }[] = [];
  private readonly log: Logger;
  readonly hub: EventHub;

  private readonly mono: () => number;

  constructor(
    private readonly opts: DomainManagerOptions,
    private readonly deps: DomainManagerDeps,
  ) {
    this.mono = deps.clock.monotonicMs ?? (() => performance.now());
    this.state = initialNodeState(opts.domains, deps.clock.now(), this.mode());
    this.hub = new EventHub(opts.eventBacklog);
    this.log = deps.logger.child({ component: 'manager' });
  }

  /** Replays the journal through the same transition function and merges the configured domains. */
  recover(): RecoveryReport {
    const rec = this.deps.journal.open();
    if (rec.snapshot === null && rec.commits.length > 0) {
      throw new JournalCorruptError('the journal has records but no snapshot to replay them onto');
    }
    // The first start writes a snapshot (below), so a journal always replays onto the domain
    // set it was written with, even if the config has changed since.
    let s = rec.snapshot?.state ?? initialNodeState(this.opts.domains, this.deps.clock.now());
    for (const { seq, cmd } of rec.commits) {
      const r = transition(s, cmd);
      if (!r.ok)
        throw new JournalCorruptError(
          `journal record ${seq} (${cmd.kind} ${cmd.domain}) no longer applies: ${r.message}`,
        );
      s = r.next;
    }
    this.seq = rec.lastSeq;
    const merged = this.mergeConfig(s);
    const problems = checkInvariants(merged);
    if (problems.length > 0) throw new JournalCorruptError(`recovered state breaks invariants: ${problems.join('; ')}`);
    this.state = merged;
    // With an interrupted command, compaction waits until its driver operations are undone
    // (startDriver), so a second crash in between still finds the intent. A first snapshot, and
    // one of a changed domain set, must be written (later records replay onto it): failing to
    // write it stops the start-up (StorageError, exit 74).
    if (rec.dangling.length === 0) {
      if (rec.snapshot === null || merged !== s) this.deps.journal.compact(this.state, this.seq);
      else if (rec.tornBytes > 0) this.compact();
    }
    this.dangling = rec.dangling;
    for (const d of rec.dangling) {
      this.log.warn(
        { seq: d.seq, kind: d.cmd.kind, domain: d.cmd.domain },
        'command interrupted by a crash was not committed',
      );
    }
    if (rec.tornBytes > 0) this.log.warn({ tornBytes: rec.tornBytes }, 'torn last journal record cut off');
    const report: RecoveryReport = {
      replayed: rec.commits.length,
      dangling: rec.dangling.length,
      tornBytes: rec.tornBytes,
      fromSnapshot: rec.snapshot !== null,
      generation: this.state.generation,
    };
    this.log.info(report, 'state recovered');
    return report;
  }

  /** The configured CPU-counting mode, with the normal domains the driver can suspend job by job. */
  private mode(): CpuCounting | undefined {
    const c = this.opts.cpuCounting;
    if (!c) return undefined;
    const perJob =
      this.deps.driver.capabilities['stop-jobs'] === true && this.deps.driver.capabilities['continue-jobs'] === true;
    return {
      cpus: c.cpus,
      perJob: perJob
        ? this.opts.domains
            .filter((d) => d.class === 'normal' && (this.deps.driver.stopsJobsOf?.(d.name) ?? true))
            .map((d) => d.name)
        : [],
    };
  }

  /** Applies the configured domain list to a recovered state. */
  private mergeConfig(s: NodeState): NodeState {
    const problems: string[] = [];
    const mode = this.mode();
    const fresh = initialNodeState(this.opts.domains, this.deps.clock.now(), mode);
    const domains: DomainRecord[] = [];
    let changed = s.domains.length !== this.opts.domains.length;
    for (const [i, c] of this.opts.domains.entries()) {
      const had = s.domains.find((d) => d.name === c.name);
      if (!had) {
        domains.push(fresh.domains[i] as DomainRecord);
        changed = true;
      } else if (had.class !== c.class) {
        if (had.jobs.length > 0)
          problems.push(`domains.${i}.class: ${c.name} runs jobs; its class can change only while it has none`);
        domains.push({ ...had, class: c.class });
        changed = true;
      } else {
        if (s.domains.indexOf(had) !== i) changed = true;
        domains.push(had);
      }
    }
    for (const d of s.domains) {
      if (!this.opts.domains.some((c) => c.name === d.name) && d.jobs.length > 0) {
        problems.push(`domains: ${d.name} is missing from the config but runs ${d.jobs.length} job(s); end them first`);
      }
    }
    if (JSON.stringify(s.cpuCounting ?? null) !== JSON.stringify(mode ?? null)) {
      // Switching modes is safe while nothing is suspended (the jobs' CPUs are counted from then on).
      if (s.domains.some((d) => d.jobs.some((j) => j.suspendedSinceMs !== null)))
        problems.push('cpuCounting: jobs are suspended now; change the mode once they have resumed or ended');
      if (!mode && s.domains.filter((d) => d.jobs.length > 0).length > 1)
        problems.push(
          'cpuCounting: several domains run jobs now; exclusive mode allows one, switch once only one does',
        );
      changed = true;
    }
    if (problems.length > 0) throw new ConfigError(problems);
    const next: NodeState = mode
      ? { generation: s.generation, domains, cpuCounting: mode }
      : { generation: s.generation, domains };
    return changed ? recomputed(next) : s;
  }

  /** Hands the domains to the driver, then boots autostart domains that are down. */
  async startDriver(): Promise<void> {
    // A VM found running is on the recorded image (set-image's, else the configured one).
    for (const d of this.state.domains) this.adoptImage(d.name);
    await this.deps.driver.start(this.state.domains.map((d) => ({ name: d.name, posture: postureOf(d.state) })));
    // A domain that dies under us is reconciled as soon as the command in progress is done.
    this.deps.driver.onVanished?.((domain) => {
      this.log.warn({ domain }, 'the driver saw the domain die; reconciling');
      void this.chain.then(() => this.reconcile()).catch((err: unknown) => this.log.error({ err }, 'reconcile failed'));
    });
    await this.undoInterrupted();
    await this.applyCpuCaps();
    this.accepting = true;
    for (const d of this.state.domains) {
      if (d.state === 'booting') this.launchBoot(d.name);
    }
    for (const c of this.opts.domains) {
      const d = this.state.domains.find((x) => x.name === c.name);
      // Autostart boots a domain found down, unless an administrator took it down.
      if (
        c.autostart &&
        d &&
        (d.state === 'down-bootable' || d.state === 'down') &&
        !d.downReason.startsWith('admin:') &&
        !d.downReason.startsWith('idle:')
      ) {
        await this.execute({ kind: 'action', domain: c.name, action: 'boot', reason: 'autostart' }).catch(
          (err: unknown) => this.log.warn({ domain: c.name, err }, 'autostart boot refused'),
        );
      }
    }
  }

  get current(): NodeState {
    return this.state;
  }

  get driverKind(): string {
    return this.deps.driver.kind;
  }

  /** Queues a command; resolves once it is committed (and on disk), rejects with a typed error. */
  execute(input: CommandInput): Promise<Outcome> {
    const run = this.chain.then(() => this.executeNow(input));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async executeNow(input: CommandInput): Promise<Outcome> {
    if (!this.accepting) throw new UnavailableError('the daemon is not accepting commands (starting or stopping)');
    const cmd = this.withLifecycle({ ...input, atMs: this.deps.clock.now() });
    const r = transition(this.state, cmd);
    if (!r.ok) {
      if (r.reason === 'unknown-domain') throw new DomainNotFoundError(cmd.domain);
      throw new RefusedError(r.reason, r.message);
    }
    if (r.noop) return this.outcome(r, cmd, []);
    // A vanished domain, or one whose boot failed (the driver cleaned up after itself), has
    // nothing left to shut down: a failing cleanup must not keep it `booting` forever.
    const skip = new Set(cmd.kind === 'observed-down' || cmd.kind === 'boot-failed' ? [cmd.domain] : []);
    const all = this.plan(this.state, r.next, skip);
    const sync = all.filter((o) => o.op !== 'boot');
    const unsupported = all.find((o) => !this.deps.driver.capabilities[o.op]);
    if (unsupported) {
      throw new RefusedError('unsupported', `the ${this.deps.driver.kind} driver cannot ${unsupported.op} a domain`);
    }
    // The sequence number is taken only once a record of it is on disk: a command refused for a
    // failed write leaves no hole in the journal's numbering.
    const seq = this.seq + 1;
    if (sync.length > 0) {
      this.durably(cmd, () => this.deps.journal.append({ t: 'intent', seq, cmd }, true));
      this.seq = seq;
    }
    const phases = await this.runOps(seq, sync);
    try {
      this.durably(cmd, () => this.deps.journal.append({ t: 'commit', seq, cmd }, true));
    } catch (err) {
      // Not durable, so not done: the driver operations are undone and the command is refused.
      await this.undoOps(seq, sync);
      if (sync.length > 0) this.appendAbort(seq);
      throw err;
    }
    this.seq = seq;
    this.noteStorage(null);
    const prev = this.state;
    this.state = r.next;
    this.afterCommit(prev, r, cmd, phases);
    for (const o of all) if (o.op === 'boot') this.launchBoot(o.domain);
    if (this.deps.journal.sizeRecords >= Math.max(this.opts.snapshotEvery, this.compactRetryAt)) this.compact();
    const outcome = this.outcome(r, cmd, phases);
    try {
      this.deps.onCommitted?.(outcome);
    } catch (err) {
      this.log.error({ err }, 'commit observer failed');
    }
    return outcome;
  }

  /**
   * A crash during a command's driver operations leaves an intent without an outcome; the
   * command was never acknowledged. Undo whatever part of it ran: every inverse operation
   * moves a domain back to its recorded posture, so it is harmless where the original never ran.
   */
  private async undoInterrupted(): Promise<void> {
    for (const { seq, cmd } of [...this.dangling].reverse()) {
      const r = transition(this.state, cmd);
      if (!r.ok || r.noop) continue;
      const ops = this.plan(this.state, r.next).filter((o) => o.op !== 'boot');
      for (const o of ops.reverse()) {
        const inv = inverseOp(o);
        if (!inv || !this.deps.driver.capabilities[inv.op]) continue;
        try {
          await this.runOp(inv);
          this.log.info({ seq, op: inv.op, domain: o.domain }, 'undid a driver operation of an interrupted command');
        } catch (err) {
          this.log.error(
            { err, seq, op: inv.op, domain: o.domain },
            'could not undo a driver operation; reconciliation will report the drift',
          );
        }
      }
    }
    if (this.dangling.length > 0) this.compact();
    this.dangling = [];
  }

  /** The driver operations from `prev` to `next`; CPU caps only where the driver has them (the others run uncapped). */
  private plan(prev: NodeState, next: NodeState, skip?: ReadonlySet<string>): DriverOp[] {
    const capping = this.deps.driver.capabilities['cap-cpus'] === true;
    return planDriverOps(prev, next, skip).filter((o) => o.op !== 'cap-cpus' || capping);
  }

  /**
   * Sets every up domain's CPU cap to what the recorded state says (CPU-counting mode), or takes
   * the caps away (exclusive mode): a cap survives a daemon restart in the driver, a mode switch does not keep it.
   */
  private async applyCpuCaps(): Promise<void> {
    for (const dom of this.state.domains) {
      const p = postureOf(dom.state);
      if (p !== 'idle' && p !== 'active' && p !== 'preempted') continue;
      await this.setCpuCapOutsideCommands(dom.name, cpuCapOf(this.state, dom), 'could not set the CPU cap at start');
    }
  }

  /**
   * Sets a domain's CPU cap outside a command (nothing to roll back): a failure is only logged
   * with `failed`. Nothing to do for a driver that cannot cap.
   */
  private async setCpuCapOutsideCommands(domain: string, cpus: number | null, failed: string): Promise<void> {
    const d = this.deps.driver;
    if (d.capabilities['cap-cpus'] !== true || !d.setCpuCap) return;
    try {
      await d.setCpuCap(domain, cpus);
    } catch (err) {
      this.log.warn({ err, domain, cpus }, failed);
    }
  }

  private async runOp(o: DriverOp, measured?: Map<string, ReleaseMeasurement>): Promise<void> {
    const { op, domain, jobs = [] } = o;
    const d = this.deps.driver;
    if (op === 'cap-cpus') {
      if (!d.setCpuCap) throw new Error(`the ${d.kind} driver cannot cap-cpus`);
      await d.setCpuCap(domain, o.cpus ?? null);
      return;
    }
    if (op === 'stop-jobs' || op === 'continue-jobs') {
      if (op === 'stop-jobs' && d.stopJobs) await d.stopJobs(domain, jobs);
      else if (op === 'continue-jobs' && d.continueJobs) await d.continueJobs(domain, jobs);
      else throw new Error(`the ${d.kind} driver cannot ${op}`);
      return;
    }
    if (op === 'preempt') {
      const m = await d.preempt(domain);
      measured?.set(domain, m);
      return;
    }
    await d[op](domain);
  }

  /** Runs the driver operations in order; on a failure undoes the done ones and refuses. */
  private async runOps(seq: number, ops: readonly DriverOp[]): Promise<PhaseInput[]> {
    const phases: PhaseInput[] = [];
    const done: DriverOp[] = [];
    const measured = new Map<string, ReleaseMeasurement>();
    for (const o of ops) {
      const t0 = performance.now();
      try {
        await this.runOp(o, measured);
      } catch (err) {
        this.log.error({ err, op: o.op, domain: o.domain, seq }, 'driver operation failed; rolling back');
        await this.undoOps(seq, done);
        this.appendAbort(seq);
        throw new RefusedError(
          'driver-failed',
          `${o.op} of domain ${o.domain} failed (${(err as Error).message}); nothing was changed`,
          {
            cause: err,
          },
        );
      }
      phases.push({ name: `${o.op}:${o.domain}`, millis: performance.now() - t0 });
      done.push(o);
    }
    const atMs = this.deps.clock.now();
    for (const [domain, m] of measured) this.releases.set(domain, { ...m, atMs, phases });
    return phases;
  }

  /** Undoes driver operations that were done, last first (a failed undo is logged; reconciliation reports the drift). */
  private async undoOps(seq: number, done: readonly DriverOp[]): Promise<void> {
    for (const u of [...done].reverse()) {
      const inv = inverseOp(u);
      if (!inv) continue;
      try {
        await this.runOp(inv);
      } catch (undoErr) {
        this.log.error(
          { err: undoErr, op: inv.op, domain: u.domain, seq },
          'rollback operation failed; reconciliation will report the drift',
        );
      }
    }
  }

  /**
   * Records that an intent was given up. If even that cannot be written, the intent stays open in
   * the journal and the next start undoes it again, which is harmless (its operations are undone).
   */
  private appendAbort(seq: number): void {
    try {
      this.deps.journal.append({ t: 'abort', seq }, true);
    } catch (err) {
      this.log.error({ err, seq }, 'could not journal an abort; the next start undoes the command again');
    }
  }

  /** Runs a journal write; a failure becomes the command's refusal (nothing was changed). */
  private durably(cmd: Command, write: () => void): void {
    try {
      write();
    } catch (err) {
      if (!(err instanceof DaemonError)) throw err;
      if (err.code === 'state-dir-lost') {
        this.noteStorage(err.message);
        throw new RefusedError('state-dir-lost', `${err.message}; nothing was changed`, { cause: err });
      }
      if (err.code === 'storage') {
        this.log.error({ err, kind: cmd.kind, domain: cmd.domain }, 'journal write failed; command refused');
        throw new RefusedError('storage-failed', `${err.message}; nothing was changed`, { cause: err });
      }
      throw err;
    }
  }

  /** Records whether the durable state is usable, and tells the daemon when that changes. */
  private noteStorage(problem: string | null): void {
    if (problem === this.storageProblem) return;
    const was = this.storageProblem;
    this.storageProblem = problem;
    if (problem !== null) {
      // The jobs in memory are logged whole: they are the only record left of what was acknowledged.
      this.log.error(
        {
          problem,
          generation: this.state.generation,
          jobs: Object.fromEntries(this.state.domains.map((d) => [d.name, d.jobs.map((j) => j.id)])),
        },
        'state directory lost: refusing every command until it is back (see the runbook)',
      );
    } else if (was !== null) this.log.warn({ was }, 'state directory usable again; accepting commands');
    try {
      this.deps.onStorage?.(problem);
    } catch (err) {
      this.log.error({ err }, 'storage observer failed');
    }
  }

  /** Why the durable state is unusable now, or null. */
  get storageFault(): string | null {
    return this.storageProblem;
  }

  private afterCommit(prev: NodeState, r: Accepted, cmd: Command, phases: readonly PhaseInput[]): void {
    const now = this.deps.clock.now();
    const mono = this.mono();
    const cause = cmd.kind === 'action' ? `action:${cmd.action}` : cmd.kind;
    const changed = new Set(r.changed);
    for (const d of r.next.domains) {
      const before = prev.domains.find((x) => x.name === d.name);
      if (before && reportedState(prev, before) !== reportedState(r.next, d)) changed.add(d.name);
      // A job that came and went between two idle checks starts the idle time again.
      if (changed.has(d.name) || d.jobs.length > 0) this.idleSince.delete(d.name);
      // CPU-counting mode: a job elsewhere on the node changes this domain's free CPUs (the filter publishes them).
      if (before && r.next.cpuCounting && !changed.has(d.name) && !sameCpus(prev, before, r.next, d))
        changed.add(d.name);
      if (before && isDrop(before, d)) {
        const wasHeld = (this.flaps.get(d.name)?.heldUntilMs ?? 0) > mono;
        const f = recordDrop(this.flaps.get(d.name) ?? NO_FLAPS, mono, this.flapPolicy);
        this.flaps.set(d.name, f);
        changed.add(d.name);
        if (f.heldUntilMs > mono && !wasHeld)
          this.log.warn(
            { domain: d.name, drops: f.drops.length, heldForMs: Math.round(f.heldUntilMs - mono) },
            'domain flapping: held out of scheduling',
          );
      }
      if (before && before.state !== d.state) {
        this.log.info(
          {
            domain: d.name,
            from: before.state,
            to: d.state,
            cause,
            generation: r.next.generation,
            command: cmd.domain,
            ...('jobId' in cmd ? { jobId: cmd.jobId } : {}),
          },
          'domain state changed',
        );
      }
    }
    for (const j of r.lostJobs) {
      if (cmd.kind === 'set-image')
        this.log.warn({ domain: cmd.domain, jobId: j.id, image: cmd.image }, 'job lost: set-image --now ended it');
      else
        this.log.warn(
          { domain: cmd.domain, jobId: j.id, reason: 'reason' in cmd ? cmd.reason : '' },
          'job lost: its domain vanished',
        );
    }
    // Slim: the changed domains without their job lists, and how the job lists changed.
    const jobChanges: JobChangeInput[] = [];
    for (const d of r.next.domains) {
      const c = jobListChange(prev.domains.find((x) => x.name === d.name)?.jobs ?? [], d.jobs);
      if (!c) continue;
      changed.add(d.name);
      jobChanges.push({
        domain: d.name,
        removed: [...c.removed],
        cleared: c.cleared,
        added: c.added.map((j) => jobView(j, now)),
      });
    }
    const event: NodeEventInput = {
      generation: r.next.generation,
      change: {
        cause,
        domain: cmd.domain,
        job_id: 'jobId' in cmd ? cmd.jobId : '',
        domains: r.next.domains
          .filter((d) => changed.has(d.name))
          .map((d) => domainView(r.next, d, now, this.extras(d), true)),
        at_ms: now,
        job_changes: jobChanges,
      },
    };
    if (phases.length > 0) this.log.debug({ phases, generation: r.next.generation }, 'driver phases');
    this.hub.publish(event);
  }

  private outcome(r: Accepted, cmd: Command, phases: readonly PhaseInput[]): Outcome {
    const d = r.next.domains.find((x) => x.name === cmd.domain);
    return {
      result: r,
      generation: r.next.generation,
      state: d ? reportedState(r.next, d) : '',
      phases,
    };
  }

  /** An end-job of a domain with a per-job lifecycle carries it (journalled, so replay resets too). */
  private withLifecycle(cmd: Command): Command {
    if (cmd.kind !== 'end-job') return cmd;
    const lc = this.opts.domains.find((c) => c.name === cmd.domain)?.lifecycle ?? 'persistent';
    return lc === 'persistent' ? cmd : { ...cmd, reset: lc };
  }

  /** A per-job reset through the driver (a driver without one: shut down, then boot). */
  private async runReset(domain: string, r: ResetRecord): Promise<void> {
    const t0 = performance.now();
    const d = this.deps.driver;
    let steps: readonly DriverStep[] = [];
    let error = '';
    try {
      if (d.reset) steps = await d.reset(domain, r);
      else {
        await d.shutdown(domain);
        await d.boot(domain);
      }
    } catch (err) {
      error = (err as Error).message;
      throw err;
    } finally {
      const info: ResetInfo = {
        policy: r.policy,
        afterJob: r.afterJob,
        // The core names the failed job; the driver says whether its overlay was kept (keepFailed).
        keptFor: steps.some((x) => x.name === 'keep-overlay') ? r.keepFor : '',
        atMs: this.deps.clock.now(),
        millis: performance.now() - t0,
        steps,
        error,
      };
      this.recordReset(domain, this.resets, info);
    }
  }

  /** The image a domain runs: set-image's, else the configured one ('' for none). */
  imageOf(domain: string): string {
    return (
      this.state.domains.find((d) => d.name === domain)?.image ??
      this.opts.domains.find((c) => c.name === domain)?.image ??
      ''
    );
  }

  /** Whether set-image can act on the domain (it gets its disks from a catalogue image). */
  imageBacked(domain: string): boolean {
    return this.deps.images?.backed(domain) ?? false;
  }

  /** The image is in the node's catalogue. */
  imageKnown(image: string): boolean {
    return this.deps.images?.known(image) ?? false;
  }

  /** Downloads a catalogue image into the cache (set-image, before its command: not on the command chain). */
  async pullImage(image: string): Promise<void> {
    if (!this.deps.images) throw new RefusedError('not-image-backed', 'this node has no image layer');
    await this.deps.images.pull(image);
  }

  private adoptImage(domain: string): void {
    const image = this.imageOf(domain);
    if (image !== '' && this.deps.images?.backed(domain) && this.deps.images.known(image))
      this.deps.images.adopt(domain, image);
  }

  /**
   * An image switch (set-image): shut down, a new overlay on the new base, boot. Run again from
   * the start after a crash (the commit of set-image is journalled), so it ends on the new image.
   */
  private async runSwitch(domain: string, image: string): Promise<void> {
    const t0 = performance.now();
    const images = this.deps.images;
    if (!images) throw new Error('no image layer on this node');
    this.log.info({ domain, image, from: this.imageOf(domain) }, 'switching domain image');
    await this.deps.driver.shutdown(domain);
    const shutMs = performance.now() - t0;
    await images.switchTo(domain, image);
    const overlayMs = performance.now() - t0 - shutMs;
    await this.runBoot(domain, false, [
      { name: 'shutdown', millis: shutMs },
      { name: 'set-image', millis: overlayMs },
    ]);
  }

  /** A boot through the driver, its length and steps recorded as the domain's last boot. */
  private async runBoot(domain: string, adopt = true, before: readonly DriverStep[] = []): Promise<void> {
    const t0 = performance.now();
    let error = '';
    try {
      if (adopt) this.adoptImage(domain);
      await this.deps.driver.boot(domain);
      // Booted (or found running and adopted), it runs uncapped: a cap left in its group by an
      // earlier run or mode is not the recorded one (CPU-counting mode caps it as it comes up; in
      // exclusive mode nothing else would take it off).
      await this.setCpuCapOutsideCommands(domain, null, 'could not take the CPU cap off a booted domain');
    } catch (err) {
      error = (err as Error).message;
      this.bootFailedAt.set(domain, this.mono());
      throw err;
    } finally {
      const millis = performance.now() - t0;
      const steps = this.deps.driver.lastBootSteps?.(domain) ?? [];
      this.recordReset(domain, this.boots, {
        policy: 'boot',
        afterJob: '',
        keptFor: '',
        atMs: this.deps.clock.now(),
        millis,
        steps: [...before, ...(steps.length > 0 ? steps : [{ name: 'boot', millis }])],
        error,
      });
    }
  }

  private recordReset(domain: string, into: Map<string, ResetInfo>, info: ResetInfo): void {
    into.set(domain, info);
    this.log.info({ domain, ...info }, info.policy === 'boot' ? 'domain booted' : 'domain reset after a job');
    try {
      this.deps.onReset?.(domain, info);
    } catch (err) {
      this.log.error({ err }, 'reset observer failed');
    }
  }

  private launchBoot(domain: string): void {
    if (this.bootsInFlight.has(domain)) return;
    const rec = this.state.domains.find((x) => x.name === domain);
    const reset = rec?.resetting;
    const switchTo = rec?.pendingImage;
    const what = switchTo !== undefined ? `switch to image ${switchTo}` : reset ? 'reset' : 'boot';
    const p = (
      switchTo !== undefined
        ? this.runSwitch(domain, switchTo)
        : reset
          ? this.runReset(domain, reset)
          : this.runBoot(domain)
    )
      .then(
        () => this.execute({ kind: 'boot-complete', domain }),
        (err: unknown) => {
          this.log.error({ err, domain, what }, 'boot failed');
          return this.execute({ kind: 'boot-failed', domain, reason: `${what} failed: ${(err as Error).message}` });
        },
      )
      .then(
        () => undefined,
        (err: unknown) => this.log.warn({ err, domain }, 'boot outcome not recorded'),
      )
      .finally(() => this.bootsInFlight.delete(domain));
    this.bootsInFlight.set(domain, p);
  }

  /** Waits until no boot is in flight (tests, shutdown). */
  async settleBoots(): Promise<void> {
    while (this.bootsInFlight.size > 0) await Promise.all([...this.bootsInFlight.values()]);
  }

  extras(d: DomainRecord): DomainExtras {
    const f = this.flaps.get(d.name) ?? NO_FLAPS;
    const c = this.opts.domains.find((x) => x.name === d.name);
    const mono = this.mono();
    const heldForMs = Math.max(0, Math.ceil(f.heldUntilMs - mono));
    return {
      observed: this.observations.get(d.name),
      release: this.releases.get(d.name),
      flapCount: flapCount(f, mono, this.flapPolicy),
      heldForMs,
      heldUntilMs: heldForMs > 0 ? this.deps.clock.now() + heldForMs : 0,
      image: this.imageOf(d.name),
      lifecycle: this.opts.domains.find((c) => c.name === d.name)?.lifecycle ?? 'persistent',
      reset: this.resets.get(d.name),
      boot: this.boots.get(d.name),
      kept: this.deps.keptOverlays?.(d.name) ?? [],
      wakeOnDemand: c?.wakeOnDemand ?? false,
      wakeBackoffForMs: this.wakeBackoffForMs(d.name, mono),
      idleShutdownMs: c?.idleShutdownMs ?? 0,
    };
  }

  /** Why the filter may not wake this domain now, or null when it may (down-bootable, wakeOnDemand, no back-off). */
  wakeRefusal(domain: string): string | null {
    const c = this.opts.domains.find((x) => x.name === domain);
    const d = this.state.domains.find((x) => x.name === domain);
    if (!c || !d) return `no domain named ${domain} on this node`;
    if (c.wakeOnDemand !== true) return `domain ${domain} is not woken on demand (domains[].wakeOnDemand)`;
    if (d.state !== 'down-bootable') return `domain ${domain} is ${d.state}, not down-bootable`;
    const backoff = this.wakeBackoffForMs(domain, this.mono());
    if (backoff > 0) return `domain ${domain} failed to boot; not woken for another ${backoff} ms (bootBackoffMs)`;
    return null;
  }

  /** How much longer a failed boot keeps the domain from being offered for a wake-up, ms (0: offered). */
  private wakeBackoffForMs(domain: string, mono: number): number {
    const failedAt = this.bootFailedAt.get(domain);
    if (failedAt === undefined || this.boots.get(domain)?.error === '') return 0;
    const backoff = this.opts.domains.find((c) => c.name === domain)?.bootBackoffMs ?? 60_000;
    return Math.max(0, Math.ceil(failedAt + backoff - mono));
  }

  /**
   * Takes down the domains up with no job for their idle time (domains[].idleShutdownMs); run
   * periodically. A domain is first seen idle at one call and taken down at a later one, so the
   * idle time is measured from the first call that saw it idle (at most one period late).
   */
  async shutDownIdle(): Promise<string[]> {
    const down: string[] = [];
    const mono = this.mono();
    for (const c of this.opts.domains) {
      const limit = c.idleShutdownMs ?? 0;
      const d = this.state.domains.find((x) => x.name === c.name);
      if (limit <= 0 || !d) continue;
      const idle = d.jobs.length === 0 && !d.offline && postureOf(d.state) === 'idle';
      if (!idle) {
        this.idleSince.delete(c.name);
        continue;
      }
      const since = this.idleSince.get(c.name);
      if (since === undefined) {
        this.idleSince.set(c.name, mono);
        continue;
      }
      if (mono - since < limit) continue;
      const r = await this.execute({
        kind: 'idle-down',
        domain: c.name,
        reason: `no job for ${Math.round((mono - since) / 1000)} s (idleShutdownMs ${limit})`,
      });
      this.idleSince.delete(c.name);
      if (!r.result.noop) {
        down.push(c.name);
        this.log.info(
          { domain: c.name, idleMs: Math.round(mono - since), idleShutdownMs: limit },
          'idle domain shut down',
        );
      }
    }
    return down;
  }

  /**
   * Writes a snapshot and starts a new journal. A failure (a full disk) changes nothing: the
   * journal keeps every record, and the snapshot is tried again a little later. Returns whether
   * it was written.
   */
  compact(): boolean {
    try {
      this.deps.journal.compact(this.state, this.seq);
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
      this.compactRetryAt = this.deps.journal.sizeRecords + Math.max(1, Math.min(this.opts.snapshotEvery, 100));
      this.log.error(
        { err, records: this.deps.journal.sizeRecords, retryAtRecords: this.compactRetryAt },
        'snapshot failed; the journal keeps every record',
      );
      return false;
    }
    this.compactRetryAt = 0;
    this.log.debug({ seq: this.seq, generation: this.state.generation }, 'journal compacted');
    return true;
  }

  /** One domain's summary, or null if there is no such domain. */
  domainSummary(name: string): DomainSummary | null {
    const d = this.state.domains.find((x) => x.name === name);
    return d ? domainSummary(this.state, d, this.deps.clock.now(), this.extras(d)) : null;
  }

  /** The whole node in wire shape. */
  view(): ReturnType<typeof nodeView> {
    return nodeView(
      this.opts.nodeName,
      this.deps.driver.kind,
      this.state,
      this.deps.clock.now(),
      (d) => this.extras(d),
      this.deps.hostSample?.() ?? null,
      this.opts.version ?? '',
    );
  }

  /**
   * Compares the recorded states with what the driver observes. A VM that vanished makes its
   * domain `down` (its jobs are reported lost); any other disagreement is flagged as drift and
   * logged, never silently rewritten.
   */
  async reconcile(): Promise<{ down: string[]; drift: string[] }> {
    const down: string[] = [];
    const drift: string[] = [];
    // A state directory deleted or replaced is noticed even when no command comes.
    try {
      this.deps.journal.verify();
      this.noteStorage(null);
    } catch (err) {
      if (!(err instanceof DaemonError) || err.code !== 'state-dir-lost') throw err;
      this.noteStorage(err.message);
    }
    for (const d of this.state.domains) {
      if (this.bootsInFlight.has(d.name) || d.state === 'removed') continue;
      const generationBefore = this.state.domains.find((x) => x.name === d.name)?.generation;
      let obs: Observation;
      try {
        obs = await this.deps.driver.observe(d.name);
      } catch (err) {
        obs = { power: 'unknown', memoryBytes: 0, cpuWeight: 0, detail: `observe failed: ${(err as Error).message}` };
      }
      const cur = this.state.domains.find((x) => x.name === d.name);
      // A command changed the domain while it was observed (a preemption, say): the observation may
      // predate it and would be a false drift. The next pass observes it again.
      if (!cur || cur.generation !== generationBefore) continue;
      const posture = postureOf(cur.state);
      const perJob = this.state.cpuCounting?.perJob.includes(d.name) ?? false;
      const ok = obs.power === 'unknown' || expectedPower(posture, obs.power, perJob);
      const prevObs = this.observations.get(d.name);
      this.observations.set(d.name, { ...obs, observedAtMs: this.deps.clock.now(), drift: !ok });
      if (ok) continue;
      if ((posture === 'idle' || posture === 'active' || posture === 'preempted') && obs.power === 'shut-off') {
        down.push(d.name);
        await this.execute({
          kind: 'observed-down',
          domain: d.name,
          reason: `the VM vanished: the ${this.deps.driver.kind} driver reports it shut off`,
        }).catch((err: unknown) => this.log.error({ err, domain: d.name }, 'could not record a vanished domain'));
        continue;
      }
      drift.push(d.name);
      if (!prevObs?.drift || prevObs.power !== obs.power) {
        this.log.warn(
          { domain: d.name, state: cur.state, observed: obs.power, detail: obs.detail },
          'domain drift: the driver disagrees with the recorded state',
        );
      }
    }
    return { down, drift };
  }

  /** Stops accepting commands and waits for the one in progress. */
  async drain(): Promise<void> {
    this.accepting = false;
    await this.chain;
  }

  /** Current domain names (for validation). */
  hasDomain(name: string): boolean {
    return this.state.domains.some((d) => d.name === name);
  }
}
