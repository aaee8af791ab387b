/**
 * Fan-in: three real magrathead processes, a real magrathea-relay holding the streams of two of
 * them, and a real magrathea-filter watching the relay and the third daemon directly. A change
 * reaches the filter through the relay; a relay killed -9 looks like its nodes' failure (grace,
 * then `none`, running work untouched); restarted, it gives the filter back every change it
 * missed (generations compared with the daemons'); a daemon restarted behind it resumes.
 */
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ClusterServiceClient, NodeServiceClient } from '@magrathea/common';
import { loadMagratheaApi, loadProtoRoot } from '@magrathea/common';
import {
  cli,
  getNode,
  nodeClient,
  RELAY_BIN,
  runToExit,
  spawnDaemon,
  spawnFilter,
  spawnRelay,
  statesOf,
  tmpDir,
  unary,
  until,
} from '../helpers/processes';
import type { DaemonProcess, FilterProcess } from '../helpers/processes';
import { DAEMON_CONFIG, PBSNODES, QMGR, QSIG, QSTAT, published } from '../helpers/published';

const NODES = ['n1', 'n2', 'n3'] as const;
/** n1 and n2 are watched through the relay, n3 directly. */
const RELAYED = ['n1', 'n2'] as const;

interface ListedNode {
  name: string;
  reachable: boolean;
  generation: string;
  address: string;
  vnodes: { vnode: string; detail: { jobs: { id: string }[] } | null }[];
}

/**
 * Daemon heartbeats a minute apart: a node the filter was up to date on is back only because
 * the relay says so (a heartbeat at the node's generation), never by a daemon's heartbeat.
 */
const QUIET_DAEMON = `${DAEMON_CONFIG}heartbeatMs: 60000\n`;

describe('magrathea-relay between real daemons and the real filter', () => {
  let dir: string;
  const daemons: Record<string, DaemonProcess> = {};
  const clients: Record<string, NodeServiceClient> = {};
  let relay: DaemonProcess;
  let relayCfg: string;
  let filter: FilterProcess;
  let cluster: ClusterServiceClient;
  let qlog: string;

  const listNodes = async (): Promise<Map<string, ListedNode>> => {
    const r = await new Promise<{ nodes: ListedNode[] }>((res, rej) =>
      cluster.ListNodes({}, (e, v) => (e ? rej(e) : res(v as unknown as { nodes: ListedNode[] }))),
    );
    return new Map(r.nodes.map((n) => [n.name, n]));
  };
  /** The filter holds exactly the daemon's generation of `n`, and calls the node reachable. */
  const inStep = async (n: string): Promise<boolean> => {
    const [listed, node] = await Promise.all([listNodes(), getNode(clients[n]!)]);
    const l = listed.get(n);
    return l !== undefined && l.reachable && l.generation === node.generation;
  };
  const writeRelayConfig = (port: number): void =>
    fs.writeFileSync(
      relayCfg,
      `
listen: "127.0.0.1:${port}"
nodes:
${RELAYED.map((n) => `  - { name: ${n}, address: "${daemons[n]!.addr}" }`).join('\n')}
graceMs: 1500
reconnect: { initialMs: 100, maxMs: 400 }
`,
    );

  beforeAll(async () => {
    dir = tmpDir('mg-relay-15r-');
    qlog = path.join(dir, 'qmgr.log');
    for (const n of NODES) {
      daemons[n] = await spawnDaemon({ stateDir: path.join(dir, n), config: QUIET_DAEMON });
      clients[n] = nodeClient(daemons[n].admin);
    }
    for (const n of NODES)
      await until(
        async () => Object.values(statesOf(await getNode(clients[n]!))).every((s) => s === 'free'),
        `${n} booted`,
        30_000,
      );
    relayCfg = path.join(dir, 'relay.yaml');
    writeRelayConfig(0);
    relay = await spawnRelay(relayCfg);
    // Later restarts keep the port the filter was given.
    writeRelayConfig(relay.port);
    const cfgFile = path.join(dir, 'filter.yaml');
    fs.writeFileSync(
      cfgFile,
      `
listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }
relays:
  - { name: rack1, address: "127.0.0.1:${relay.port}" }
nodes:
${RELAYED.map((n) => `  - { name: ${n}, relay: rack1 }`).join('\n')}
  - { name: n3, address: "${daemons.n3!.addr}" }
graceMs: 1500
reconnect: { initialMs: 100, maxMs: 400 }
pbs: { qmgr: ${QMGR}, qsig: ${QSIG}, qstat: ${QSTAT}, pbsnodes: ${PBSNODES}, reassertIntervalMs: 0, batchDelayMs: 10, kickMinIntervalMs: 100, retry: { initialMs: 100, maxMs: 300 } }
`,
    );
    filter = await spawnFilter(cfgFile, {
      FAKE_QMGR_LOG: qlog,
      FAKE_QSIG_LOG: path.join(dir, 'qsig.log'),
    });
    const api = loadMagratheaApi();
    cluster = new api.magrathea.v1.ClusterService(`127.0.0.1:${filter.grpcPort}`, grpc.credentials.createInsecure());
  }, 120_000);

  afterAll(async () => {
    cluster?.close();
    for (const c of Object.values(clients)) c.close();
    await filter?.stop();
    await relay?.stop();
    for (const d of Object.values(daemons)) await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every node is in step with its daemon, through the relay or directly; the listing names the relay', async () => {
    await until(async () => (await Promise.all(NODES.map(inStep))).every(Boolean), 'all nodes in step', 30_000);
    const listed = await listNodes();
    expect(listed.get('n1')!.address).toBe(`127.0.0.1:${relay.port} (relay rack1)`);
    expect(listed.get('n3')!.address).toBe(daemons.n3!.addr);
    await until(() => published(qlog).get('n1-meta')?.state === 'free', 'n1-meta published free', 30_000);
    expect(published(qlog).get('n2-priv')).toMatchObject({ magrathea: 'priority', state: 'free' });
  }, 60_000);

  test('a job start on a relayed daemon reaches the filter through the relay', async () => {
    await unary(clients.n1!, clients.n1!.StartJob, { domain: 'meta', job_id: '1.relay', preemptible: true });
    await until(() => published(qlog).get('n1-meta')?.state === 'running-preemptible', 'n1-meta running', 30_000);
    expect(published(qlog).get('n1-priv')?.state).toBe('occupied-would-preempt');
    await until(() => inStep('n1'), 'n1 in step', 30_000);
  }, 60_000);

  test('SIGHUP (an operator used to `systemctl reload magrathead`) stops neither the relay nor the filter', async () => {
    for (const p of [relay, filter]) {
      const from = p.logs.length;
      p.proc.kill('SIGHUP');
      await until(
        () => p.logs.slice(from).some((l) => l.msg === 'SIGHUP ignored: restart to read the configuration again'),
        'the SIGHUP line',
        10_000,
      );
    }
    await unary(clients.n1!, clients.n1!.EndJob, { domain: 'meta', job_id: '1.relay' });
    await until(
      () => published(qlog).get('n1-meta')?.state === 'free',
      'n1-meta free again, through the relay',
      30_000,
    );
    expect([relay.proc.exitCode, relay.proc.signalCode, filter.proc.exitCode, filter.proc.signalCode]).toEqual([
      null,
      null,
      null,
      null,
    ]);
    await unary(clients.n1!, clients.n1!.StartJob, { domain: 'meta', job_id: '1.relay', preemptible: true });
    await until(() => published(qlog).get('n1-meta')?.state === 'running-preemptible', 'n1-meta running', 30_000);
  }, 60_000);

  test('relay killed -9: its nodes go through grace to none with their jobs untouched; restarted, nothing is lost', async () => {
    await relay.kill9();
    // While the relay is away, n2 changes (three commits) and n3 (direct) is not affected.
    await unary(clients.n2!, clients.n2!.StartJob, { domain: 'egee', job_id: '2.relay', preemptible: true });
    await unary(clients.n2!, clients.n2!.StartJob, { domain: 'egee', job_id: '3.relay', preemptible: true });
    await unary(clients.n2!, clients.n2!.EndJob, { domain: 'egee', job_id: '2.relay' });
    await until(
      () =>
        published(qlog).get('n1-meta')?.magrathea === 'none' && published(qlog).get('n2-egee')?.magrathea === 'none',
      'relayed nodes published none',
      30_000,
    );
    expect(published(qlog).get('n1-meta')?.state).toBe('unreachable');
    const listed = await listNodes();
    expect(listed.get('n1')!.reachable).toBe(false);
    expect(listed.get('n3')!.reachable).toBe(true);
    expect(published(qlog).get('n3-meta')?.magrathea).toBe('normal');
    // Work untouched: the job on n1 still runs on its daemon.
    const n1 = await getNode(clients.n1!);
    expect(n1.domains.find((d) => d.name === 'meta')?.jobs.map((j) => j.id)).toEqual(['1.relay']);
    expect(statesOf(n1).meta).toBe('running-preemptible');

    relay = await spawnRelay(relayCfg);
    await until(async () => (await inStep('n1')) && (await inStep('n2')), 'relayed nodes in step again', 30_000);
    await until(() => published(qlog).get('n2-egee')?.state === 'running-preemptible', 'n2-egee running', 30_000);
    expect(published(qlog).get('n1-meta')).toMatchObject({ magrathea: 'normal', state: 'running-preemptible' });
    // Every change made while the relay was away is in the filter's view (3.relay still runs, 2.relay ended).
    const n2egee = (await listNodes()).get('n2')!.vnodes.find((x) => x.vnode === 'n2-egee');
    expect(n2egee?.detail?.jobs.map((j) => j.id)).toEqual(['3.relay']);
  }, 90_000);

  test('a daemon restarted behind the relay resumes; its next change reaches the filter', async () => {
    const before = (await getNode(clients.n2!)).generation;
    clients.n2!.close();
    await daemons.n2!.stop();
    daemons.n2 = await spawnDaemon({
      stateDir: path.join(dir, 'n2'),
      config: QUIET_DAEMON,
      listen: daemons.n2!.addr,
    });
    clients.n2 = nodeClient(daemons.n2.admin);
    expect(Number((await getNode(clients.n2)).generation)).toBeGreaterThanOrEqual(Number(before));
    await until(() => inStep('n2'), 'n2 in step after its restart', 30_000);
    await unary(clients.n2, clients.n2.EndJob, { domain: 'egee', job_id: '3.relay' });
    await until(() => published(qlog).get('n2-egee')?.state === 'free', 'n2-egee free', 30_000);
    await until(() => inStep('n2'), 'n2 in step after the change', 30_000);
  }, 90_000);

  test('a bad relay configuration is refused with every problem located (exit 78), nothing started', async () => {
    const bad = path.join(dir, 'bad-relay.yaml');
    fs.writeFileSync(
      bad,
      `
listen: "10.0.0.1:5690"
nodes:
  - { name: n1, address: "127.0.0.1:1" }
  - { name: n1, address: "nowhere", vnodes: { meta: x } }
  - { address: "127.0.0.1:2" }
maxChangesPerNode: 0
colour: blue
`,
    );
    const r = await runToExit([RELAY_BIN, '--config', bad]);
    expect(r.code).toBe(78);
    for (const p of [
      'listen: 10.0.0.1 is not a loopback address; serving beyond loopback needs tls',
      'nodes.1.address: "nowhere" is not HOST:PORT',
      'nodes.1.vnodes: unknown key',
      'nodes.1.name: duplicate node "n1"',
      'nodes.2.name: is required',
      'maxChangesPerNode:',
      'colour: unknown key',
    ])
      expect(r.stderr).toContain(p);
  });
});

describe('magrathea-relay with mTLS both ways (certificates from magrathea pki init)', () => {
  let dir: string;
  let pki: string;
  let daemon: DaemonProcess;
  let admin: NodeServiceClient;
  let relay: DaemonProcess;
  let filter: FilterProcess;
  let cluster: ClusterServiceClient;

  beforeAll(async () => {
    dir = tmpDir('mg-relay-tls-15r-');
    pki = path.join(dir, 'pki');
    const made = await cli([
      'pki',
      'init',
      '--out',
      pki,
      '--node',
      'n1',
      '--node',
      'rack1',
      '--client',
      'filt=filter',
      '--client',
      'rack1=filter',
      '--client',
      'stranger=reader',
    ]);
    expect(made.code).toBe(0);
    daemon = await spawnDaemon({
      stateDir: path.join(dir, 'n1'),
      config: `${DAEMON_CONFIG}
listen:
  tls:
    ca: ${pki}/ca.pem
    cert: ${pki}/nodes/n1.pem
    key: ${pki}/nodes/n1.key
    clients: [{ identity: rack1, role: filter }]
`,
    });
    admin = nodeClient(daemon.admin);
    const relayCfg = path.join(dir, 'relay.yaml');
    fs.writeFileSync(
      relayCfg,
      `
listen: "127.0.0.1:0"
nodes: [{ name: n1, address: "${daemon.addr}" }]
tls:
  ca: pki/ca.pem
  cert: pki/nodes/rack1.pem
  key: pki/nodes/rack1.key
  clientCert: pki/clients/rack1.pem
  clientKey: pki/clients/rack1.key
  clients: [{ identity: filt, role: filter }]
`,
    );
    relay = await spawnRelay(relayCfg);
    const cfgFile = path.join(dir, 'filter.yaml');
    fs.writeFileSync(
      cfgFile,
      `
listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }
relays: [{ name: rack1, address: "127.0.0.1:${relay.port}" }]
nodes: [{ name: n1, relay: rack1 }]
tls: { ca: ${pki}/ca.pem, cert: ${pki}/clients/filt.pem, key: ${pki}/clients/filt.key }
`,
    );
    filter = await spawnFilter(cfgFile);
    cluster = new (loadMagratheaApi().magrathea.v1.ClusterService)(
      `127.0.0.1:${filter.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
  }, 120_000);

  afterAll(async () => {
    cluster?.close();
    admin?.close();
    await filter?.stop();
    await relay?.stop();
    await daemon?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test.each([
    [
      'its certificate and key swapped',
      { cert: 'pki/nodes/rack1.key', key: 'pki/nodes/rack1.pem' },
      /not a PEM|do not make an identity|PEM/,
    ],
    ['a key of another identity', { key: 'pki/nodes/n1.key' }, /do not make an identity: .*key values mismatch/],
    ['/dev/zero as its key', { key: '/dev/zero' }, /private key .*\/dev\/zero/],
    ['a CA that is not PEM', { ca: 'relay.yaml' }, /CA certificate .*not a PEM file/],
    ['a client key that does not match', { clientKey: 'pki/nodes/n1.key' }, /do not make an identity/],
  ])('TLS files wrong (%s): exit 66 with the reason, not an internal error', async (_what, change, why) => {
    const files: Record<string, string> = {
      ca: 'pki/ca.pem',
      cert: 'pki/nodes/rack1.pem',
      key: 'pki/nodes/rack1.key',
      clientCert: 'pki/clients/rack1.pem',
      clientKey: 'pki/clients/rack1.key',
      ...change,
    };
    const cfg = path.join(dir, 'relay-badtls.yaml');
    fs.writeFileSync(
      cfg,
      `listen: "127.0.0.1:0"\nnodes: [{ name: n1, address: "${daemon.addr}" }]\ntls:\n${Object.entries(files)
        .map(([k, v]) => `  ${k}: ${v}\n`)
        .join('')}  clients: [{ identity: filt, role: filter }]\n`,
    );
    const r = await runToExit([RELAY_BIN, '--config', cfg]);
    expect([r.code, r.stderr]).toEqual([66, expect.stringMatching(why)]);
    expect(r.stderr).not.toMatch(/internal error/);
  });

  test('the filter reads the daemon through the relay, each hop authenticated', async () => {
    await until(
      async () => {
        const r = await new Promise<{ nodes: ListedNode[] }>((res, rej) =>
          cluster.ListNodes({}, (e, v) => (e ? rej(e) : res(v as unknown as { nodes: ListedNode[] }))),
        );
        const n1 = r.nodes.find((n) => n.name === 'n1');
        return n1?.reachable === true && n1.generation === (await getNode(admin)).generation;
      },
      'n1 in step through the TLS relay',
      30_000,
    );
  }, 60_000);

  test('WatchNodes without a client certificate is UNAUTHENTICATED, with one of no role PERMISSION_DENIED', async () => {
    const api = loadMagratheaApi();
    const first = (creds: grpc.ChannelCredentials) =>
      new Promise<string>((resolve) => {
        const c = new api.magrathea.v1.RelayService(`127.0.0.1:${relay.port}`, creds);
        const s = c.WatchNodes({ nodes: [{ node: 'n1', since_generation: '0' }] });
        s.on('data', () => {
          s.cancel();
          c.close();
          resolve('data');
        });
        s.on('error', (e: grpc.ServiceError) => {
          c.close();
          resolve(grpc.status[e.code] ?? String(e.code));
        });
      });
    const pem = (f: string) => fs.readFileSync(path.join(pki, f));
    expect(await first(grpc.credentials.createSsl(pem('ca.pem')))).toBe('UNAUTHENTICATED');
    expect(
      await first(grpc.credentials.createSsl(pem('ca.pem'), pem('clients/stranger.key'), pem('clients/stranger.pem'))),
    ).toBe('PERMISSION_DENIED');
    expect(
      await first(grpc.credentials.createSsl(pem('ca.pem'), pem('clients/filt.key'), pem('clients/filt.pem'))),
    ).toBe('data');
  }, 60_000);

  test('failed authentications are answered later and later, and those waiting take no reader’s place', async () => {
    const api = loadMagratheaApi();
    const pem = (f: string) => fs.readFileSync(path.join(pki, f));
    const from = relay.logs.length;
    const c = new api.magrathea.v1.RelayService(`127.0.0.1:${relay.port}`, grpc.credentials.createSsl(pem('ca.pem')));
    const filt = new api.magrathea.v1.RelayService(
      `127.0.0.1:${relay.port}`,
      grpc.credentials.createSsl(pem('ca.pem'), pem('clients/filt.key'), pem('clients/filt.pem')),
    );
    try {
      // More certificate-less calls at once than the relay holds streams (64).
      const outcomes = Array.from(
        { length: 70 },
        () =>
          new Promise<string>((resolve) => {
            const s = c.WatchNodes({ nodes: [{ node: 'n1', since_generation: '0' }] });
            s.on('data', () => resolve('data'));
            s.on('error', (e: grpc.ServiceError) => resolve(grpc.status[e.code] ?? String(e.code)));
          }),
      );
      const failures = () => relay.logs.slice(from).filter((l) => l.msg === 'authentication failed');
      await until(() => failures().length === 70, 'every failure logged', 30_000);
      expect(failures().filter((l) => Number(l.delayMs) > 0).length).toBeGreaterThanOrEqual(50);
      // While they wait, a reader with a good certificate is served.
      const served = await new Promise<string>((resolve) => {
        const s = filt.WatchNodes({ nodes: [{ node: 'n1', since_generation: '0' }] });
        s.on('data', () => {
          s.cancel();
          resolve('data');
        });
        s.on('error', (e: grpc.ServiceError) => resolve(`${grpc.status[e.code]}: ${e.details}`));
      });
      expect(served).toBe('data');
      expect(new Set(await Promise.all(outcomes))).toEqual(new Set(['UNAUTHENTICATED']));
    } finally {
      c.close();
      filt.close();
    }
  }, 60_000);
});

describe('magrathea-relay with daemons that answer badly (a fake NodeService over bare HTTP/2)', () => {
  let dir: string;
  let daemon: DaemonProcess;
  let relay: DaemonProcess;
  const fakes: http2.Http2Server[] = [];
  const ports: Record<string, number> = {};
  /** What the fake daemon does with each WatchNode call, by the node it stands for. */
  const answers: Record<string, (s: http2.ServerHttp2Stream) => void> = {
    // A message whose prefix says 3 bytes, holding a field that claims 5.
    malformed: (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.write(Buffer.from([0, 0, 0, 0, 3, 0x12, 0x05, 0x01]));
    },
    // Trailers-only with a grpc-status that is no status.
    badstatus: (s) =>
      s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '99' }, { endStream: true }),
    // A snapshot, then heartbeats in a loop (a daemon gone wrong): 20,000 of them, as fast as it can.
    chatty: (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.write(grpcFrame(nodeEvent.encode({ generation: 1, snapshot: { name: 'chatty' } }).finish()));
      const beat = grpcFrame(nodeEvent.encode({ generation: 1, heartbeat: { at_ms: 1, interval_ms: 100 } }).finish());
      let sent = 0;
      const burst = (): void => {
        if (s.closed) return;
        for (let i = 0; i < 1000; i++) s.write(beat);
        sent += 1000;
        if (sent < 20_000) setImmediate(burst);
        else chattyDone = true;
      };
      burst();
    },
  };
  const nodeEvent = loadProtoRoot('magrathea/v1/node_service.proto').lookupType('magrathea.v1.NodeEvent');
  const grpcFrame = (m: Uint8Array): Buffer => {
    const b = Buffer.alloc(5 + m.length);
    b.writeUInt32BE(m.length, 1);
    b.set(m, 5);
    return b;
  };
  let chattyDone = false;

  beforeAll(async () => {
    dir = tmpDir('mg-relay-bad-15r-');
    for (const [name, answer] of Object.entries(answers)) {
      const fake = http2.createServer();
      fake.on('stream', (s) => {
        s.on('error', () => undefined);
        answer(s);
      });
      await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
      ports[name] = (fake.address() as AddressInfo).port;
      fakes.push(fake);
    }
    daemon = await spawnDaemon({ stateDir: path.join(dir, 'good'), config: DAEMON_CONFIG });
    const cfg = path.join(dir, 'relay.yaml');
    fs.writeFileSync(
      cfg,
      `
listen: "127.0.0.1:0"
nodes:
  - { name: good, address: "${daemon.addr}" }
  - { name: malformed, address: "127.0.0.1:${ports.malformed}" }
  - { name: badstatus, address: "127.0.0.1:${ports.badstatus}" }
  - { name: chatty, address: "127.0.0.1:${ports.chatty}" }
graceMs: 1500
reconnect: { initialMs: 100, maxMs: 400 }
log: { level: debug }
`,
    );
    relay = await spawnRelay(cfg);
  }, 60_000);

  afterAll(async () => {
    await relay?.stop();
    await daemon?.stop();
    for (const f of fakes) await new Promise<void>((r) => f.close(() => r()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('each is that node’s failure, logged with the reason; the relay keeps serving the good node', async () => {
    const api = loadMagratheaApi();
    const c = new api.magrathea.v1.RelayService(`127.0.0.1:${relay.port}`, grpc.credentials.createInsecure());
    const s = c.WatchNodes({
      nodes: ['good', 'malformed', 'badstatus'].map((node) => ({ node, since_generation: '0' })),
    });
    const seen: { node: string; kind: string; error: string | undefined }[] = [];
    s.on('data', (e: { node: string; kind: string; down?: { error: string } }) =>
      seen.push({ node: e.node, kind: e.kind, error: e.down?.error }),
    );
    s.on('error', () => undefined);
    await until(
      () =>
        Promise.resolve(
          seen.some((e) => e.node === 'good' && e.kind === 'event') &&
            relay.logs.some((l) => l.msg === 'bad message from node daemon; dropping its stream') &&
            relay.logs.some((l) => l.node === 'badstatus' && String(l.why).includes('bad grpc-status "99"')),
        ),
      'the good node served, the bad ones logged',
      20_000,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}; relay said: ${JSON.stringify(relay.logs.slice(-12))}; reader saw: ${JSON.stringify(seen.slice(-6))}`,
      );
    });
    s.cancel();
    c.close();
    const bad = relay.logs.find((l) => l.msg === 'bad message from node daemon; dropping its stream')!;
    expect(bad).toMatchObject({ level: 'warn', node: 'malformed' });
    expect(String(bad.problem)).toMatch(/^malformed NodeEvent: /);
    // The first catch-up of each node (each down, or the good one's log), then caught_up once.
    const mark = seen.findIndex((e) => e.kind === 'caught_up');
    expect([...new Set(seen.slice(0, mark).map((e) => e.node))]).toEqual(['good', 'malformed', 'badstatus']);
    expect(seen.filter((e) => e.kind === 'caught_up')).toEqual([{ node: '', kind: 'caught_up', error: undefined }]);
    // Never forwarded: the bad nodes are only ever down for the reader.
    const nodes = seen.filter((e) => e.kind !== 'caught_up');
    expect(nodes.filter((e) => e.node !== 'good').every((e) => e.kind === 'down')).toBe(true);
    expect(seen.filter((e) => e.node === 'malformed').length).toBeGreaterThan(0);
    // Still alive and answering after the retries.
    expect(relay.proc.exitCode).toBeNull();
  }, 40_000);

  test('a daemon sending heartbeats in a loop: its readers get at most one per 100 ms, and are not cut', async () => {
    const api = loadMagratheaApi();
    const c = new api.magrathea.v1.RelayService(`127.0.0.1:${relay.port}`, grpc.credentials.createInsecure());
    const t0 = performance.now();
    const s = c.WatchNodes({ nodes: [{ node: 'chatty', since_generation: '0' }] });
    let beats = 0;
    let snapshots = 0;
    let failed: string | null = null;
    s.on('data', (e: { node: string; event?: { heartbeat?: unknown; snapshot?: unknown } }) => {
      if (e.event?.heartbeat) beats++;
      if (e.event?.snapshot) snapshots++;
    });
    s.on('error', (e: grpc.ServiceError) => (failed = `${grpc.status[e.code]}: ${e.details}`));
    try {
      await until(() => chattyDone, 'the fake daemon sent its 20,000 heartbeats', 30_000);
      await new Promise((r) => setTimeout(r, 300));
      const elapsedMs = performance.now() - t0;
      expect(failed).toBeNull();
      expect(snapshots).toBeGreaterThanOrEqual(1);
      // The relay's own heartbeat on the first catch-up, then at most one per 100 ms of the time watched.
      expect(beats).toBeLessThanOrEqual(2 + Math.ceil(elapsedMs / 100));
      expect(relay.proc.exitCode).toBeNull();
    } finally {
      s.cancel();
      c.close();
    }
  }, 40_000);
});
