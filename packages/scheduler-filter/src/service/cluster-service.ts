/** ClusterService: ListNodes, WatchCluster, Admit, Candidates — over the live cluster view. */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ClusterServiceHandlers, NodeViewInput, VnodeViewInput } from '@magrathea/common';
import type { JobClass, Placed } from '../core';
import { StreamRegistry } from '@magrathea/common';
import { admit, candidates, domainEligibility } from '../core';
import type { ClusterView, NodeEntry } from './cluster-view';

export class InvalidRequestError extends Error {}

/** THE mapping from filter errors to gRPC statuses. */
export function toGrpcStatus(err: unknown, logger: Logger, method: string): Partial<grpc.StatusObject> {
  if (err instanceof InvalidRequestError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  logger.error({ err, method }, 'internal error while serving a request');
  return { code: grpc.status.INTERNAL, details: 'internal error (see the filter log)' };
}

export function checkJobClass(v: unknown): JobClass {
  if (v === 'normal' || v === 'priority') return v;
  throw new InvalidRequestError('job_class must be normal or priority');
}

export function checkVnodes(v: unknown): string[] {
  if (
    !Array.isArray(v) ||
    v.length === 0 ||
    v.length > 10_000 ||
    !v.every((x) => typeof x === 'string' && x.length > 0 && x.length < 256)
  ) {
    throw new InvalidRequestError('vnodes must be a non-empty list of vnode names');
  }
  return v as string[];
}

export function nodeView(view: ClusterView, n: NodeEntry): NodeViewInput {
  const snap = view.snapshotOf(n);
  return {
    name: n.cfg.name,
    address:
      n.cfg.address.kind === 'tcp' ? `${n.cfg.address.host}:${n.cfg.address.port}` : `unix:${n.cfg.address.path}`,
    reachable: snap.reachable,
    last_seen_ms: String(n.lastSeenMs),
    generation: String(n.generation),
    error: n.error,
    since_ms: String(n.sinceMs),
    // The snapshot already holds each domain as the core sees it (same order as n.domains).
    vnodes: [...n.domains.values()].map((d, i): VnodeViewInput => {
      const e = domainEligibility(snap, snap.domains[i]!);
      return {
        vnode: view.vnodeOf(n, d.name),
        domain: d.name,
        magrathea: e.token,
        rank: e.rank,
        reason: e.reason,
        detail: d,
      };
    }),
  };
}

/** Every known vnode, placed on its node (for admission and ranking). */
export function placements(view: ClusterView): Map<string, Placed> {
  const m = new Map<string, Placed>();
  for (const n of view.nodes.values()) {
    const snap = view.snapshotOf(n);
    for (const d of snap.domains)
      m.set(view.vnodeOf(n, d.name), { node: snap, domain: d, vnode: view.vnodeOf(n, d.name) });
  }
  return m;
}

export function admitJob(
  view: ClusterView,
  jobClass: JobClass,
  vnodes: readonly string[],
): { admit: boolean; reasons: string[] } {
  const placed = placements(view);
  return admit(
    jobClass,
    vnodes.map((v) => placed.get(v) ?? { vnode: v, missing: true as const }),
  );
}

export function createClusterService(deps: { view: ClusterView; logger: Logger }): {
  handlers: ClusterServiceHandlers;
  closeStreams: () => void;
} {
  const { view } = deps;
  const log = deps.logger.child({ component: 'cluster-service' });
  const streams = new StreamRegistry();
  const unary =
    <Req, Res>(method: string, fn: (req: Req) => Res): grpc.handleUnaryCall<Req, Res> =>
    (call, cb) => {
      try {
        cb(null, fn(call.request));
      } catch (err) {
        cb(toGrpcStatus(err, log, method));
      }
    };
  const handlers: ClusterServiceHandlers = {
    ListNodes: unary('ListNodes', () => ({ nodes: [...view.nodes.values()].map((n) => nodeView(view, n)) })),
    Admit: unary('Admit', (req) => admitJob(view, checkJobClass(req.job_class), checkVnodes(req.vnodes))),
    Candidates: unary('Candidates', (req) => {
      const cls = checkJobClass(req.job_class);
      const limit = req.limit > 0 ? req.limit : 100;
      return {
        vnodes: candidates(cls, [...placements(view).values()], limit).map((c) => ({
          vnode: c.vnode,
          domain: c.domain.name,
          magrathea: c.eligibility.token,
          rank: c.eligibility.rank,
          reason: `${c.node.name}: ${c.eligibility.reason}`,
          detail: view.nodes.get(c.node.name)?.domains.get(c.domain.name) ?? null,
        })),
      };
    }),
    WatchCluster: (call) => {
      call.write({ snapshot: { nodes: [...view.nodes.values()].map((n) => nodeView(view, n)) } });
      streams.add(
        call,
        view.subscribe((n) => call.write({ node: nodeView(view, n) })),
      );
    },
  };
  return {
    handlers,
    closeStreams: () => streams.endAll(),
  };
}
