/**
 * What the status page receives for one physical node: its reachability, and per domain the
 * daemon's facts (state, since, image, jobs, flap hold, last preemption) next to what the filter
 * tells PBS about it (token, state, rank, comment: the core's vnodeValues). Plain JSON.
 */
import { domainEligibility, vnodeValues } from '../core';
import type { ClusterView, DomainEntry, NodeEntry } from './cluster-view';
import { releaseOf } from './status-history';
import type { ReleaseFacts, StatusHistory, UpSince } from './status-history';
import { nodeAddressText } from './config';

/** One job as the daemon reports it (it knows ids, not owners). */
export interface PageJob {
  readonly id: string;
  readonly cpus: number;
  readonly preemptible: boolean;
  readonly startedAtMs: number;
  readonly preemptedSeconds: number;
  readonly suspended: boolean;
}

/** One domain of a node. */
export interface PageDomain {
  readonly name: string;
  readonly vnode: string;
  readonly class: string;
  readonly state: string;
  readonly storedState: string;
  readonly generation: number;
  readonly sinceMs: number;
  /** Since when it has been up (null: not up); `exact` false means "at least since". */
  readonly up: UpSince | null;
  readonly image: string;
  readonly offline: boolean;
  readonly offlineReason: string;
  readonly downReason: string;
  readonly jobs: readonly PageJob[];
  /** Preempted CPU-seconds of the current work, and over the domain's life. */
  readonly preemptedCpuSeconds: number;
  readonly preemptedCpuSecondsTotal: number;
  readonly flapCount: number;
  /** Held out of scheduling until then, ms (0: not held). */
  readonly heldUntilMs: number;
  /** What the filter publishes for the vnode, and why. */
  readonly pbs: {
    readonly token: string;
    readonly state: string;
    readonly rank: number;
    readonly comment: string;
    readonly reason: string;
  };
  readonly release: ReleaseFacts | null;
  /** What the driver last observed (null: nothing yet). */
  readonly observed: {
    readonly power: string;
    readonly memoryBytes: number;
    readonly cpuWeight: number;
    readonly drift: boolean;
    readonly detail: string;
  } | null;
}

/** One physical node. */
export interface PageNode {
  readonly name: string;
  readonly address: string;
  /** Reachable and synced: its domains are as the daemon last said. */
  readonly reachable: boolean;
  /** A snapshot was ever received (before that, nothing is known of its domains). */
  readonly synced: boolean;
  readonly error: string;
  /** Since when reachable (or unreachable), ms. */
  readonly sinceMs: number;
  readonly lastSeenMs: number;
  readonly generation: number;
  /** The daemon's commit time of the newest change the filter has for this node (0: none yet). */
  readonly commitAtMs: number;
  readonly domains: readonly PageDomain[];
}

function pageDomain(view: ClusterView, history: StatusHistory, n: NodeEntry, e: DomainEntry): PageDomain {
  const m = e.message;
  const snap = view.snapshotNow(e);
  const values = vnodeValues(n.snapshot, snap);
  const o = m.observed;
  return {
    name: m.name,
    vnode: e.vnode,
    class: snap.class,
    state: m.state,
    storedState: m.stored_state,
    generation: Number(m.generation),
    sinceMs: Number(m.since_ms),
    up: history.upSince(n.cfg.name, m.name),
    image: m.image,
    offline: m.offline,
    offlineReason: m.offline_reason,
    downReason: m.down_reason,
    jobs: m.jobs.map((j) => ({
      id: j.id,
      cpus: j.cpus,
      preemptible: j.preemptible,
      startedAtMs: Number(j.started_at_ms),
      preemptedSeconds: j.preempted_seconds,
      suspended: j.suspended,
    })),
    preemptedCpuSeconds: m.preempted_cpu_seconds,
    preemptedCpuSecondsTotal: m.preempted_cpu_seconds_total,
    flapCount: m.flap_count,
    heldUntilMs: view.heldUntilWallMs(e),
    pbs: {
      token: values.magrathea,
      state: values.state,
      rank: values.rank,
      comment: values.comment,
      reason: domainEligibility(n.snapshot, snap).reason,
    },
    release: releaseOf(e),
    observed: o
      ? {
          power: o.power,
          memoryBytes: Number(o.memory_bytes),
          cpuWeight: o.cpu_weight,
          drift: o.drift,
          detail: o.detail,
        }
      : null,
  };
}

/** The page's row of one node. */
export function pageNode(view: ClusterView, history: StatusHistory, n: NodeEntry, commitAtMs: number): PageNode {
  return {
    name: n.cfg.name,
    address: nodeAddressText(n.cfg),
    reachable: n.reachable && n.synced,
    synced: n.synced,
    error: n.error,
    sinceMs: n.sinceMs,
    lastSeenMs: n.lastSeenMs,
    generation: n.generation,
    commitAtMs,
    domains: [...n.domains.values()].map((e) => pageDomain(view, history, n, e)),
  };
}
