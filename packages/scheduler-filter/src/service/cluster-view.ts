/**
 * The filter's live view of every node daemon, fed by the watchers. Each arriving domain is
 * converted once into what the pure core reads (DomainSnapshot) plus the few facts other
 * consumers need; subscribers get the changed domains with their entries before and after, and
 * Admit/Candidates read a vnode index kept up to date on every change (no rebuild per call).
 *
 * Everything a daemon says is untrusted: it ends up in qmgr and qsig commands run with PBS
 * manager rights. A domain is taken only with a valid name, only up to MAX_DOMAINS_PER_NODE per
 * node, and only if its vnode is one this node may write (not a vnode another node is configured
 * or seen with); numbers are finite, job ids are PBS-shaped text, free text is cut short. Job
 * lists are kept per domain and follow the slim changes (Change.job_changes).
 */
import type { DomainMessage, JobChangeMessage, JobMessage, NodeEventMessage } from '@magrathea/common';
import { applyJobChange } from '@magrathea/common';
import { DOMAIN_NAME, JOB_ID_TEXT, MAX_DOMAINS_PER_NODE } from '@magrathea/common/rules';
import type { Logger } from 'pino';
import type { DomainSnapshot, NodeSnapshot, Placed, WakeDomain } from '../core';
import { KNOWN_STATES } from '../core';
import type { FilterConfig, FilterNodeConfig } from './config';
import { VNODE, vnodeName } from './config';
import type { Metrics } from './metrics';

/** One domain as it arrived, converted once. Immutable: a change replaces the entry. */
export interface DomainEntry {
  /** The PBS vnode of the domain. */
  readonly vnode: string;
  /** What the pure core reads; `held` as of arrival (or of the hold's expiry), see `snapshotAt`. */
  readonly snapshot: DomainSnapshot;
  /** Held out of scheduling for flapping until then, on the filter's monotonic clock (0: not held). */
  readonly heldUntilMono: number;
  /** domains[].wakeOnDemand as the daemon reports it. */
  readonly wakeOnDemand: boolean;
  /** A failed boot's wake-up back-off runs until then, on the filter's monotonic clock (0: none). */
  readonly wakeBackoffUntilMono: number;
  /** The stored state (honest accounting follows preempted ↔ running). */
  readonly storedState: string;
  /** The domain's jobs by id (kept across slim changes). */
  readonly jobs: ReadonlyMap<string, JobMessage>;
  /** Ids of the domain's jobs (honest accounting signals them; built on first use). */
  readonly jobIds: readonly string[];
  /** How the domain was last preempted (throttle, pause, save, …; '' when never): a paused domain's mom cannot answer PBS. */
  readonly releaseMode: string;
  /** The message as the daemon sent it, with its whole job list and free text cut (built on first use): ClusterService hands it out as the vnode's `detail`. */
  readonly message: DomainMessage;
}

/** One node daemon as the filter sees it. */
export interface NodeEntry {
  readonly cfg: FilterNodeConfig;
  reachable: boolean;
  /** True once a snapshot has been received (before that, nothing is published as accepting). */
  synced: boolean;
  lastSeenMs: number;
  generation: number;
  error: string;
  sinceMs: number;
  /** The node as the pure core sees it; replaced whenever the node changes (a node never synced is unreachable). */
  snapshot: NodeSnapshot;
  /** The node's domains in the daemon's order. */
  domains: Map<string, DomainEntry>;
  /** The daemon is in CPU-counting mode (from its last snapshot: the mode changes only with a restart). */
  cpuCounting?: boolean;
  /** The other name its daemon reported and was warned about (a host name that is not the configured one). */
  warnedName?: string;
  /** The other configured node its daemon's last snapshot named (its reports are not taken), or undefined. */
  refusedAs?: string | undefined;
}

/** One changed domain: its entry before and after (undefined: not known before / gone). */
export interface DomainChange {
  readonly name: string;
  readonly before: DomainEntry | undefined;
  readonly after: DomainEntry | undefined;
}

/** What subscribers get after a node's view changed. */
export interface NodeChange {
  /** The node, as it is now. */
  readonly node: NodeEntry;
  readonly domains: readonly DomainChange[];
  /** When the daemon committed the change (0 if it is not a commit: snapshots, reachability, hold expiry). */
  readonly commitAtMs: number;
  /** What the daemon says caused the commit (start-job, end-job, action:boot, …) and its job id; '' when not a commit. */
  readonly cause: string;
  readonly jobId: string;
}

/** Told after a node's view changed. */
export type ViewListener = (change: NodeChange) => void;

/** A vnode placed on its node, with its entry (for the `detail` of answers). */
export interface PlacedEntry extends Placed {
  readonly entry: DomainEntry;
}

/** The entry's snapshot with `held` evaluated at `monoMs` (the same object when nothing changed). */
export function snapshotAt(e: DomainEntry, monoMs: number): DomainSnapshot {
  const held = e.heldUntilMono > monoMs;
  return e.snapshot.held === held ? e.snapshot : { ...e.snapshot, held };
}

/** Longest free text kept from a daemon (reasons, details), characters. */
const MAX_TEXT = 1024;
/** Most jobs kept per domain. */
export const MAX_JOBS_PER_DOMAIN = 100_000;

/** The largest magrathea_cpus the filter writes (the daemon's MAX_CPUS). */
const MAX_PUBLISHED_CPUS = 4096;
const finite = (x: number): number => (Number.isFinite(x) && x >= 0 ? x : 0);
const cut = (t: string): string => (t.length > MAX_TEXT ? `${t.slice(0, MAX_TEXT)}…` : t);

/** The time sources of the view: wall (reported times) and monotonic (holds). */
export interface ViewClock {
  readonly nowMs: number;
  readonly monoMs: number;
}

/**
 * Converts one arriving domain message, with its job list (`jobs`: already merged from the slim
 * changes). `d.held_for_ms` (a duration) is preferred to `held_until_ms` (the daemon's wall clock).
 */
export function domainEntry(
  d: DomainMessage,
  vnode: string,
  t: ViewClock,
  jobs: ReadonlyMap<string, JobMessage> = new Map(d.jobs.map((j) => [j.id, j])),
  cpuCounting = false,
): DomainEntry {
  const heldFor = finite(Number(d.held_for_ms));
  const heldUntilWall = finite(Number(d.held_until_ms));
  const remaining = heldFor > 0 ? heldFor : heldUntilWall > t.nowMs ? heldUntilWall - t.nowMs : 0;
  const heldUntilMono = remaining > 0 ? t.monoMs + remaining : 0;
  // The id list and the detail are built only when asked for (a domain may hold 10,000 jobs).
  let ids: string[] | null = null;
  let detail: DomainMessage | null = null;
  return {
    vnode,
    snapshot: {
      held: remaining > 0,
      name: d.name,
      class: d.domain_class === 'priority' ? 'priority' : 'normal',
      state: d.state,
      offline: d.offline,
      preemptedCpuSeconds: finite(d.preempted_cpu_seconds),
      generation: finite(Number(d.generation)),
      // Written into a qmgr command: only names of the domain alphabet.
      image: DOMAIN_NAME.test(d.image) ? d.image : '',
      pendingImage: d.pending_image ?? '',
      ...(d.wake_on_demand === true ? { wakeOnDemand: true } : {}),
      // CPU-counting mode: what a job of this domain may take now (a bounded integer, from an untrusted daemon).
      cpusFree: cpuCounting ? Math.min(MAX_PUBLISHED_CPUS, Math.max(0, Math.floor(finite(d.cpus_free)))) : null,
    },
    heldUntilMono,
    wakeOnDemand: d.wake_on_demand === true,
    wakeBackoffUntilMono:
      finite(Number(d.wake_backoff_for_ms)) > 0 ? t.monoMs + finite(Number(d.wake_backoff_for_ms)) : 0,
    storedState: d.stored_state,
    jobs,
    get jobIds() {
      return (ids ??= [...jobs.keys()]);
    },
    releaseMode: d.last_release?.mode ?? '',
    get message() {
      if (detail) return detail;
      const jobList = [...jobs.values()];
      detail = {
        ...d,
        jobs: jobList,
        jobs_omitted: false,
        job_count: jobList.length,
        offline_reason: cut(d.offline_reason),
        down_reason: cut(d.down_reason),
        observed: d.observed ? { ...d.observed, detail: cut(d.observed.detail) } : null,
      };
      return detail;
    },
  };
}

/** The live view of every configured node daemon. */
export class ClusterView {
  readonly nodes = new Map<string, NodeEntry>();
  private readonly listeners = new Set<ViewListener>();
  /** vnode → its node and current entry, kept up to date on every change. */
  private readonly vnodes = new Map<string, { readonly node: NodeEntry; entry: DomainEntry }>();

  /** Vnodes named in a node's `vnodes` map: no other node may write them. */
  private readonly reserved = new Map<string, string>();
  private readonly mono: () => number;

  constructor(
    readonly cfg: FilterConfig,
    private readonly deps: {
      logger: Logger;
      metrics: Metrics;
      /** Wall clock (times shown). */
      now: () => number;
      /** Monotonic clock (flap holds), default performance.now(). */
      mono?: () => number;
    },
  ) {
    this.mono = deps.mono ?? (() => performance.now());
    for (const n of cfg.nodes) for (const v of Object.values(n.vnodes)) this.reserved.set(v, n.name);
    for (const n of cfg.nodes) {
      const node: NodeEntry = {
        cfg: n,
        reachable: false,
        synced: false,
        lastSeenMs: 0,
        generation: 0,
        error: 'not connected yet',
        sinceMs: deps.now(),
        snapshot: { name: n.name, reachable: false, generation: 0, domains: [] },
        domains: new Map(),
      };
      this.nodes.set(n.name, node);
    }
  }

  subscribe(l: ViewListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Refreshes the node's core snapshot and the vnode index, then tells the subscribers. */
  private commit(n: NodeEntry, domains: readonly DomainChange[], commitAtMs: number, cause = '', jobId = ''): void {
    n.snapshot = {
      name: n.cfg.name,
      reachable: n.reachable && n.synced,
      generation: n.generation,
      domains: [...n.domains.values()].map((e) => e.snapshot),
    };
    for (const c of domains) {
      if (c.after) this.vnodes.set(c.after.vnode, { node: n, entry: c.after });
      else if (c.before && this.vnodes.get(c.before.vnode)?.node === n) this.vnodes.delete(c.before.vnode);
    }
    const change: NodeChange = { node: n, domains, commitAtMs, cause, jobId };
    for (const l of this.listeners) l(change);
  }

  /** Every domain of the node, unchanged (the node's reachability changed). */
  private allUnchanged(n: NodeEntry): DomainChange[] {
    return [...n.domains.values()].map((e) => ({ name: e.snapshot.name, before: e, after: e }));
  }

  /** When the entry's flap hold ends on the wall clock, for display (0: not held). */
  heldUntilWallMs(e: DomainEntry): number {
    const left = e.heldUntilMono - this.mono();
    return e.heldUntilMono > 0 && left > 0 ? this.deps.now() + left : 0;
  }

  private clock(): ViewClock {
    return { nowMs: this.deps.now(), monoMs: this.mono() };
  }

  /** Why node `n` may not write `vnode`, or null when it may. */
  private vnodeRefusal(n: NodeEntry, vnode: string): string | null {
    if (!VNODE.test(vnode)) return 'not a valid PBS vnode name';
    const owner = this.reserved.get(vnode);
    if (owner !== undefined && owner !== n.cfg.name) return `the vnode belongs to node ${owner} (its vnodes map)`;
    const held = this.vnodes.get(vnode);
    if (held && held.node !== n) return `the vnode is already reported by node ${held.node.cfg.name}`;
    return null;
  }

  private ignored(n: NodeEntry, domain: string, why: string): void {
    this.deps.metrics.rejectedDomains.inc();
    this.deps.logger.error(
      { node: n.cfg.name, domain: domain.slice(0, 100), why },
      'node daemon reported a domain the filter does not take; ignored',
    );
  }

  /** Job ids that are PBS-shaped text (anything else never reaches qsig), at most MAX_JOBS_PER_DOMAIN. */
  private checkedJobs(
    n: NodeEntry,
    domain: string,
    jobs: Iterable<JobMessage>,
    room = MAX_JOBS_PER_DOMAIN,
  ): Map<string, JobMessage> {
    const out = new Map<string, JobMessage>();
    let bad = 0;
    for (const j of jobs) {
      if (!JOB_ID_TEXT.test(j.id) || out.size >= room) bad++;
      else out.set(j.id, j);
    }
    if (bad > 0)
      this.deps.logger.error(
        { node: n.cfg.name, domain, ignored: bad, max: MAX_JOBS_PER_DOMAIN },
        'node daemon reported jobs the filter does not take (not a job id, or too many); ignored',
      );
    return out;
  }

  /**
   * Converts arriving domains once (unknown states are counted and logged), merges their job lists
   * (a slim record's from the entry before, with its job changes), and arms their hold expiry.
   * `known` are the node's domains the arriving ones are counted with (the cap).
   */
  private receive(
    n: NodeEntry,
    ds: readonly DomainMessage[],
    known: ReadonlyMap<string, DomainEntry>,
    jobChanges: readonly JobChangeMessage[] = [],
  ): DomainEntry[] {
    const t = this.clock();
    const out = new Map<string, DomainEntry>();
    let count = known.size;
    // One vnode per domain: two domains of a node may not write the same vnode either.
    const vnodeOf = new Map([...known.values()].map((e) => [e.vnode, e.snapshot.name]));
    for (const d of ds) {
      // A domain name goes into the vnode name and so into qmgr commands: a daemon may not choose it freely.
      if (!DOMAIN_NAME.test(d.name)) {
        this.ignored(n, d.name, 'not a valid domain name');
        continue;
      }
      if (!known.has(d.name) && !out.has(d.name) && count >= MAX_DOMAINS_PER_NODE) {
        this.ignored(n, d.name, `more than ${MAX_DOMAINS_PER_NODE} domains on one node`);
        continue;
      }
      const vnode = vnodeName(this.cfg, n.cfg, d.name);
      const sibling = vnodeOf.get(vnode);
      const refusal =
        sibling !== undefined && sibling !== d.name
          ? `the vnode is already written for domain ${sibling}`
          : this.vnodeRefusal(n, vnode);
      if (refusal !== null) {
        this.ignored(n, d.name, `vnode ${vnode.slice(0, 100)}: ${refusal}`);
        continue;
      }
      if (!KNOWN_STATES.has(d.state)) {
        this.deps.metrics.unknownStates.inc();
        this.deps.logger.warn(
          { node: n.cfg.name, domain: d.name, state: d.state.slice(0, 100) },
          'node daemon reported an unknown state; the domain accepts nothing',
        );
      }
      let jobs: ReadonlyMap<string, JobMessage>;
      if (d.jobs_omitted) {
        // The kept list was checked when it arrived: only the added jobs are checked now.
        jobs = known.get(d.name)?.jobs ?? new Map<string, JobMessage>();
        for (const c of jobChanges)
          if (c.domain === d.name) {
            const room = MAX_JOBS_PER_DOMAIN - jobs.size + c.removed.length;
            jobs = applyJobChange(jobs, { ...c, added: [...this.checkedJobs(n, d.name, c.added, room).values()] });
          }
      } else jobs = this.checkedJobs(n, d.name, d.jobs);
      if (!known.has(d.name) && !out.has(d.name)) count++;
      const e = domainEntry(d, vnode, t, jobs, n.cpuCounting === true);
      this.armHoldExpiry(n, e);
      out.set(d.name, e);
      vnodeOf.set(vnode, d.name);
    }
    return [...out.values()];
  }

  /**
   * Applies one WatchNode message. Returns false when the stream must be re-read from a
   * snapshot (a change whose generation does not follow the last one seen).
   */
  apply(nodeName: string, e: NodeEventMessage): boolean {
    const n = this.nodes.get(nodeName);
    if (!n) return true;
    const now = this.deps.now();
    const gen = Number(e.generation);
    const wasReachable = n.reachable;
    n.lastSeenMs = now;
    if (e.snapshot) {
      if (this.claimsAnotherNode(n, e.snapshot.name)) return true;
      if (n.synced && gen < n.generation) {
        this.deps.logger.warn(
          { node: nodeName, from: n.generation, to: gen },
          'node daemon generation went backwards (state directory replaced?); taking its snapshot',
        );
        this.deps.metrics.generationBackwards.inc();
      }
      const previous = n.domains;
      // The node's vnodes are released first, so it may keep them in its new snapshot.
      for (const d of previous.values()) if (this.vnodes.get(d.vnode)?.node === n) this.vnodes.delete(d.vnode);
      n.cpuCounting = e.snapshot.cpu_counting === true;
      n.domains = new Map(this.receive(n, e.snapshot.domains, new Map()).map((d) => [d.snapshot.name, d]));
      n.generation = gen;
      n.synced = true;
      n.refusedAs = undefined;
      n.reachable = true;
      n.error = '';
      if (!wasReachable) n.sinceMs = now;
      const names = new Set([...previous.keys(), ...n.domains.keys()]);
      this.commit(
        n,
        [...names].map((name) => ({ name, before: previous.get(name), after: n.domains.get(name) })),
        0,
      );
      return true;
    }
    if (e.heartbeat) {
      // A heartbeat carries the daemon's generation: one we have not seen means events were missed.
      if (n.synced && gen !== n.generation) {
        this.deps.logger.warn(
          { node: nodeName, last: n.generation, got: gen },
          'heartbeat from another generation; re-reading the node',
        );
        return false;
      }
      if (n.synced && !n.reachable) {
        n.reachable = true;
        n.error = '';
        n.sinceMs = now;
        this.deps.logger.info({ node: nodeName, generation: n.generation }, 'node daemon reachable again');
        this.commit(n, this.allUnchanged(n), 0);
      }
      return true;
    }
    if (!e.change) return true;
    // Refused as another node's daemon (logged then): its changes are not taken either. Re-reading
    // would reach the same daemon (and, through a relay, restart every node's stream); the next
    // snapshot, after any reconnection, is judged again.
    if (n.refusedAs !== undefined) return true;
    if (!n.synced || gen <= n.generation) {
      this.deps.metrics.generationBackwards.inc();
      this.deps.logger.warn(
        { node: nodeName, last: n.generation, got: gen },
        'change out of order; re-reading the node from a snapshot',
      );
      return false;
    }
    const changes: DomainChange[] = [];
    for (const d of this.receive(n, e.change.domains, n.domains, e.change.job_changes ?? [])) {
      const name = d.snapshot.name;
      changes.push({ name, before: n.domains.get(name), after: d });
      n.domains.set(name, d);
    }
    n.generation = gen;
    n.reachable = true;
    n.error = '';
    if (!wasReachable) n.sinceMs = now;
    this.commit(n, changes, Number(e.change.at_ms), e.change.cause, e.change.job_id);
    return true;
  }

  /**
   * Whether the snapshot's node name is another configured node's: the address of this node leads
   * to that node's daemon (two nodes' addresses swapped, a stale DNS entry), and publishing its
   * domains as this node's vnodes would show PBS the wrong machine. The node then accepts nothing,
   * with the reason shown, and its changes are not taken, until a snapshot names it again. Any other
   * name (the daemon's default host name, say node12.example.org for node12) is taken, with a
   * warning once per name.
   */
  private claimsAnotherNode(n: NodeEntry, claimed: string): boolean {
    const name = n.cfg.name;
    if (claimed === '' || claimed === name) return false;
    if (!this.nodes.has(claimed)) {
      if (n.warnedName !== claimed) {
        n.warnedName = claimed;
        this.deps.logger.warn(
          { node: name, reported: claimed.slice(0, 100) },
          'node daemon reports another node name; taken as the configured node',
        );
      }
      return false;
    }
    const error = `the daemon at this node's address says it is node ${claimed}: check nodes[].address (its reports are not taken)`;
    if (n.refusedAs !== claimed)
      this.deps.logger.error(
        { node: name, reported: claimed },
        'node daemon is another configured node; its reports are not taken',
      );
    this.deps.metrics.wrongNode.inc();
    n.refusedAs = claimed;
    n.synced = false;
    n.error = error;
    if (n.reachable) {
      n.reachable = false;
      n.sinceMs = this.deps.now();
      this.commit(n, this.allUnchanged(n), 0);
    }
    return true;
  }

  /** When a domain's flap hold ends, its entry is re-evaluated and its vnode published again. */
  private armHoldExpiry(n: NodeEntry, e: DomainEntry): void {
    const wait = e.heldUntilMono - this.mono();
    if (e.heldUntilMono === 0 || wait <= 0) return;
    setTimeout(() => {
      const name = e.snapshot.name;
      if (n.domains.get(name) !== e) return;
      const after: DomainEntry = { ...e, snapshot: snapshotAt(e, this.mono()) };
      n.domains.set(name, after);
      this.commit(n, [{ name, before: e, after }], 0);
    }, wait + 5).unref();
  }

  /** A resumed watch is live again with nothing missed: the node's last view holds. */
  markReachable(nodeName: string): void {
    const n = this.nodes.get(nodeName);
    if (!n || n.reachable || !n.synced) return;
    n.reachable = true;
    n.error = '';
    n.lastSeenMs = this.deps.now();
    n.sinceMs = n.lastSeenMs;
    this.deps.logger.info({ node: nodeName, generation: n.generation }, 'node daemon reachable again');
    this.commit(n, this.allUnchanged(n), 0);
  }

  /** The grace period ran out: the node accepts nothing until it is heard from again. Its work is not touched. */
  markUnreachable(nodeName: string, error: string): void {
    const n = this.nodes.get(nodeName);
    if (!n || !n.reachable) {
      if (n) n.error = error;
      return;
    }
    n.reachable = false;
    n.error = error;
    n.sinceMs = this.deps.now();
    this.deps.logger.warn(
      { node: nodeName, error },
      'node daemon unreachable past the grace period; its vnodes accept nothing',
    );
    this.commit(n, this.allUnchanged(n), 0);
  }

  /** The entry's core snapshot now (a flap hold that has just ended no longer counts). */
  snapshotNow(e: DomainEntry): DomainSnapshot {
    return snapshotAt(e, this.mono());
  }

  /** One vnode placed on its node, or undefined when no node daemon reported it. */
  placed(vnode: string): PlacedEntry | undefined {
    const p = this.vnodes.get(vnode);
    return p && this.toPlaced(vnode, p.node, p.entry, this.mono());
  }

  /** Every known vnode with what waking it needs (wake on demand), as of now. */
  wakeDomains(): WakeDomain[] {
    const now = this.mono();
    return [...this.vnodes].map(([vnode, p]) => ({
      node: p.node.snapshot,
      domain: snapshotAt(p.entry, now),
      vnode,
      wakeOnDemand: p.entry.wakeOnDemand,
      backingOff: p.entry.wakeBackoffUntilMono > now,
    }));
  }

  /** Every known vnode placed on its node (for ranking). */
  allPlaced(): PlacedEntry[] {
    const now = this.mono();
    return [...this.vnodes].map(([vnode, p]) => this.toPlaced(vnode, p.node, p.entry, now));
  }

  private toPlaced(vnode: string, node: NodeEntry, entry: DomainEntry, nowMs: number): PlacedEntry {
    return { node: node.snapshot, domain: snapshotAt(entry, nowMs), vnode, entry };
  }
}
