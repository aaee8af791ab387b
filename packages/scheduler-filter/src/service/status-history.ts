/**
 * The status page's memory of the recent past: per domain, its last transitions, job starts and
 * ends, preemptions with their phase timings and resumptions, reachability of its node; and since
 * when each domain has been up. Bounded per domain and in all (the domain changed least recently
 * loses its oldest entries first). Fed by the cluster view; no I/O.
 */
import type { DomainEntry, NodeChange } from './cluster-view';

/** One phase of the driver work of a preemption, as the daemon timed it. */
export interface PhaseTiming {
  readonly name: string;
  readonly millis: number;
}

/** What a preemption did to the domain it preempted (the daemon's `last_release`). */
export interface ReleaseFacts {
  readonly atMs: number;
  readonly mode: string;
  readonly memoryReleasedBytes: number;
  readonly cpuWeightBefore: number;
  readonly cpuWeightAfter: number;
  readonly phases: readonly PhaseTiming[];
}

/** One remembered change of a domain. Fields that did not change are left at their empty value. */
export interface TimelineEntry {
  /** The daemon's commit time; the filter's own time for what is not a commit (reachability, hold expiry), ms. */
  readonly atMs: number;
  /** True when `atMs` is the daemon's commit time. */
  readonly committed: boolean;
  readonly generation: number;
  /** What the daemon says caused it (start-job, end-job, action:boot, …); '' when not a commit. */
  readonly cause: string;
  /** The job the command named ('' : none). */
  readonly jobId: string;
  /** State before and after ('' when unchanged; from '' = first seen). */
  readonly from: string;
  readonly to: string;
  readonly jobsStarted: readonly string[];
  readonly jobsEnded: readonly string[];
  /** Set when this change preempted the domain. */
  readonly release: ReleaseFacts | null;
  /** Set when this change resumed the domain: how long it was preempted, ms. */
  readonly resumedAfterMs: number | null;
  /** Other things worth a line: offline/online, flap hold, unreachable/reachable, removed. */
  readonly notes: readonly string[];
}

/** Since when a domain has been up: `exact` when the filter saw it come up, else "at least since". */
export interface UpSince {
  readonly ms: number;
  readonly exact: boolean;
}

/** Stored states in which a domain is not running (no uptime). */
const NOT_UP: ReadonlySet<string> = new Set(['down', 'down-bootable', 'booting', 'frozen', 'removed']);

export const domainKey = (node: string, domain: string): string => `${node}/${domain}`;

/** The domain's last preemption as plain numbers (null: never preempted). */
export function releaseOf(e: DomainEntry | undefined): ReleaseFacts | null {
  const r = e?.message.last_release;
  if (!r) return null;
  return {
    atMs: Number(r.at_ms),
    mode: r.mode,
    memoryReleasedBytes: Number(r.memory_released_bytes),
    cpuWeightBefore: r.cpu_weight_before,
    cpuWeightAfter: r.cpu_weight_after,
    phases: r.phases.map((p) => ({ name: p.name, millis: p.millis })),
  };
}

export interface HistoryLimits {
  /** Entries kept per domain. */
  readonly perDomain: number;
  /** Entries kept in all. */
  readonly total: number;
}

export class StatusHistory {
  /** Domain key → its entries, oldest first; the map's order is least recently changed first. */
  private readonly entries = new Map<string, TimelineEntry[]>();
  private count = 0;
  private readonly up = new Map<string, UpSince>();
  /** Node → reachable as last told (a reachability change comes as "every domain unchanged"). */
  private readonly reachable = new Map<string, boolean>();

  constructor(
    private readonly limits: HistoryLimits,
    private readonly now: () => number,
  ) {}

  /** Entries kept in all. */
  get size(): number {
    return this.count;
  }

  /** View listener. */
  readonly onView = (c: NodeChange): void => {
    const node = c.node.cfg.name;
    const reachable = c.node.reachable && c.node.synced;
    const wasReachable = this.reachable.get(node);
    this.reachable.set(node, reachable);
    const reachNote =
      wasReachable === undefined || wasReachable === reachable
        ? null
        : reachable
          ? 'node daemon reachable again'
          : `node daemon unreachable: ${c.node.error}`;
    const committed = c.commitAtMs > 0;
    const atMs = committed ? c.commitAtMs : this.now();
    for (const { name, before, after } of c.domains) {
      const key = domainKey(node, name);
      const notes: string[] = reachNote ? [reachNote] : [];
      if (!after) {
        this.up.delete(key);
        this.add(key, { ...this.blank(atMs, committed, c), from: before?.message.state ?? '', notes: ['removed'] });
        continue;
      }
      const a = after.message;
      const b = before?.message;
      this.trackUp(key, before, after);
      const from = !b ? '' : b.state !== a.state ? b.state : '';
      const to = !b || b.state !== a.state ? a.state : '';
      const beforeJobs = new Set(before?.jobIds ?? []);
      const afterJobs = new Set(after.jobIds);
      const jobsStarted = before ? after.jobIds.filter((j) => !beforeJobs.has(j)) : [];
      const jobsEnded = (before?.jobIds ?? []).filter((j) => !afterJobs.has(j));
      const rb = releaseOf(before);
      const ra = releaseOf(after);
      const release = before && ra && ra.atMs !== rb?.atMs ? ra : null;
      // The daemon's since_ms of a preempted domain is when it was preempted.
      const resumedAfterMs =
        b && before.storedState === 'preempted' && after.storedState !== 'preempted'
          ? Math.max(0, atMs - Number(b.since_ms))
          : null;
      if (b && b.offline !== a.offline)
        notes.push(a.offline ? `offline: ${a.offline_reason || 'no reason given'}` : 'online');
      // Each message recomputes the hold's end from its remaining time: only a new or extended
      // hold (more than a second later) or its end is news.
      if (
        before &&
        (after.heldUntilMono > before.heldUntilMono + 1000 || before.heldUntilMono > 0 !== after.heldUntilMono > 0)
      )
        notes.push(
          after.heldUntilMono > 0 ? `held out of scheduling for flapping (${a.flap_count} drops)` : 'flap hold ended',
        );
      const first = !before;
      const worth =
        first ||
        to !== '' ||
        jobsStarted.length + jobsEnded.length > 0 ||
        release ||
        resumedAfterMs !== null ||
        notes.length > 0;
      if (!worth) continue;
      this.add(key, {
        ...this.blank(atMs, committed, c),
        generation: Number(a.generation),
        from,
        to,
        jobsStarted,
        jobsEnded,
        release,
        resumedAfterMs,
        notes: first ? [...notes, 'first seen by this filter'] : notes,
      });
    }
  };

  private blank(atMs: number, committed: boolean, c: NodeChange): TimelineEntry {
    return {
      atMs,
      committed,
      generation: c.node.generation,
      cause: c.cause,
      jobId: c.jobId,
      from: '',
      to: '',
      jobsStarted: [],
      jobsEnded: [],
      release: null,
      resumedAfterMs: null,
      notes: [],
    };
  }

  private trackUp(key: string, before: DomainEntry | undefined, after: DomainEntry): void {
    const isUp = !NOT_UP.has(after.storedState);
    if (!isUp) {
      this.up.delete(key);
      return;
    }
    const known = this.up.get(key);
    const since = Number(after.message.since_ms);
    if (before && NOT_UP.has(before.storedState)) this.up.set(key, { ms: since, exact: true });
    else if (!known) this.up.set(key, { ms: since, exact: false });
    else if (!known.exact && since > 0 && since < known.ms) this.up.set(key, { ms: since, exact: false });
  }

  private add(key: string, e: TimelineEntry): void {
    const list = this.entries.get(key) ?? [];
    this.entries.delete(key); // re-inserted last: the most recently changed domain
    list.push(e);
    this.count++;
    while (list.length > this.limits.perDomain) {
      list.shift();
      this.count--;
    }
    this.entries.set(key, list);
    while (this.count > this.limits.total) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, TimelineEntry[]];
      oldest.shift();
      this.count--;
      if (oldest.length === 0) this.entries.delete(oldestKey);
    }
  }

  /** The domain's entries, oldest first (empty when none are kept). */
  timeline(node: string, domain: string): readonly TimelineEntry[] {
    return this.entries.get(domainKey(node, domain)) ?? [];
  }

  /** Since when the domain has been up, or null when it is not up (or not known). */
  upSince(node: string, domain: string): UpSince | null {
    return this.up.get(domainKey(node, domain)) ?? null;
  }
}
