/** ClusterService: ListNodes, WatchCluster, Admit, Candidates — over the live cluster view. */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ClusterServiceHandlers, NodeViewInput, VnodeViewInput } from '@magrathea/common';
import { StreamRegistry } from '@magrathea/common';
import { candidates, domainEligibility } from '../core';
import { admitRequest, checkJobClass, InvalidRequestError } from './admission';
import type { ClusterView, NodeEntry } from './cluster-view';

/** THE mapping from filter errors to gRPC statuses. Unknown errors: INTERNAL, details only in the log. */
export function toGrpcStatus(err: unknown, logger: Logger, method: string): Partial<grpc.StatusObject> {
  if (err instanceof InvalidRequestError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  logger.error({ err, method }, 'internal error while serving a request');
  return { code: grpc.status.INTERNAL, details: 'internal error (see the filter log)' };
}

export function nodeView(view: ClusterView, n: NodeEntry): NodeViewInput {
  return {
    name: n.cfg.name,
    address:
      n.cfg.address.kind === 'tcp' ? `${n.cfg.address.host}:${n.cfg.address.port}` : `unix:${n.cfg.address.path}`,
    reachable: n.snapshot.reachable,
    last_seen_ms: String(n.lastSeenMs),
    generation: String(n.generation),
    error: n.error,
    since_ms: String(n.sinceMs),
    vnodes: [...n.domains.values()].map((d): VnodeViewInput => {
      const e = domainEligibility(n.snapshot, view.snapshotNow(d));
      return {
        vnode: d.vnode,
        domain: d.snapshot.name,
        magrathea: e.token,
        rank: e.rank,
        reason: e.reason,
        detail: d.message,
      };
    }),
  };
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
    Admit: unary('Admit', (req) => admitRequest(view, req)),
    Candidates: unary('Candidates', (req) => {
      const cls = checkJobClass(req.job_class);
      const limit = req.limit > 0 ? req.limit : 100;
      return {
        vnodes: candidates(cls, view.allPlaced(), limit).map((c) => ({
          vnode: c.vnode,
          domain: c.domain.name,
          magrathea: c.eligibility.token,
          rank: c.eligibility.rank,
          reason: `${c.node.name}: ${c.eligibility.reason}`,
          detail: c.entry.message,
        })),
      };
    }),
    WatchCluster: (call) => {
      call.write({ snapshot: { nodes: [...view.nodes.values()].map((n) => nodeView(view, n)) } });
      streams.add(
        call,
        view.subscribe((c) => call.write({ node: nodeView(view, c.node) })),
      );
    },
  };
  return {
    handlers,
    closeStreams: () => streams.endAll(),
  };
}
