/** The filter's live view of every node daemon, fed by the watchers; notifies on every change. */
import type { DomainMessage, NodeEventMessage } from '@magrathea/common';
import type { Logger } from 'pino';
import type { DomainSnapshot, NodeSnapshot } from '../core';
import { KNOWN_STATES } from '../core';
import type { FilterConfig, FilterNodeConfig } from './config';
import { vnodeName } from './config';
import type { Metrics } from './metrics';

export interface NodeEntry {
  readonly cfg: FilterNodeConfig;
  reachable: boolean;
  /** True once a snapshot has been received (before that, nothing is published as accepting). */
  synced: boolean;
  lastSeenMs: number;
  generation: number;
  error: string;
  sinceMs: number;
  domains: Map<string, DomainMessage>;
}

/** Called after a node's view changed; `commitAtMs` is when the daemon committed it (0 if not a commit). */
export type ViewListener = (
  node: NodeEntry,
  changedDomains: readonly string[],
  commitAtMs: number,
  previous: ReadonlyMap<string, DomainMessage>,
) => void;

export class ClusterView {
  readonly nodes = new Map<string, NodeEntry>();
  private readonly listeners = new Set<ViewListener>();

  constructor(
    readonly cfg: FilterConfig,
    private readonly deps: { logger: Logger; metrics: Metrics; now: () => number },
  ) {
    for (const n of cfg.nodes) {
      this.nodes.set(n.name, {
        cfg: n,
        reachable: false,
        synced: false,
        lastSeenMs: 0,
        generation: 0,
        error: 'not connected yet',
        sinceMs: deps.now(),
        domains: new Map(),
      });
    }
  }

  subscribe(l: ViewListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private emit(
    n: NodeEntry,
    changed: readonly string[],
    commitAtMs: number,
    previous: ReadonlyMap<string, DomainMessage>,
  ): void {
    for (const l of this.listeners) l(n, changed, commitAtMs, previous);
  }

  private checkStates(n: NodeEntry, ds: readonly DomainMessage[]): void {
    for (const d of ds) {
      if (!KNOWN_STATES.has(d.state)) {
        this.deps.metrics.unknownStates.inc();
        this.deps.logger.warn(
          { node: n.cfg.name, domain: d.name, state: d.state },
          'node daemon reported an unknown state; the domain accepts nothing',
        );
      }
    }
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
    const previous = new Map(n.domains);
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
      this.checkStates(n, e.snapshot.domains);
      n.domains = new Map(e.snapshot.domains.map((d) => [d.name, d]));
      this.armHoldExpiry(n, e.snapshot.domains);
      n.generation = gen;
      n.synced = true;
      n.reachable = true;
      n.error = '';
      if (!wasReachable) n.sinceMs = now;
      const changed = new Set([...previous.keys(), ...n.domains.keys()]);
      this.emit(n, [...changed], 0, previous);
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
    this.checkStates(n, e.change.domains);
    for (const d of e.change.domains) n.domains.set(d.name, d);
    this.armHoldExpiry(n, e.change.domains);
    n.generation = gen;
    n.reachable = true;
    n.error = '';
    if (!wasReachable) n.sinceMs = now;
    this.emit(
      n,
      e.change.domains.map((d) => d.name),
      Number(e.change.at_ms),
      previous,
    );
    return true;
  }

  /** When a domain's flap hold ends, its vnode is re-evaluated (and published again). */
  private armHoldExpiry(n: NodeEntry, ds: readonly DomainMessage[]): void {
    for (const d of ds) {
      const wait = Number(d.held_until_ms) - this.deps.now();
      if (wait <= 0) continue;
      setTimeout(() => {
        if (n.domains.get(d.name) === d) this.emit(n, [d.name], 0, new Map(n.domains));
      }, wait + 5).unref();
    }
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
    this.emit(n, [...n.domains.keys()], 0, new Map(n.domains));
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
    this.emit(n, [...n.domains.keys()], 0, new Map(n.domains));
  }

  vnodeOf(n: NodeEntry, domain: string): string {
    return vnodeName(this.cfg, n.cfg, domain);
  }

  /** Snapshot for the pure core. A node never synced is reported unreachable. */
  snapshotOf(n: NodeEntry): NodeSnapshot {
    return {
      name: n.cfg.name,
      reachable: n.reachable && n.synced,
      generation: n.generation,
      domains: [...n.domains.values()].map((d) => domainSnapshot(d, this.deps.now())),
    };
  }
}

export function domainSnapshot(d: DomainMessage, nowMs: number): DomainSnapshot {
  return {
    held: Number(d.held_until_ms) > nowMs,
    name: d.name,
    class: d.domain_class === 'priority' ? 'priority' : 'normal',
    state: d.state,
    offline: d.offline,
    preemptedCpuSeconds: d.preempted_cpu_seconds,
    generation: Number(d.generation),
  };
}
