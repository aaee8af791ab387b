/**
 * Fault suite, classes 9–13: clients that take resources without giving back. Watchers that stop
 * reading and one process opening streams on many connections; a domain with 10,000 jobs; a
 * huge admission body; silent connections; token guessing from one address and from many.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ClusterServiceClient, NodeEventMessage, NodeMessage, NodeServiceClient } from '@magrathea/common';
import { loadMagratheaApi } from '@magrathea/common';
import { getNode, nodeClient, spawnDaemon, spawnFilter, statesOf, tmpDir, unary } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';
import { domainMsg, fakeDaemon, record, rssOf, snapshotOf, tmpfs, waitFor } from './helpers';

const DOMAINS =
  'domains: [{ name: meta }, { name: priv, class: priority }]\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n';
const api = loadMagratheaApi();

/** A NodeService client on its own connection (grpc-js would otherwise share one per target). */
const ownConnection = (addr: string, n: number): NodeServiceClient =>
  new api.magrathea.v1.NodeService(addr, grpc.credentials.createInsecure(), { 'grpc.primary_user_agent': `conn-${n}` });

/** The first thing a server stream says: 'OK' (a message), or its error. */
const firstOf = (s: grpc.ClientReadableStream<unknown>): Promise<string> =>
  new Promise((resolve) => {
    s.once('data', () => resolve('OK'));
    s.once('error', (e: grpc.ServiceError) => resolve(grpc.status[e.code] ?? String(e.code)));
  });

async function booted(c: NodeServiceClient): Promise<void> {
  await waitFor(async () => statesOf(await getNode(c)).meta === 'free', 'booted');
}

test('class 9: watch streams are limited per identity across connections, slow readers are cut off and resume, WatchCluster is limited', async () => {
  const dir = tmpDir('mg-fault-watch-');
  const d = await spawnDaemon({
    stateDir: path.join(dir, 'state'),
    config: `${DOMAINS}limits: { maxQueuedEvents: 64 }\n`,
  });
  const admin = nodeClient(d.admin);
  const clients: NodeServiceClient[] = [];
  let filter: Awaited<ReturnType<typeof spawnFilter>> | null = null;
  const fake = await fakeDaemon((call) => call.write(snapshotOf('n', 1, [domainMsg('meta', 'free', 1)])));
  try {
    await booted(admin);
    // One local process, three connections, eight streams each: 16 in all for the identity tcp:127.0.0.1.
    const streams: grpc.ClientReadableStream<NodeEventMessage>[] = [];
    for (let i = 0; i < 3; i++) {
      const c = ownConnection(d.addr, i);
      clients.push(c);
      for (let k = 0; k < 8; k++) streams.push(c.WatchNode({ since_generation: '0' }));
    }
    const firsts = await Promise.all(streams.map(firstOf));
    expect(firsts.filter((x) => x === 'OK')).toHaveLength(16);
    expect(firsts.filter((x) => x === 'RESOURCE_EXHAUSTED')).toHaveLength(8);
    for (const s of streams) s.cancel();
    await new Promise((r) => setTimeout(r, 200));
    // A reader that stops reading is cut off once 64 events wait; it resumes from what it saw.
    const slow = ownConnection(d.addr, 9);
    clients.push(slow);
    const seen: NodeEventMessage[] = [];
    const s = slow.WatchNode({ since_generation: '0' });
    s.on('data', (e: NodeEventMessage) => seen.push(e));
    const ended = new Promise<string>((resolve) =>
      s.on('error', (e: grpc.ServiceError) => resolve(`${grpc.status[e.code]}: ${e.details}`)),
    );
    await waitFor(() => seen.length > 0, 'the snapshot');
    s.pause();
    let events = 0;
    for (let i = 0; i < 600; i++) {
      await unary(admin, admin.StartJob, { domain: 'meta', job_id: `${i}.s`, preemptible: true });
      await unary(admin, admin.EndJob, { domain: 'meta', job_id: `${i}.s` });
      events += 2;
    }
    s.resume();
    expect(await ended).toMatch(
      /^RESOURCE_EXHAUSTED: watch stream too slow: more than 64 events were waiting; resume with since_generation=\d+/,
    );
    const resumeFrom = Number(seen.at(-1)!.generation);
    const again = slow.WatchNode({ since_generation: String(resumeFrom) });
    const after: NodeEventMessage[] = [];
    again.on('data', (e: NodeEventMessage) => after.push(e));
    again.on('error', () => undefined);
    const now = Number((await getNode(admin)).generation);
    await waitFor(() => Number(after.at(-1)?.generation ?? 0) >= now, 'the resumed watcher caught up');
    again.cancel();
    expect(d.proc.exitCode).toBeNull();
    expect(rssOf(d.proc.pid!)).toBeLessThan(200 * 1024 ** 2);
    // WatchCluster: at most 4 per client here.
    const cfg = path.join(dir, 'filter.yaml');
    fs.writeFileSync(
      cfg,
      `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }\nlimits: { maxWatchStreams: 8, maxWatchStreamsPerClient: 4 }\nnodes:\n  - { name: n, address: "${fake.addr}" }\n`,
    );
    filter = await spawnFilter(cfg);
    const cs: ClusterServiceClient = new api.magrathea.v1.ClusterService(
      `127.0.0.1:${filter.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
    const cluster = Array.from({ length: 10 }, () => cs.WatchCluster({}));
    const cf = await Promise.all(cluster.map(firstOf));
    expect(cf.filter((x) => x === 'OK')).toHaveLength(4);
    expect(cf.filter((x) => x === 'RESOURCE_EXHAUSTED')).toHaveLength(6);
    for (const w of cluster) w.cancel();
    cs.close();
    record('9 watch streams', {
      inputs: streams.length + 1 + cluster.length + events,
      faults: 1,
      acked: 600,
      lost: 0,
      crashes: 0,
    });
  } finally {
    for (const c of clients) c.close();
    admin.close();
    await filter?.stop();
    await fake.close();
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

test('class 10: a domain with 10,000 jobs works: slim changes, bounded memory, the filter knows every job id', async () => {
  const t = tmpfs('64m');
  let d: DaemonProcess | null = null;
  let admin: NodeServiceClient | null = null;
  let filter: Awaited<ReturnType<typeof spawnFilter>> | null = null;
  try {
    d = await spawnDaemon({ stateDir: path.join(t.dir, 'state'), config: DOMAINS, socket: path.join(t.dir, 'd.sock') });
    const c = nodeClient(d.admin);
    admin = c;
    await booted(c);
    const cfg = path.join(t.dir, 'filter.yaml');
    fs.writeFileSync(
      cfg,
      `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }\nnodes:\n  - { name: n1, address: "${d.addr}" }\n`,
    );
    filter = await spawnFilter(cfg);
    const watch = nodeClient(d.addr).WatchNode({ since_generation: '0' });
    let biggestChange = 0;
    watch.on('data', (e: NodeEventMessage) => {
      if (e.change) biggestChange = Math.max(biggestChange, JSON.stringify(e).length);
    });
    watch.on('error', () => undefined);
    const N = 10_000;
    const ids = Array.from({ length: N }, (_, i) => `${i}.big`);
    const inFlight = 64;
    const run = async (list: string[], method: 'StartJob' | 'EndJob') => {
      let next = 0;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < list.length) {
            const id = list[next++]!;
            await unary(c, c[method], { domain: 'meta', job_id: id, preemptible: true });
          }
        }),
      );
    };
    await run(ids, 'StartJob');
    const ended = ids.filter((_, i) => i % 5 === 0);
    await run(ended, 'EndJob');
    const left = ids.filter((_, i) => i % 5 !== 0).sort();
    const jobsOf = (n: NodeMessage) =>
      n.domains
        .find((x) => x.name === 'meta')!
        .jobs.map((j) => j.id)
        .sort();
    expect(jobsOf(await getNode(c))).toEqual(left);
    // The filter's view holds exactly those ids (ListNodes' detail carries the domain's job list).
    const cs: ClusterServiceClient = new api.magrathea.v1.ClusterService(
      `127.0.0.1:${filter.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
    const gen = (await getNode(c)).generation;
    type Listed = { nodes: { generation: string; vnodes: { domain: string; detail: { jobs: { id: string }[] } }[] }[] };
    const list = () => unary<object, Listed>(cs, cs.ListNodes as never, {});
    await waitFor(async () => (await list()).nodes[0]?.generation === gen, 'the filter caught up');
    const metaView = (await list()).nodes[0]!.vnodes.find((v) => v.domain === 'meta')!;
    expect(metaView.detail.jobs.map((j) => j.id).sort()).toEqual(left);
    cs.close();
    watch.cancel();
    // Each change carries what changed: a few hundred bytes, not the 10,000 jobs.
    expect(biggestChange).toBeLessThan(4096);
    expect(d.proc.exitCode).toBeNull();
    expect(rssOf(d.proc.pid!)).toBeLessThan(200 * 1024 ** 2);
    record('10 10,000 jobs in a domain', { inputs: N + ended.length, faults: 0, acked: N, lost: 0, crashes: 0 });
  } finally {
    admin?.close();
    await filter?.stop();
    await d?.stop();
    t.unmount();
  }
}, 90_000);

test('class 11: the filter stops reading an admission body at its limit: 413 at once, connection closed', async () => {
  const dir = tmpDir('mg-fault-body-');
  const fake = await fakeDaemon((call) => call.write(snapshotOf('n', 1, [domainMsg('meta', 'free', 1)])));
  const cfg = path.join(dir, 'filter.yaml');
  fs.writeFileSync(
    cfg,
    `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }\nnodes:\n  - { name: n, address: "${fake.addr}" }\n`,
  );
  const f = await spawnFilter(cfg);
  try {
    // A chunked body (no Content-Length) of up to 128 MiB, sent only as fast as the filter takes it.
    const sock = net.connect(f.httpPort, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let reply = '';
    sock.on('data', (b: Buffer) => (reply += b.toString()));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('error', () => undefined);
    sock.write(
      'POST /v1/admit HTTP/1.1\r\nHost: f\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const head = Buffer.from(`${chunk.length.toString(16)}\r\n`);
    let sent = 0;
    let done = false;
    void closed.then(() => (done = true));
    while (!done && sent < 128 * 1024 ** 2 && !reply) {
      const ok = sock.write(Buffer.concat([head, chunk, Buffer.from('\r\n')]));
      sent += chunk.length;
      if (!ok) await Promise.race([new Promise((r) => sock.once('drain', r)), closed]);
    }
    await closed;
    expect(reply).toMatch(/^HTTP\/1\.1 413 /);
    // The filter read far less than was offered (the old one read all 128 MiB before answering).
    expect(sent).toBeLessThan(32 * 1024 ** 2);
    // A declared size over the limit is refused before any byte of the body.
    const declared = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: f.httpPort,
          path: '/v1/admit',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': String(520 * 1024 ** 2) },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('{');
    });
    expect(declared).toBe(413);
    expect((await fetch(`http://127.0.0.1:${f.httpPort}/metrics`)).status).toBe(200);
    expect(rssOf(f.proc.pid!)).toBeLessThan(200 * 1024 ** 2);
    record('11 huge admission body', { inputs: 2, faults: 0, acked: 0, lost: 0, crashes: 0 });
  } finally {
    await f.stop();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);

/** Opens `n` TCP connections from `from` that never say anything; counts those the server closes. */
async function silent(port: number, n: number, from: string): Promise<{ closed: () => number; end: () => void }> {
  const socks: net.Socket[] = [];
  let closed = 0;
  for (let i = 0; i < n; i++) {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    s.on('error', () => undefined);
    s.on('close', () => closed++);
    socks.push(s);
    await new Promise<void>((r) => {
      s.once('connect', () => r());
      s.once('close', () => r());
    });
  }
  return { closed: () => closed, end: () => socks.forEach((s) => s.destroy()) };
}

test('class 12: silent connections are capped and closed; the hooks and other clients are still served', async () => {
  const dir = tmpDir('mg-fault-conn-');
  const token = 'meta-token-0123456789abcdef';
  fs.writeFileSync(path.join(dir, 'meta.token'), token, { mode: 0o600 });
  const d = await spawnDaemon({
    stateDir: path.join(dir, 'state'),
    config: `hookApi: { listen: "127.0.0.1:0", requestTimeoutMs: 1000 }\nlimits: { maxConnections: 40, maxConnectionsPerSource: 20, idleConnectionMs: 1000 }\ndomains: [{ name: meta, tokenFile: ${dir}/meta.token }]\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n`,
  });
  const hookPort = d.logs.find((l) => l.msg === 'magrathead ready')!.hookPort as number;
  const c = nodeClient(d.addr);
  try {
    const hook = await silent(hookPort, 60, '127.0.0.2');
    const grpcs = await silent(d.port, 60, '127.0.0.3');
    // Over the per-address cap at once: the hook API made room by closing silent ones, gRPC refused the rest.
    await waitFor(() => hook.closed() >= 40 && grpcs.closed() >= 40, 'connections over the caps closed', 5000);
    // The hooks are served (the API closes an idle connection to make room), and so are other clients.
    const r = await fetch(`http://127.0.0.1:${hookPort}/v1/domains/meta`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(r.status).toBe(200);
    expect(statesOf(await getNode(c)).meta).toBeDefined();
    // Silent connections are closed after the idle time.
    await waitFor(() => hook.closed() === 60 && grpcs.closed() === 60, 'every silent connection closed', 10_000).catch(
      (e: Error) => {
        throw new Error(`${e.message}: hook ${hook.closed()}, grpc ${grpcs.closed()}`);
      },
    );
    hook.end();
    grpcs.end();
    expect(d.proc.exitCode).toBeNull();
    record('12 silent connections', { inputs: 121, faults: 0, acked: 0, lost: 0, crashes: 0 });
  } finally {
    c.close();
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);

test('class 13: a valid token is always served; guesses from one address and from many are slowed down', async () => {
  const dir = tmpDir('mg-fault-guess-');
  const token = 'meta-token-0123456789abcdef';
  fs.writeFileSync(path.join(dir, 'meta.token'), token, { mode: 0o600 });
  const d = await spawnDaemon({
    stateDir: path.join(dir, 'state'),
    config: `hookApi: { listen: "127.0.0.1:0" }\ndomains: [{ name: meta, tokenFile: ${dir}/meta.token }]\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n`,
  });
  const port = d.logs.find((l) => l.msg === 'magrathead ready')!.hookPort as number;
  const get = (bearer: string, from = '127.0.0.1') =>
    new Promise<{ status: number; ms: number }>((resolve, reject) => {
      const t0 = performance.now();
      http
        .get(
          {
            host: '127.0.0.1',
            port,
            localAddress: from,
            path: '/v1/domains/meta',
            headers: { authorization: `Bearer ${bearer}` },
            agent: false,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
          },
        )
        .on('error', reject);
    });
  try {
    // 25 guesses from the address the domain's hooks use (limit 20 a minute): the hooks still get in.
    const own: { status: number; ms: number }[] = [];
    for (let i = 0; i < 25; i++) own.push(await get(`guess-${i}`));
    expect(own.every((a) => a.status === 401)).toBe(true);
    expect(own.at(-1)!.ms).toBeGreaterThanOrEqual(500);
    expect((await get(token)).status).toBe(200);
    // 90 more guesses spread over 30 addresses, 3 each (never 20 from one): all of them together
    // pass the 100 failures a minute everyone may make, and the later ones wait.
    const spread = await Promise.all(
      Array.from({ length: 90 }, (_, i) => get(`spread-${i}`, `127.0.1.${(i % 30) + 1}`)),
    );
    expect(spread.every((a) => a.status === 401)).toBe(true);
    const slowed = spread.filter((a) => a.ms >= 100).length;
    expect(slowed).toBeGreaterThanOrEqual(10);
    expect((await get(token, '127.0.1.1')).status).toBe(200);
    record('13 token guessing', { inputs: 115, faults: 0, acked: 0, lost: 0, crashes: 0 });
  } finally {
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);
