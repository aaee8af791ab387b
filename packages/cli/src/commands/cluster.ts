/** `magrathea cluster status|watch --filter ADDR`: the whole cluster as magrathea-filter sees it. */
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import type { ClusterEventMessage, ListNodesResponseMessage, NodeViewMessage } from '@magrathea/common';
import type { Endpoint } from '../client';
import { call, CliError, connectFilter, EXIT, explainGrpcError, plainConnectionText } from '../client';
import type { Io } from '../output';
import { domainJson, table } from '../output';
import type { CliContext } from '../program';

/** One ListNodes call to magrathea-filter (for `pbs verify`). */
export async function listFilterNodes(addr: string, timeoutMs = 10_000): Promise<ListNodesResponseMessage> {
  const ep: Endpoint = { addr, component: 'magrathea-filter', tls: null, timeoutMs };
  const c = connectFilter(ep);
  try {
    return await call<ListNodesResponseMessage>(ep, (opts, cb) => c.ListNodes({}, opts, cb));
  } finally {
    c.close();
  }
}

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

/** One line per physical node: its domains with state and what PBS is told. */
export function clusterTable(r: ListNodesResponseMessage, now = Date.now(), staleMs = 30_000): string {
  const rows = [['NODE', 'REACH', 'GEN', 'DOMAINS (vnode=state→magrathea)', 'NOTE']];
  const totals = new Map<string, number>();
  for (const n of r.nodes) {
    const stale = !n.reachable || now - Number(n.last_seen_ms) > staleMs;
    const doms = n.vnodes.map((v) => `${v.vnode}=${v.detail?.state ?? '?'}→${v.magrathea}`).join('  ');
    for (const v of n.vnodes)
      totals.set(v.detail?.state ?? 'unknown', (totals.get(v.detail?.state ?? 'unknown') ?? 0) + 1);
    const note = !n.reachable
      ? `!! UNREACHABLE ${ago(Number(n.since_ms), now)}: ${plainConnectionText(n.error)}`
      : stale
        ? `!! STALE: last heard ${ago(Number(n.last_seen_ms), now)} ago`
        : '';
    rows.push([n.name, n.reachable ? 'up' : 'DOWN', n.generation, doms, note]);
  }
  const sum = [...totals]
    .sort()
    .map(([s, c]) => `${s} ${c}`)
    .join(', ');
  return `${table(rows)}\n${r.nodes.length} nodes; domains: ${sum || 'none'}`;
}

function nodeJson(n: NodeViewMessage): Record<string, unknown> {
  return {
    name: n.name,
    address: n.address,
    reachable: n.reachable,
    generation: Number(n.generation),
    last_seen_ms: Number(n.last_seen_ms),
    error: n.error,
    vnodes: n.vnodes.map((v) => ({
      vnode: v.vnode,
      domain: v.domain,
      magrathea: v.magrathea,
      rank: v.rank,
      reason: v.reason,
      ...(v.detail ? { detail: domainJson(v.detail) } : {}),
    })),
  };
}

export function addClusterCommands(program: Command, io: Io, interrupted: Promise<void>, ctx: CliContext): void {
  const filter = (addr: string): Endpoint => ctx.endpoint(addr, 'magrathea-filter');
  const cluster = program.command('cluster').description('the whole cluster, as magrathea-filter sees it');
  cluster
    .command('status')
    .description('one line per physical node and its domains; totals by state; stale views highlighted')
    .requiredOption('--filter <addr>', 'magrathea-filter gRPC address: HOST:PORT or unix:PATH')
    .option('--json', 'print one JSON object')
    .option(
      '--stale-after <seconds>',
      'call a node stale when not heard from for this long (daemons send heartbeats)',
      '30',
    )
    .action(async (o: { filter: string; json?: boolean; staleAfter: string }) => {
      const staleMs = Number(o.staleAfter) * 1000;
      if (!Number.isFinite(staleMs) || staleMs <= 0)
        throw new CliError('--stale-after: a number of seconds > 0', EXIT.usage);
      const r = await listFilterNodes(o.filter, filter(o.filter).timeoutMs);
      const now = Date.now();
      io.out(o.json ? JSON.stringify({ nodes: r.nodes.map(nodeJson) }) : clusterTable(r, now, staleMs));
      const bad = r.nodes.filter((n) => !n.reachable || now - Number(n.last_seen_ms) > staleMs);
      if (bad.length > 0)
        throw new CliError(
          `${bad.length} of ${r.nodes.length} node(s) unreachable or stale: ${bad.map((n) => n.name).join(', ')}`,
          EXIT.degraded,
        );
    });
  cluster
    .command('watch')
    .description('one line per node change until interrupted')
    .requiredOption('--filter <addr>', 'magrathea-filter gRPC address')
    .option('--json', 'print one JSON object per event')
    .action(async (o: { filter: string; json?: boolean }) => {
      const ep = filter(o.filter);
      const c = connectFilter(ep);
      const stream = c.WatchCluster({});
      void interrupted.then(() => stream.cancel());
      const line = (n: NodeViewMessage): string =>
        `${new Date().toISOString()} ${n.name} ${n.reachable ? 'up' : 'DOWN'} gen=${n.generation} ${n.vnodes.map((v) => `${v.vnode}=${v.detail?.state ?? '?'}→${v.magrathea}`).join(' ')}`;
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (e: ClusterEventMessage) => {
          if (e.snapshot)
            for (const n of e.snapshot.nodes)
              io.out(o.json ? JSON.stringify({ type: 'snapshot', ...nodeJson(n) }) : line(n));
          if (e.node) io.out(o.json ? JSON.stringify({ type: 'node', ...nodeJson(e.node) }) : line(e.node));
        });
        stream.on('error', (err: grpc.ServiceError) => {
          if (err.code === grpc.status.CANCELLED) resolve();
          else explainGrpcError(err, ep).then(reject, reject);
        });
        stream.on('end', () => resolve());
      });
      c.close();
    });
}
