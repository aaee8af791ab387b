/**
 * ClusterService: ListNodes, WatchCluster, Admit, Candidates — over the live cluster view.
 * WatchCluster streams are limited (in all and per client address), and each is written no
 * faster than its reader reads: what waits is the set of nodes that changed since (each sent once,
 * as it is when the reader is ready), so a reader that stops reading costs at most one entry per
 * node, never a queue of events.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ClusterServiceHandlers, NodeViewInput, VnodeViewInput } from '@magrathea/common';
import { sourceOf, StreamRegistry } from '@magrathea/common';
import { candidates, domainEligibility } from '../core';
import { admitRequest, checkJobClass, InvalidRequestError } from './admission';

/** Too many WatchCluster streams: RESOURCE_EXHAUSTED. */
export class StreamLimitError extends Error {
  override readonly name = 'StreamLimitError';
}

/** WatchCluster stream limits. */
export interface WatchLimits {
  readonly maxWatchStreams: number;
  readonly maxWatchStreamsPerClient: number;
}
import type { ClusterView, NodeEntry } from './cluster-view';
import { nodeAddressText } from './config';

/** THE mapping from filter errors to gRPC statuses. Unknown errors: INTERNAL, details only in the log. */
export function toGrpcStatus(err: unknown, logger: Logger, method: string): Partial<grpc.StatusObject> {
  if (err instanceof InvalidRequestError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  if (err instanceof StreamLimitError) return { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message };
  logger.error({ err, method }, 'internal error while serving a request');
  return { code: grpc.status.INTERNAL, details: 'internal error (see the filter log)' };
}

export function nodeView(view: ClusterView, n: NodeEntry): NodeViewInput {
  return {
    name: n.cfg.name,
    address: nodeAddressText(n.cfg),
    reachable: n.snapshot.reachable,
    last_seen_ms: n.lastSeenMs,
    generation: n.generation,
    error: n.error,
    since_ms: n.sinceMs,
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

export function createClusterService(deps: {
  view: ClusterView;
  logger: Logger;
  limits: WatchLimits;
  /** Told of every WatchCluster stream refused over a limit. */
  onRefused?: () => void;
}): {
  handlers: ClusterServiceHandlers;
  closeStreams: () => void;
} {
  const { view, limits } = deps;
  const log = deps.logger.child({ component: 'cluster-service' });
  const streams = new StreamRegistry();
  const perClient = new Map<string, number>();
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
      const client = sourceOf(call.getPeer());
      try {
        if (streams.size >= limits.maxWatchStreams)
          throw new StreamLimitError(`at most ${limits.maxWatchStreams} open WatchCluster streams`);
        if ((perClient.get(client) ?? 0) >= limits.maxWatchStreamsPerClient)
          throw new StreamLimitError(`at most ${limits.maxWatchStreamsPerClient} open WatchCluster streams per client`);
      } catch (err) {
        deps.onRefused?.();
        call.emit('error', toGrpcStatus(err, log, 'WatchCluster'));
        return;
      }
      perClient.set(client, (perClient.get(client) ?? 0) + 1);
      // Nodes changed since the reader last took a message, in the order they first changed.
      const pending = new Set<string>();
      let blocked = !call.write({ snapshot: { nodes: [...view.nodes.values()].map((n) => nodeView(view, n)) } });
      const flush = (): void => {
        for (const name of pending) {
          if (blocked) return;
          pending.delete(name);
          const n = view.nodes.get(name);
          if (n) blocked = !call.write({ node: nodeView(view, n) });
        }
      };
      call.on('drain', () => {
        blocked = false;
        flush();
      });
      const unsubscribe = view.subscribe((c) => {
        pending.add(c.node.cfg.name);
        flush();
      });
      streams.add(call, () => {
        unsubscribe();
        pending.clear();
        const k = (perClient.get(client) ?? 1) - 1;
        if (k <= 0) perClient.delete(client);
        else perClient.set(client, k);
      });
    },
  };
  return {
    handlers,
    closeStreams: () => streams.endAll(),
  };
}
