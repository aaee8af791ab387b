/**
 * The filter's live view of every node daemon, fed by the watchers. Each arriving domain is
 * converted once into what the pure core reads (DomainSnapshot) plus the few facts other
 * consumers need; subscribers get the changed domains with their entries before and after, and
 * Admit/Candidates read a vnode index kept up to date on every change (no rebuild per call).
 */
import type { DomainMessage, NodeEventMessage } from '@magrathea/common';
import { DOMAIN_NAME } from '@magrathea/common/rules';
import type { Logger } from 'pino';
import type { DomainSnapshot, NodeSnapshot, Placed } from '../core';
import { KNOWN_STATES } from '../core';
import type { FilterConfig, FilterNodeConfig } from './config';
import { vnodeName } from './config';
import type { Metrics } from './metrics';

/** One domain as it arrived, converted once. Immutable: a change replaces the entry. */
export interface DomainEntry {
  /** The PBS vnode of the domain. */
  readonly vnode: string;
  /** What the pure core reads; `held` as of arrival (or of the hold's expiry), see `snapshotAt`. */
  readonly snapshot: DomainSnapshot;
  /** Held out of scheduling for flapping until then, ms since the epoch (0: not held). */
  readonly heldUntilMs: number;
  /** The stored state (honest accounting follows preempted ↔ running). */
  readonly storedState: string;
  /** Ids of the domain's jobs (honest accounting signals them). */
  readonly jobIds: readonly string[];
  /** How the domain was last preempted (throttle, pause, save, …; '' when never): a paused domain's mom cannot answer PBS. */
  readonly releaseMode: string;
  /** The message as the daemon sent it: ClusterService hands it out as the vnode's `detail`. */
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

/** The entry's snapshot with `held` evaluated at `nowMs` (the same object when nothing changed). */
export function snapshotAt(e: DomainEntry, nowMs: number): DomainSnapshot {
  const held = e.heldUntilMs > nowMs;
  return e.snapshot.held === held ? e.snapshot : { ...e.snapshot, held };
}

/** Converts one arriving domain message. */
export function domainEntry(d: DomainMessage, vnode: string, nowMs: number): DomainEntry {
  const heldUntilMs = Number(d.held_until_ms);
  return {
    vnode,
    snapshot: {
      held: heldUntilMs > nowMs,
      name: d.name,
      class: d.domain_class === 'priority' ? 'priority' : 'normal',
      state: d.state,
      offline: d.offline,
      preemptedCpuSeconds: d.preempted_cpu_seconds,
      generation: Number(d.generation),
      // Written into a qmgr command: only names of the domain alphabet.
      image: DOMAIN_NAME.test(d.image) ? d.image : '',
    },
    heldUntilMs,
    storedState: d.stored_state,
    jobIds: d.jobs.map((j) => j.id),
    releaseMode: d.last_release?.mode ?? '',
    message: d,
  };
}

/** The live view of every configured node daemon. */
export class ClusterView {
  readonly nodes = new Map<string, NodeEntry>();
  private readonly listeners = new Set<ViewListener>();
  /** vnode → its node and current entry, kept up to date on every change. */
  private readonly vnodes = new Map<string, { readonly node: NodeEntry; entry: DomainEntry }>();

  constructor(
    readonly cfg: FilterConfig,
    private readonly deps: { logger: Logger; metrics: Metrics; now: () => number },
  ) {
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

  /** Converts arriving domains once (unknown states are counted and logged) and arms their hold expiry. */
  private receive(n: NodeEntry, ds: readonly DomainMessage[]): DomainEntry[] {
    const now = this.deps.now();
    const named = ds.filter((d) => {
      // A domain name goes into the vnode name and so into qmgr commands: a daemon may not choose it freely.
      if (DOMAIN_NAME.test(d.name)) return true;
      this.deps.logger.error(
        { node: n.cfg.name, domain: d.name.slice(0, 100) },
        'node daemon reported a domain with an invalid name; ignored',
      );
      return false;
    });
    return named.map((d) => {
      if (!KNOWN_STATES.has(d.state)) {
        this.deps.metrics.unknownStates.inc();
        this.deps.logger.warn(
          { node: n.cfg.name, domain: d.name, state: d.state },
          'node daemon reported an unknown state; the domain accepts nothing',
        );
      }
      const e = domainEntry(d, vnodeName(this.cfg, n.cfg, d.name), now);
      this.armHoldExpiry(n, e);
      return e;
    });
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
      if (n.synced && gen < n.generation) {
        this.deps.logger.warn(
          { node: nodeName, from: n.generation, to: gen },
          'node daemon generation went backwards (state directory replaced?); taking its snapshot',
        );
        this.deps.metrics.generationBackwards.inc();
      }
      const previous = n.domains;
      n.domains = new Map(this.receive(n, e.snapshot.domains).map((d) => [d.snapshot.name, d]));
      n.generation = gen;
      n.synced = true;
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
    if (!n.synced || gen <= n.generation) {
      this.deps.metrics.generationBackwards.inc();
      this.deps.logger.warn(
        { node: nodeName, last: n.generation, got: gen },
        'change out of order; re-reading the node from a snapshot',
      );
      return false;
    }
    const changes: DomainChange[] = [];
    for (const d of this.receive(n, e.change.domains)) {
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

  /** When a domain's flap hold ends, its entry is re-evaluated and its vnode published again. */
  private armHoldExpiry(n: NodeEntry, e: DomainEntry): void {
    const wait = e.heldUntilMs - this.deps.now();
    if (wait <= 0) return;
    setTimeout(() => {
      const name = e.snapshot.name;
      if (n.domains.get(name) !== e) return;
      const after: DomainEntry = { ...e, snapshot: snapshotAt(e, this.deps.now()) };
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
    return snapshotAt(e, this.deps.now());
  }

  /** One vnode placed on its node, or undefined when no node daemon reported it. */
  placed(vnode: string): PlacedEntry | undefined {
    const p = this.vnodes.get(vnode);
    return p && this.toPlaced(vnode, p.node, p.entry, this.deps.now());
  }

  /** Every known vnode placed on its node (for ranking). */
  allPlaced(): PlacedEntry[] {
    const now = this.deps.now();
    return [...this.vnodes].map(([vnode, p]) => this.toPlaced(vnode, p.node, p.entry, now));
  }

  private toPlaced(vnode: string, node: NodeEntry, entry: DomainEntry, nowMs: number): PlacedEntry {
    return { node: node.snapshot, domain: snapshotAt(entry, nowMs), vnode, entry };
  }
}
