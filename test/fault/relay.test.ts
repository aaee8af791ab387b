/**
 * Fault suite, the relay as a hostile daemon and a reader that stops reading would meet it: a
 * real magrathea-relay between fake NodeServices (grpc-js on 127.0.0.1:0) and a RelayService
 * client. What the relay keeps of a node and queues for a reader is bounded in bytes, not only
 * in messages: a daemon that sends large changes, or a reader that does not read while large
 * changes arrive, cannot make the relay's memory grow with what the daemon sends.
 */
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NodeEventInput, RelayServiceClient } from '@magrathea/common';
import { loadMagratheaApi } from '@magrathea/common';
import { spawnFilter, spawnRelay, tmpDir } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';
import { domainMsg, fakeDaemon, rssOf, snapshotOf, waitFor } from './helpers';
import type { FakeDaemon } from './helpers';

const api = loadMagratheaApi();
const MiB = 1024 ** 2;

/** One gRPC message: the 5-byte prefix (uncompressed, length), then the bytes. */
const grpcFrame = (m: Buffer): Buffer => {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(m.length, 1);
  return Buffer.concat([head, m]);
};

/** A change of `bytes` (its cause padded): valid, and as large as a hostile daemon makes it. */
const bigChange = (gen: number, bytes: number): NodeEventInput => ({
  generation: String(gen),
  change: { cause: `start-job ${'x'.repeat(bytes)}`, domain: 'meta', job_id: `${gen}.pbs`, domains: [] },
});

/**
 * A daemon of node `n` that answers each watch with a snapshot at its generation, then sends
 * large changes until `total` were sent over all its calls (then only snapshots and silence).
 */
function flooding(total: number, bytes: number): Promise<FakeDaemon & { sent(): number }> {
  let gen = 1;
  let sent = 0;
  return fakeDaemon((call) => {
    call.write(snapshotOf('n', gen, [domainMsg('meta', 'free', gen)]));
    const more = (): void => {
      while (sent < total && !call.cancelled) {
        gen++;
        sent++;
        if (!call.write(bigChange(gen, bytes))) {
          call.once('drain', more);
          return;
        }
      }
    };
    more();
  }).then((f) => Object.assign(f, { sent: () => sent }));
}

async function relayOf(dir: string, addr: string, graceMs = 3000): Promise<DaemonProcess> {
  const cfg = path.join(dir, 'relay.yaml');
  fs.writeFileSync(
    cfg,
    `listen: "127.0.0.1:0"\nnodes:\n  - { name: n, address: "${addr}" }\ngraceMs: ${graceMs}\nreconnect: { initialMs: 50, maxMs: 200 }\nlog: { level: debug }\nmetrics: { listen: "127.0.0.1:0" }\n`,
  );
  return spawnRelay(cfg);
}

/** A relay on `yaml` (in a directory of its own) and a client of it for `use`; both stopped after. */
async function withRelay(
  yaml: string,
  use: (relay: DaemonProcess, c: RelayServiceClient) => Promise<void>,
  clientOptions: grpc.ChannelOptions = {},
): Promise<void> {
  const dir = tmpDir('mg-fault-relay-');
  const cfg = path.join(dir, 'relay.yaml');
  fs.writeFileSync(cfg, yaml);
  const relay = await spawnRelay(cfg);
  const c = new api.magrathea.v1.RelayService(
    `127.0.0.1:${relay.port}`,
    grpc.credentials.createInsecure(),
    clientOptions,
  );
  try {
    await use(relay, c);
  } finally {
    c.close();
    await relay.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A request to the relay's metrics listener (its port from the ready line): status and body. */
async function relayHttp(
  relay: DaemonProcess,
  urlPath: string,
  method = 'GET',
): Promise<{ status: number; text: string }> {
  const port = relay.logs.find((l) => l.msg === 'magrathea-relay ready')?.metricsPort;
  if (typeof port !== 'number') throw new Error('the relay did not report a metrics port');
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { method });
  return { status: res.status, text: await res.text() };
}

/** The relay's metrics: each sample line as `name{labels}` → value. */
async function relayMetrics(relay: DaemonProcess): Promise<Map<string, number>> {
  const { status, text } = await relayHttp(relay, '/metrics');
  if (status !== 200) throw new Error(`GET /metrics answered ${status}: ${text}`);
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const hit = /^(magrathea_relay_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (hit) m.set(hit[1]!, Number(hit[2]));
  }
  return m;
}

/** A WatchNodes stream of node `n` from the start, once its first event (the snapshot) came: what it sees. */
async function watchN(
  c: InstanceType<typeof api.magrathea.v1.RelayService>,
): Promise<{ s: grpc.ClientReadableStream<unknown>; seen: { kind: string; error: string | undefined }[] }> {
  const s = c.WatchNodes({ nodes: [{ node: 'n', since_generation: '0' }] });
  const seen: { kind: string; error: string | undefined }[] = [];
  s.on('data', (e: { kind: string; down?: { error: string } }) => seen.push({ kind: e.kind, error: e.down?.error }));
  s.on('error', () => undefined);
  await waitFor(() => seen.some((e) => e.kind === 'event'), 'the snapshot');
  return { s, seen };
}

test('relay: a daemon sending large changes does not grow what the relay keeps of it past a bound (a fresh snapshot is read)', async () => {
  const dir = tmpDir('mg-fault-relay-log-');
  const fake = await flooding(80, 4 * MiB);
  const relay = await relayOf(dir, fake.addr);
  try {
    await waitFor(() => fake.sent() === 80, 'the daemon sent its 80 changes of 4 MiB', 60_000);
    // Let the relay take in what is in flight, then look at what it holds.
    await new Promise((r) => setTimeout(r, 2000));
    const rss = rssOf(relay.proc.pid!);
    expect(relay.proc.exitCode).toBeNull();
    // Without a bound in bytes it kept every change since the snapshot: 320 MiB.
    process.stdout.write(`relay RSS after 80 changes of 4 MiB: ${Math.round(rss / MiB)} MiB\n`);
    expect(rss).toBeLessThan(160 * MiB);
    expect(relay.logs.some((l) => l.msg === 'reconnecting to node daemon' && String(l.why).includes('bytes'))).toBe(
      true,
    );
    const m = await relayMetrics(relay);
    expect(m.get('magrathea_relay_rereads_total{reason="log_bound"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('magrathea_relay_rereads_total{reason="out_of_order"}')).toBe(0);
    expect(m.get('magrathea_relay_daemon_messages_total')).toBeGreaterThan(4);
    expect(m.get('magrathea_relay_change_bytes')).toBeLessThanOrEqual(16 * MiB + 4 * MiB + 1024);
  } finally {
    await relay.stop();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);

test('relay: a reader that stops reading while large changes arrive is cut off by bytes queued, and resumes', async () => {
  const dir = tmpDir('mg-fault-relay-reader-');
  const fake = await flooding(300, 1 * MiB);
  const relay = await relayOf(dir, fake.addr);
  const c = new api.magrathea.v1.RelayService(`127.0.0.1:${relay.port}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 32 * MiB,
  });
  try {
    const s = c.WatchNodes({ nodes: [{ node: 'n', since_generation: '0' }] });
    let first = false;
    s.once('data', () => {
      first = true;
      s.pause();
    });
    const ended = new Promise<string>((resolve) =>
      s.on('error', (e: grpc.ServiceError) => resolve(`${grpc.status[e.code]}: ${e.details}`)),
    );
    await waitFor(() => first, 'the first message');
    await waitFor(() => fake.sent() === 300, 'the daemon sent its 300 changes of 1 MiB', 60_000);
    await new Promise((r) => setTimeout(r, 2000));
    const rss = rssOf(relay.proc.pid!);
    process.stdout.write(`relay RSS with a paused reader after 300 changes of 1 MiB: ${Math.round(rss / MiB)} MiB\n`);
    s.resume();
    expect(await ended).toBe('RESOURCE_EXHAUSTED: reader too slow: resume from what you have');
    expect(relay.logs.find((l) => l.msg === 'reader does not keep up; ending its stream (it resumes)')).toMatchObject({
      level: 'warn',
    });
    expect((await relayMetrics(relay)).get('magrathea_relay_readers_cut_total')).toBe(1);
    // Without a bound in bytes the 300 MiB waited for it (fewer than maxQueuedPerReader messages).
    expect(rss).toBeLessThan(200 * MiB);
    // It resumes: a new stream from 0 gets the node.
    const again = c.WatchNodes({ nodes: [{ node: 'n', since_generation: '0' }] });
    const got = await new Promise<string>((resolve) => {
      again.once('data', (e: { kind: string }) => resolve(e.kind));
      again.once('error', (e: grpc.ServiceError) => resolve(e.message));
    });
    expect(got).toBe('event');
    again.cancel();
    expect(relay.proc.exitCode).toBeNull();
  } finally {
    c.close();
    await relay.stop();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);

test('relay: a daemon that starts a message and never finishes it (pings still answered) is that node’s failure after graceMs', async () => {
  const dir = tmpDir('mg-fault-relay-stall-');
  const codec = api.magrathea.v1.NodeService.service.WatchNode;
  let calls = 0;
  const fake = http2.createServer();
  const trickles: NodeJS.Timeout[] = [];
  fake.on('stream', (s) => {
    calls++;
    s.on('error', () => undefined);
    s.respond({ ':status': 200, 'content-type': 'application/grpc' });
    const snap = codec.responseSerialize(snapshotOf('n', 1, [domainMsg('meta', 'free', 1)]));
    s.write(grpcFrame(snap));
    // A message of 1 MiB announced, then a byte every 100 ms: it never ends.
    const head = Buffer.alloc(5);
    head.writeUInt32BE(MiB, 1);
    s.write(head);
    const t = setInterval(() => s.write(Buffer.from([0x0a])), 100);
    trickles.push(t);
    s.on('close', () => clearInterval(t));
  });
  await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  const relay = await relayOf(dir, `127.0.0.1:${(fake.address() as AddressInfo).port}`, 1500);
  const c = new api.magrathea.v1.RelayService(`127.0.0.1:${relay.port}`, grpc.credentials.createInsecure());
  try {
    const { s, seen } = await watchN(c);
    // The stalled message is the node's failure: its readers are told, the relay reconnects.
    await waitFor(() => seen.some((e) => e.kind === 'down'), 'the node told down', 8000).catch((err: Error) => {
      throw new Error(
        `${err.message}; reader saw ${JSON.stringify(seen)}; relay said ${JSON.stringify(relay.logs.slice(-5))}`,
      );
    });
    expect(seen.find((e) => e.kind === 'down')!.error).toBe(
      'DEADLINE_EXCEEDED: a message from the daemon not complete within 1500 ms',
    );
    expect(relay.logs.find((l) => l.msg === 'node daemon stream lost')).toMatchObject({ level: 'warn', node: 'n' });
    await waitFor(() => calls >= 2, 'the relay reconnected');
    s.cancel();
  } finally {
    for (const t of trickles) clearInterval(t);
    c.close();
    await relay.stop();
    await new Promise<void>((r) => {
      fake.close(() => r());
      setTimeout(r, 500);
    });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

test('relay: a daemon whose stream stays open but brings nothing (not even a heartbeat) is that node’s failure after its quiet limit; it is back only with a snapshot', async () => {
  const dir = tmpDir('mg-fault-relay-silent-');
  let speaking = true;
  const requests: string[] = [];
  const timers: NodeJS.Timeout[] = [];
  // Heartbeats every 200 ms while speaking, on a call that began with a snapshot; silent (the call
  // open, pings answered) otherwise: a call taken while silent stays silent.
  const fake = await fakeDaemon((call) => {
    requests.push(String((call.request as { since_generation?: string }).since_generation));
    const began = speaking;
    if (began) call.write(snapshotOf('n', 1, [domainMsg('meta', 'free', 1)]));
    const t = setInterval(() => {
      if (began && speaking && !call.cancelled)
        call.write({ generation: '1', heartbeat: { at_ms: String(Date.now()), interval_ms: 200 } });
    }, 200);
    timers.push(t);
    call.on('cancelled', () => clearInterval(t));
  });
  const relay = await relayOf(dir, fake.addr, 1500);
  const c = new api.magrathea.v1.RelayService(`127.0.0.1:${relay.port}`, grpc.credentials.createInsecure());
  try {
    const { s, seen } = await watchN(c);
    await new Promise((r) => setTimeout(r, 1000)); // heartbeats tell their interval
    speaking = false;
    await waitFor(() => seen.some((e) => e.kind === 'down'), 'the node told down', 10_000).catch((err: Error) => {
      throw new Error(
        `${err.message}; reader saw ${JSON.stringify(seen)}; relay said ${JSON.stringify(relay.logs.slice(-5))}`,
      );
    });
    expect(seen.find((e) => e.kind === 'down')!.error).toMatch(
      /^no message from the daemon for \d+ ms on an open stream \(not even a heartbeat\)$/,
    );
    expect(relay.logs.find((l) => l.msg === 'node daemon stream silent; reconnecting')).toMatchObject({
      level: 'warn',
      node: 'n',
      limitMs: 1500,
      heartbeatMs: 200,
    });
    const m = await relayMetrics(relay);
    expect(m.get('magrathea_relay_silent_streams_total')).toBeGreaterThanOrEqual(1);
    expect(m.get('magrathea_relay_rereads_total{reason="silent"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('magrathea_relay_node_losses_total')).toBe(1);
    expect(m.get('magrathea_relay_nodes{state="down"}')).toBe(1);
    expect(m.get('magrathea_relay_readers')).toBe(1);
    // The daemon accepts the next watch and stays silent: that does not bring the node back.
    await waitFor(() => requests.length >= 2, 'the relay reconnected');
    expect(requests[1]).toBe('0');
    const downs = seen.length;
    await new Promise((r) => setTimeout(r, 800));
    expect(seen.slice(downs).filter((e) => e.kind === 'event')).toEqual([]);
    // Speaking again: the silent call is dropped in turn, the next watch brings a snapshot, the reader hears the node again.
    speaking = true;
    await waitFor(() => seen.slice(downs).some((e) => e.kind === 'event'), 'the node back', 15_000);
    const back = await relayMetrics(relay);
    expect(back.get('magrathea_relay_nodes{state="live"}')).toBe(1);
    expect(back.get('magrathea_relay_nodes{state="down"}')).toBe(0);
    expect(back.get('magrathea_relay_node_losses_total')).toBe(1); // the retries while it stayed down are not losses
    s.cancel();
  } finally {
    for (const t of timers) clearInterval(t);
    c.close();
    await relay.stop();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);

test('relay: one client opening 300 WatchNodes streams is refused past the per-client limit; the relay’s memory stays bounded', async () => {
  const dir = tmpDir('mg-fault-relay-streams-');
  // A snapshot of 1 MiB (a long offline reason): each stream that is served gets its own copy written.
  const fake = await fakeDaemon((call) =>
    call.write(snapshotOf('n', 1, [domainMsg('meta', 'free', 1, { offline_reason: 'x'.repeat(MiB) })])),
  );
  const relay = await relayOf(dir, fake.addr);
  const c = new api.magrathea.v1.RelayService(`127.0.0.1:${relay.port}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 32 * MiB,
  });
  try {
    const streams = Array.from({ length: 300 }, () => c.WatchNodes({ nodes: [{ node: 'n', since_generation: '0' }] }));
    const firsts = await Promise.all(
      streams.map(
        (s) =>
          new Promise<string>((resolve) => {
            s.once('data', () => {
              s.pause();
              resolve('OK');
            });
            s.once('error', (e: grpc.ServiceError) => resolve(`${grpc.status[e.code]}: ${e.details}`));
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 1000));
    const rss = rssOf(relay.proc.pid!);
    process.stdout.write(`relay RSS with 300 paused streams of one client: ${Math.round(rss / MiB)} MiB\n`);
    const counts: Record<string, number> = {};
    for (const f of firsts) counts[f] = (counts[f] ?? 0) + 1;
    expect(counts).toEqual({ OK: 16, 'RESOURCE_EXHAUSTED: at most 16 open WatchNodes streams per client': 284 });
    expect(rss).toBeLessThan(200 * MiB);
    const refusals = relay.logs.filter((l) => l.msg === 'WatchNodes stream refused: too many open');
    expect(refusals.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ client: 'tcp:127.0.0.1', open: 16 });
    const m = await relayMetrics(relay);
    expect(m.get('magrathea_relay_readers_refused_total{reason="limit"}')).toBe(284);
    expect(m.get('magrathea_relay_readers')).toBe(16);
    expect([...m.keys()].filter((k) => k.startsWith('magrathea_relay_build_info{'))).toEqual([
      `magrathea_relay_build_info{version="${String(relay.logs.find((l) => l.msg === 'magrathea-relay starting')?.version)}"}`,
    ]);
    // Only GET /metrics is served.
    expect((await relayHttp(relay, '/metrics', 'POST')).status).toBe(405);
    expect((await relayHttp(relay, '/')).status).toBe(404);
    for (const s of streams) s.cancel();
    expect(relay.proc.exitCode).toBeNull();
  } finally {
    c.close();
    await relay.stop();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

/** A stand-in RelayService on 127.0.0.1:0 (plaintext) with `handlers` (`service`: the definition, the real one unless told). */
async function fakeRelay(
  handlers: grpc.UntypedServiceImplementation,
  service: grpc.ServiceDefinition = api.magrathea.v1.RelayService.service,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(service, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { server, port };
}

/** A RelayEvent with a heartbeat of `node` at generation 3 that announces a 200 ms interval. */
const relayedHeartbeat = (node: string) => ({
  node,
  event: { generation: '3', heartbeat: { at_ms: String(Date.now()), interval_ms: 200 } },
});

/** A filter config (written to `dir`) watching `nodes` through one relay, rack1 on `port` (graceMs 1500 unless told). */
function relayedFilterConfig(
  dir: string,
  port: number,
  nodes: readonly string[],
  debug = false,
  graceMs = 1500,
): string {
  const cfg = path.join(dir, 'filter.yaml');
  fs.writeFileSync(
    cfg,
    `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }\ngraceMs: ${graceMs}\nreconnect: { initialMs: 100, maxMs: 800 }\n${debug ? 'log: { level: debug }\n' : ''}relays:\n  - { name: rack1, address: "127.0.0.1:${port}" }\nnodes:\n${nodes.map((n) => `  - { name: ${n}, relay: rack1 }\n`).join('')}`,
  );
  return cfg;
}

test('filter: a relay that takes the stream and sends what is not a RelayEvent is logged once at warn, and retried with back-off', async () => {
  const dir = tmpDir('mg-fault-relay-garbage-');
  const svc = api.magrathea.v1.RelayService.service;
  let calls = 0;
  const { server, port } = await fakeRelay(
    {
      WatchNodes: (call: grpc.ServerWritableStream<unknown, Buffer>) => {
        calls++;
        // Headers (the relay took the call), then bytes of wire type 7: not protobuf.
        call.write(Buffer.from([0x0f, 0xff]));
      },
    },
    { ...svc, WatchNodes: { ...svc.WatchNodes, responseSerialize: (b: Buffer) => b } },
  );
  const f = await spawnFilter(relayedFilterConfig(dir, port, ['n1'], true));
  try {
    await new Promise((r) => setTimeout(r, 4000));
    const lost = f.logs.filter((l) => l.msg === 'relay stream lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ level: 'warn', relay: 'rack1' });
    expect(String(lost[0]!.why)).toMatch(/^INTERNAL: Response message parsing error/);
    // 100, 200, 400, 800, 800 … ms apart: about 7 in 4 s (it was 40: the headers counted as heard).
    process.stdout.write(`filter calls to a garbage relay in 4 s: ${calls}\n`);
    expect(calls).toBeLessThanOrEqual(10);
    expect(f.proc.exitCode).toBeNull();
  } finally {
    await f.stop();
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

test('filter: a relay that holds a node live but forwards nothing of it (not even its heartbeats) makes that node unreachable after its quiet limit; the rack’s other nodes stay', async () => {
  const dir = tmpDir('mg-fault-relay-quiet-node-');
  const quiet = new Set<string>();
  const timers: NodeJS.Timeout[] = [];
  const { server, port } = await fakeRelay({
    WatchNodes: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      for (const n of ['n1', 'n2']) call.write({ node: n, event: snapshotOf(n, 3, [domainMsg('meta', 'free', 3)]) });
      const t = setInterval(() => {
        for (const n of ['n1', 'n2']) if (!quiet.has(n) && !call.cancelled) call.write(relayedHeartbeat(n));
      }, 200);
      timers.push(t);
      call.on('cancelled', () => clearInterval(t));
    },
  });
  const f = await spawnFilter(relayedFilterConfig(dir, port, ['n1', 'n2']));
  const line = (msg: string, node: string) => f.logs.find((l) => l.msg === msg && l.node === node);
  try {
    await new Promise((r) => setTimeout(r, 1000)); // heartbeats tell their interval
    quiet.add('n1');
    await waitFor(
      () => line('node daemon unreachable past the grace period; its vnodes accept nothing', 'n1') !== undefined,
      'n1 unreachable',
      10_000,
    );
    expect(
      String(line('node daemon unreachable past the grace period; its vnodes accept nothing', 'n1')!.error),
    ).toMatch(/^relay rack1: no message from the daemon for \d+ ms on an open stream/);
    expect(line('relayed node silent', 'n1')).toMatchObject({
      level: 'warn',
      relay: 'rack1',
      limitMs: 1500,
      heartbeatMs: 200,
    });
    expect(line('node daemon unreachable past the grace period; its vnodes accept nothing', 'n2')).toBeUndefined();
    expect(line('relayed node silent', 'n2')).toBeUndefined();
    // Forwarded again: n1 is back.
    quiet.delete('n1');
    await waitFor(() => line('node daemon reachable again', 'n1') !== undefined, 'n1 back');
  } finally {
    for (const t of timers) clearInterval(t);
    await f.stop();
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);

test('filter: a relayed node is not taken as silent while the relay’s first catch-up of a large rack is still coming; after it, silence counts again', async () => {
  const dir = tmpDir('mg-fault-relay-catch-up-');
  const names = Array.from({ length: 30 }, (_, i) => `n${i + 1}`);
  const quiet = new Set<string>();
  const timers: NodeJS.Timeout[] = [];
  let caughtUpAt = 0;
  const { server, port } = await fakeRelay({
    WatchNodes: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      const heartbeat = (n: string) => call.write(relayedHeartbeat(n));
      // Nothing for 3.5 s (a busy relay: past graceMs before its first message), then n1 (with a
      // heartbeat that sets its quiet limit to graceMs), then the rest of the rack one by one, 150 ms
      // apart: n1's next message waits behind them for 4.35 s, past its 3 s limit.
      let i = 1;
      let slow: NodeJS.Timeout | undefined;
      const begin = setTimeout(() => {
        if (call.cancelled) return;
        call.write({ node: 'n1', event: snapshotOf('n1', 3, [domainMsg('meta', 'free', 3)]) });
        heartbeat('n1');
        slow = setInterval(send, 150);
        timers.push(slow);
      }, 3500);
      timers.push(begin);
      const send = () => {
        if (call.cancelled) return clearInterval(slow);
        const n = names[i++]!;
        call.write({ node: n, event: snapshotOf(n, 3, [domainMsg('meta', 'free', 3)]) });
        if (i < names.length) return;
        clearInterval(slow);
        caughtUpAt = Date.now();
        const t = setInterval(() => {
          for (const m of names) if (!quiet.has(m) && !call.cancelled) heartbeat(m);
        }, 200);
        timers.push(t);
        call.on('cancelled', () => clearInterval(t));
      };
    },
  });
  const f = await spawnFilter(relayedFilterConfig(dir, port, names, true, 3000));
  const silent = (node: string) => f.logs.find((l) => l.msg === 'relayed node silent' && l.node === node);
  try {
    await waitFor(() => caughtUpAt > 0, 'the catch-up sent', 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    // Without waiting for the catch-up, n1 was "silent" 3 s into it; counting the stall from the call
    // rather than from the first message gave up the catch-up before it began.
    expect(f.logs.filter((l) => /^relay catch-up (stalled|too long)$/.test(String(l.msg)))).toEqual([]);
    expect(f.logs.filter((l) => l.msg === 'relayed node silent')).toEqual([]);
    expect(f.logs.filter((l) => l.msg === 'relay stream lost')).toEqual([]);
    // After it, a node the relay forwards nothing of is silent after its quiet limit, as before.
    quiet.add('n1');
    await waitFor(() => silent('n1') !== undefined, 'n1 silent', 10_000);
    expect(silent('n1')).toMatchObject({ level: 'warn', relay: 'rack1', limitMs: 3000, heartbeatMs: 200 });
    expect(names.slice(1).filter((n) => silent(n) !== undefined)).toEqual([]);
  } finally {
    for (const t of timers) clearInterval(t);
    await f.stop();
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);

test('filter: a relay that moves on to live messages with a node never sent has ended its catch-up: a node it then forwards nothing of is silent', async () => {
  const dir = tmpDir('mg-fault-relay-catch-up-hole-');
  const timers: NodeJS.Timeout[] = [];
  const { server, port } = await fakeRelay({
    WatchNodes: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      const heartbeat = (n: string) => call.write(relayedHeartbeat(n));
      // n1 and n3, never n2; then n1's heartbeats only: n3 is held live but nothing of it comes.
      for (const n of ['n1', 'n3']) {
        call.write({ node: n, event: snapshotOf(n, 3, [domainMsg('meta', 'free', 3)]) });
        heartbeat(n);
      }
      const t = setInterval(() => !call.cancelled && heartbeat('n1'), 200);
      timers.push(t);
      call.on('cancelled', () => clearInterval(t));
    },
  });
  const f = await spawnFilter(relayedFilterConfig(dir, port, ['n1', 'n2', 'n3'], true, 3000));
  const silent = (node: string) => f.logs.find((l) => l.msg === 'relayed node silent' && l.node === node);
  try {
    // A catch-up kept open by n1's heartbeats switched silence off for the whole relay.
    await waitFor(() => silent('n3') !== undefined, 'n3 silent', 15_000);
    expect(silent('n3')).toMatchObject({ level: 'warn', relay: 'rack1', limitMs: 3000 });
    expect(silent('n1')).toBeUndefined();
    expect(f.logs.filter((l) => /^relay catch-up (stalled|too long)$/.test(String(l.msg)))).toEqual([]);
  } finally {
    for (const t of timers) clearInterval(t);
    await f.stop();
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);

test('filter: a relay whose first catch-up stalls (a node never sent) has its other nodes judged for silence after graceMs of nothing', async () => {
  const dir = tmpDir('mg-fault-relay-catch-up-stall-');
  const { server, port } = await fakeRelay({
    WatchNodes: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      // n1 once, then nothing at all: n2 never comes.
      call.write({ node: 'n1', event: snapshotOf('n1', 3, [domainMsg('meta', 'free', 3)]) });
      call.write(relayedHeartbeat('n1'));
    },
  });
  const f = await spawnFilter(relayedFilterConfig(dir, port, ['n1', 'n2'], true));
  const line = (msg: string, node: string) => f.logs.find((l) => l.msg === msg && l.node === node);
  try {
    await waitFor(() => line('relayed node silent', 'n1') !== undefined, 'n1 silent', 15_000);
    expect(f.logs.find((l) => l.msg === 'relay catch-up stalled')).toMatchObject({ relay: 'rack1', unheard: 1 });
    // n1's silence counted from the stall on (its quiet limit after the graceMs of nothing).
    const stalledAt = Date.parse(String(f.logs.find((l) => l.msg === 'relay catch-up stalled')!.time));
    expect(Date.parse(String(line('relayed node silent', 'n1')!.time)) - stalledAt).toBeGreaterThanOrEqual(1400);
  } finally {
    await f.stop();
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);

/** What a broken daemon does on every call after its first (good) one, and what the direct watcher then sees. */
const BREAKS = [
  // a message that is not protobuf
  { what: 'sends garbage', error: /^INTERNAL: / },
  // a message past the 16 MB limit (its length prefix)
  { what: 'announces a message past 16 MB', error: /^RESOURCE_EXHAUSTED: / },
  // headers, then at once the status of a lost connection, no message
  { what: 'ends the stream UNAVAILABLE before any message', error: /^UNAVAILABLE: / },
] as const;

test.each(BREAKS)(
  'a daemon that accepts each resumed watch and then $what is unreachable after the grace period, behind a relay and watched directly',
  async ({ what, error }) => {
    const dir = tmpDir('mg-fault-resume-broken-');
    const codec = api.magrathea.v1.NodeService.service.WatchNode;
    /** A daemon of `name`: a good snapshot on the first call, ended as a lost connection; every later call broken. */
    const broken = async (
      name: string,
    ): Promise<{ server: http2.Http2Server; port: number; calls: () => number; resumed: () => number }> => {
      let calls = 0;
      let resumed = 0;
      const server = http2.createServer();
      server.on('stream', (s) => {
        calls++;
        const first = calls === 1;
        s.on('error', () => undefined);
        const req: Buffer[] = [];
        s.on('data', (chunk: Buffer) => req.push(chunk));
        s.on('end', () => {
          const body = Buffer.concat(req).subarray(5); // one message after its 5-byte prefix; empty: since 0
          if (body.length > 0 && String(codec.requestDeserialize(body).since_generation) !== '0') resumed++;
        });
        s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '14', 'grpc-message': 'going away' }));
        if (first) {
          s.write(grpcFrame(codec.responseSerialize(snapshotOf(name, 5, [domainMsg('meta', 'free', 5)]))));
          setTimeout(() => s.end(), 300);
          return;
        }
        setTimeout(() => {
          if (s.destroyed) return;
          if (what === 'sends garbage') s.write(grpcFrame(Buffer.from([0x0f, 0xff])));
          else if (what === 'ends the stream UNAVAILABLE before any message') s.end();
          else {
            const head = Buffer.alloc(5 + 16);
            head.writeUInt32BE(17 * MiB, 1);
            s.write(head);
          }
        }, 50);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { server, port: (server.address() as AddressInfo).port, calls: () => calls, resumed: () => resumed };
    };
    const a = await broken('n1');
    const b = await broken('n2');
    const timing = 'graceMs: 1500\nreconnect: { initialMs: 100, maxMs: 800 }\nlog: { level: debug }\n';
    const rc = path.join(dir, 'relay.yaml');
    fs.writeFileSync(
      rc,
      `listen: "127.0.0.1:0"\nnodes:\n  - { name: n1, address: "127.0.0.1:${a.port}" }\n${timing}metrics: { listen: "127.0.0.1:0" }\n`,
    );
    const relay = await spawnRelay(rc);
    const fc = path.join(dir, 'filter.yaml');
    fs.writeFileSync(
      fc,
      `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }\n${timing}relays:\n  - { name: rack1, address: "127.0.0.1:${relay.port}" }\nnodes:\n  - { name: n1, relay: rack1 }\n  - { name: n2, address: "127.0.0.1:${b.port}" }\n`,
    );
    const f = await spawnFilter(fc);
    const unreachable = (node: string) =>
      f.logs.find(
        (l) => l.msg === 'node daemon unreachable past the grace period; its vnodes accept nothing' && l.node === node,
      );
    try {
      await waitFor(
        () => unreachable('n1') !== undefined && unreachable('n2') !== undefined,
        'both nodes unreachable',
        8000,
      ).catch((err: Error) => {
        throw new Error(
          `${err.message}: n1 ${unreachable('n1') ? 'unreachable' : 'still reachable'}, n2 ${unreachable('n2') ? 'unreachable' : 'still reachable'}; daemon calls ${a.calls()} and ${b.calls()}`,
        );
      });
      expect(String(unreachable('n1')!.error)).toMatch(/^relay rack1: /);
      expect(String(unreachable('n2')!.error)).toMatch(error);
      // The first loss was a lost connection: resumed once; after the broken call, read from a snapshot.
      await waitFor(() => a.calls() >= 3 && b.calls() >= 3, 'both daemons called again after the broken call', 8000);
      expect([a.resumed(), b.resumed()]).toEqual([1, 1]);
      // What the relay's metrics say of it: lost while live once; a bad message only when it was one.
      const m = await relayMetrics(relay);
      expect(m.get('magrathea_relay_node_losses_total')).toBeGreaterThanOrEqual(1);
      if (what === 'sends garbage') expect(m.get('magrathea_relay_bad_messages_total')).toBeGreaterThanOrEqual(1);
      else expect(m.get('magrathea_relay_bad_messages_total')).toBe(0);
      expect(m.get('magrathea_relay_rereads_total{reason="broken"}')).toBeGreaterThanOrEqual(1);
      expect(f.proc.exitCode).toBeNull();
      expect(relay.proc.exitCode).toBeNull();
    } finally {
      await f.stop();
      await relay.stop();
      for (const s of [a.server, b.server]) s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  30_000,
);

test('relay: a reader starting on a rack whose snapshots together pass maxQueuedBytesPerReader gets them all (they are the logs’ own)', async () => {
  // 40 snapshots of 1 MiB: past what grpc-js buffers (16 messages), 24 MiB wait in the relay's queue.
  const NAMES = Array.from({ length: 40 }, (_, i) => `n${i}`);
  const fakes = await Promise.all(
    NAMES.map((n) =>
      fakeDaemon((call) =>
        call.write(snapshotOf(n, 1, [domainMsg('meta', 'free', 1, { offline_reason: 'x'.repeat(MiB) })])),
      ),
    ),
  );
  try {
    await withRelay(
      `listen: "127.0.0.1:0"\nnodes:\n${fakes.map((f, i) => `  - { name: ${NAMES[i]}, address: "${f.addr}" }\n`).join('')}maxQueuedBytesPerReader: ${17 * MiB}\nlog: { level: debug }\n`,
      async (relay, c) => {
        // Every node's snapshot in the relay first (a reader before that would wait for them one by one).
        await waitFor(
          () => relay.logs.filter((l) => l.msg === 'reader connected').length === 0 && fakes.every((f) => f.calls > 0),
          'the daemons read',
        );
        await new Promise((r) => setTimeout(r, 1500));
        const s = c.WatchNodes({ nodes: NAMES.map((node) => ({ node, since_generation: '0' })) });
        const got = new Set<string>();
        let error = '';
        // How many snapshots had come when the relay said the catch-up was in (it is exempt from the bounds too).
        const caughtUpAfter: number[] = [];
        s.on('data', (e: { node: string; kind: string }) => {
          if (e.kind === 'event') got.add(e.node);
          if (e.kind === 'caught_up') caughtUpAfter.push(got.size);
        });
        s.on('error', (e: grpc.ServiceError) => (error = `${grpc.status[e.code]}: ${e.details}`));
        await waitFor(() => caughtUpAfter.length > 0 || error !== '', 'the end of the catch-up or an error', 20_000);
        expect({ got: got.size, error, caughtUpAfter }).toEqual({
          got: NAMES.length,
          error: '',
          caughtUpAfter: [NAMES.length],
        });
        s.cancel();
      },
      { 'grpc.max_receive_message_length': 32 * MiB },
    );
  } finally {
    for (const f of fakes) await f.close();
  }
}, 60_000);

test('relay: a reader starting from 0 gets a node’s whole log even when it holds more changes than maxQueuedPerReader', async () => {
  // A snapshot and 300 changes of 2 KiB: far past what grpc-js buffers, so they wait in the relay's queue.
  const fake = await flooding(300, 2048);
  try {
    await withRelay(
      `listen: "127.0.0.1:0"\nnodes:\n  - { name: n, address: "${fake.addr}" }\nmaxQueuedPerReader: 100\nlog: { level: debug }\n`,
      async (relay, c) => {
        // The relay holds the whole log before the reader comes (a later first read would let it take them live).
        await waitFor(() => fake.sent() === 300, 'the daemon sent its changes');
        await waitFor(async () => {
          const probe = c.WatchNodes({ nodes: [{ node: 'n', since_generation: '300' }] });
          const kind = await new Promise<string>((resolve) => {
            probe.once('data', (e: { kind: string; event?: { generation: string } }) =>
              resolve(e.event?.generation ?? e.kind),
            );
            probe.once('error', () => resolve('error'));
          });
          probe.cancel();
          return kind === '301';
        }, 'the relay holds generation 301');
        const s = c.WatchNodes({ nodes: [{ node: 'n', since_generation: '0' }] });
        let events = 0;
        let last = '';
        let error = '';
        s.on('data', (e: { kind: string; event?: { generation: string } }) => {
          if (e.kind !== 'event') return;
          events++;
          last = e.event!.generation;
        });
        s.on('error', (e: grpc.ServiceError) => (error = `${grpc.status[e.code]}: ${e.details}`));
        await waitFor(() => last === '301' || error !== '', 'the whole log or an error', 20_000);
        expect({ events, last, error }).toEqual({ events: 301, last: '301', error: '' });
        s.cancel();
      },
    );
  } finally {
    await fake.close();
  }
}, 60_000);

test('relay: a reader whose rack is out (more nodes down than maxQueuedPerReader) gets every down and caught_up, and is not cut', async () => {
  // 150 daemons that refuse connections: a rack that is out as the filter (re)connects.
  const closed = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
  const names = Array.from({ length: 150 }, (_, i) => `d${i}`);
  await withRelay(
    `listen: "127.0.0.1:0"\nnodes:\n${names.map((n) => `  - { name: ${n}, address: "127.0.0.1:${closed}" }\n`).join('')}maxQueuedPerReader: 100\n`,
    async (relay, c) => {
      const s = c.WatchNodes({ nodes: names.map((node) => ({ node, since_generation: '0' })) });
      const downs = new Set<string>();
      let caughtUp = false;
      let error = '';
      s.on('data', (e: { node: string; kind: string }) => {
        if (e.kind === 'down') downs.add(e.node);
        if (e.kind === 'caught_up') caughtUp = true;
      });
      s.on('error', (e: grpc.ServiceError) => (error = `${grpc.status[e.code]}: ${e.details}`));
      await waitFor(() => caughtUp || error !== '', 'caught_up or an error', 20_000);
      expect({ downs: downs.size, caughtUp, error }).toEqual({ downs: 150, caughtUp: true, error: '' });
      expect(relay.logs.filter((l) => l.msg === 'reader does not keep up; ending its stream (it resumes)')).toEqual([]);
      s.cancel();
    },
  );
}, 60_000);

test('relay: connections that open no call are closed after idleConnectionMs (they cannot hold the connection caps); a reader’s stays', async () => {
  const fake = await flooding(0, 16);
  try {
    await withRelay(
      `listen: "127.0.0.1:0"\nnodes:\n  - { name: n, address: "${fake.addr}" }\nidleConnectionMs: 500\n`,
      async (relay, c) => {
        // Sessions from another address than the reader's, more than its per-source cap of 16.
        const idle = Array.from({ length: 20 }, () => http2.connect(`http://127.0.0.2:${relay.port}`));
        try {
          const closed = idle.map(
            (s) =>
              new Promise<void>((resolve) => {
                s.on('error', () => undefined);
                s.on('close', () => resolve());
              }),
          );
          const s = c.WatchNodes({ nodes: [{ node: 'n', since_generation: '0' }] });
          let messages = 0;
          let error = '';
          s.on('data', () => messages++);
          s.on('error', (e: grpc.ServiceError) => (error = `${grpc.status[e.code]}: ${e.details}`));
          await Promise.all(closed);
          // The reader's stream, open longer than the idle limit, goes on.
          await new Promise((r) => setTimeout(r, 1000));
          expect({ error, heard: messages > 0 }).toEqual({ error: '', heard: true });
          s.cancel();
        } finally {
          for (const s of idle) s.destroy();
        }
      },
    );
  } finally {
    await fake.close();
  }
}, 60_000);
