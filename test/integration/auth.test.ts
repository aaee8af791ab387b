/**
 * mTLS and roles on a real magrathead: certificates made by `magrathea pki init` (openssl),
 * gRPC over TLS on 127.0.0.1. Every refused call gets the right status and changes nothing.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NodeMessage, NodeServiceClient } from '@magrathea/common';
import { loadMagratheaApi } from '@magrathea/common';
import { cli, spawnDaemon, spawnFilter, tmpDir, unary } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const api = loadMagratheaApi();

describe('mTLS and roles (real daemon, real certificates)', () => {
  let dir: string;
  let pki: string;
  let d: DaemonProcess;
  let hookPort: number;
  const pem = (f: string) => fs.readFileSync(path.join(pki, f));
  const client = (id: string | null, opts: { ca?: Buffer; certDir?: string } = {}): NodeServiceClient => {
    const creds = id
      ? grpc.credentials.createSsl(
          opts.ca ?? pem('ca.pem'),
          fs.readFileSync(path.join(opts.certDir ?? pki, 'clients', `${id}.key`)),
          fs.readFileSync(path.join(opts.certDir ?? pki, 'clients', `${id}.pem`)),
        )
      : grpc.credentials.createSsl(opts.ca ?? pem('ca.pem'));
    return new api.magrathea.v1.NodeService(`127.0.0.1:${d.port}`, creds);
  };
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'OK',
      (e: grpc.ServiceError) => grpc.status[e.code],
    );
  const generation = async () =>
    Number((await unary<object, NodeMessage>(client('admin'), client('admin').GetNode, {})).generation);

  beforeAll(async () => {
    dir = tmpDir('mg-auth-');
    pki = path.join(dir, 'pki');
    const r = await cli([
      'pki',
      'init',
      '--out',
      pki,
      '--node',
      'n1',
      '--client',
      'admin=operator',
      '--client',
      'mon=reader',
      '--client',
      'filt=filter',
      '--client',
      'stranger=reader',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('- { identity: admin, role: operator }');
    expect(fs.statSync(path.join(pki, 'clients/admin.key')).mode & 0o777).toBe(0o600);
    // An expired client certificate from the same CA, and a whole foreign PKI.
    execFileSync(
      'openssl',
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'clients/old.key'],
      { cwd: pki },
    );
    execFileSync('openssl', ['req', '-new', '-key', 'clients/old.key', '-subj', '/CN=admin', '-out', 'old.csr'], {
      cwd: pki,
    });
    execFileSync(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        'old.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '-1',
        '-out',
        'clients/old.pem',
      ],
      { cwd: pki, stdio: 'ignore' },
    );
    expect(
      (await cli(['pki', 'init', '--out', path.join(dir, 'other'), '--node', 'n1', '--client', 'admin=operator'])).code,
    ).toBe(0);
    fs.writeFileSync(path.join(dir, 'meta.token'), 'meta-token-0123456789abcdef\n', { mode: 0o600 });
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `
listen:
  tls:
    ca: ${pki}/ca.pem
    cert: ${pki}/nodes/n1.pem
    key: ${pki}/nodes/n1.key
    clients:
      - { identity: admin, role: operator }
      - { identity: mon, role: reader }
      - { identity: filt, role: filter }
limits: { maxStreamsPerClient: 2, authFailuresPerMinute: 50 }
hookApi: { listen: "127.0.0.1:0" }
domains:
  - { name: meta, class: normal, tokenFile: ${dir}/meta.token }
  - { name: priv, class: priority }
  - { name: wk, class: normal, image: wk, wakeOnDemand: true, autostart: false }
`,
    });
    hookPort = d.logs.find((l) => l.msg === 'magrathead ready')!.hookPort as number;
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('operator may start and end jobs; reader and filter may read and watch', async () => {
    const admin = client('admin');
    await unary(admin, admin.StartJob, { domain: 'meta', job_id: 'j1', preemptible: true });
    await unary(admin, admin.EndJob, { domain: 'meta', job_id: 'j1' });
    for (const id of ['mon', 'filt']) {
      const c = client(id);
      expect(await codeOf(unary(c, c.GetNode, {}))).toBe('OK');
      const s = c.WatchNode({ since_generation: '0' });
      const first = await new Promise((resolve, reject) => {
        s.once('data', resolve);
        s.once('error', reject);
      });
      expect(first).toHaveProperty('snapshot');
      s.cancel();
      c.close();
    }
  });

  test('no certificate, a foreign CA, an expired certificate: UNAUTHENTICATED, nothing changed', async () => {
    const before = await generation();
    const noCert = client(null);
    expect(await codeOf(unary(noCert, noCert.StartJob, { domain: 'meta', job_id: 'x1' }))).toBe('UNAUTHENTICATED');
    expect(await codeOf(unary(noCert, noCert.GetNode, {}))).toBe('UNAUTHENTICATED');
    const foreign = client('admin', { certDir: path.join(dir, 'other') });
    expect(await codeOf(unary(foreign, foreign.StartJob, { domain: 'meta', job_id: 'x2' }))).toBe('UNAUTHENTICATED');
    const expired = client('old');
    const e = await unary(expired, expired.StartJob, { domain: 'meta', job_id: 'x3' }).catch(
      (x: grpc.ServiceError) => x,
    );
    expect((e as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((e as grpc.ServiceError).details).toMatch(
      /no valid client certificate \(missing, expired, or not issued by the site CA\)/,
    );
    expect(await generation()).toBe(before);
  });

  test('a reader calling an operator method, a filter starting a job, an identity without a role: PERMISSION_DENIED', async () => {
    const before = await generation();
    const mon = client('mon');
    const e = await unary(mon, mon.StartJob, { domain: 'meta', job_id: 'y1' }).catch((x: grpc.ServiceError) => x);
    expect((e as grpc.ServiceError).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((e as grpc.ServiceError).details).toBe('role reader (identity mon) may not call StartJob');
    const filt = client('filt');
    expect(await codeOf(unary(filt, filt.DomainAction, { domain: 'meta', action: 'down' }))).toBe('PERMISSION_DENIED');
    const stranger = client('stranger');
    expect(await codeOf(unary(stranger, stranger.GetNode, {}))).toBe('PERMISSION_DENIED');
    expect(await generation()).toBe(before); // Wake on demand: the filter may boot a wakeOnDemand domain that is down-bootable, nothing else.
    const boot = (domain: string) =>
      unary(filt, filt.DomainAction, { domain, action: 'boot', reason: 'wake' }).catch((x: grpc.ServiceError) => x);
    const notWake = (await boot('priv')) as grpc.ServiceError;
    expect([notWake.code, notWake.details]).toEqual([
      grpc.status.PERMISSION_DENIED,
      'filt: domain priv is not woken on demand (domains[].wakeOnDemand)',
    ]);
    expect(await generation()).toBe(before);
    expect(await boot('wk')).toEqual(expect.objectContaining({ state: expect.stringMatching(/booting/) }));
    const again = (await boot('wk')) as grpc.ServiceError;
    expect(again.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(again.details).toMatch(/^filt: domain wk is (booting|free), not down-bootable$/);
  });

  test('the Unix socket (mode 0600) stays the trusted local path: the CLI needs no certificate there', async () => {
    const r = await cli(['job', 'start', '--node', `unix:${d.socket}`, '--domain', 'meta', '--job', 'local.1']);
    expect(r.code).toBe(0);
    expect((await cli(['job', 'end', '--node', `unix:${d.socket}`, '--domain', 'meta', '--job', 'local.1'])).code).toBe(
      0,
    );
  });

  test('bad hook tokens are answered later and later, while the right token from the same address is served at once', async () => {
    const post = (token: string) =>
      new Promise<{ status: number; ms: number }>((resolve, reject) => {
        const t0 = performance.now();
        const body = JSON.stringify({ domain: 'meta', job_id: 'h1' });
        const req = http.request(
          {
            host: '127.0.0.1',
            port: hookPort,
            path: '/v1/jobs/start',
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 });
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const answers: { status: number; ms: number }[] = [];
    for (let i = 0; i < 55; i++) answers.push(await post(`wrong-${i}`));
    expect(answers.every((a) => a.status === 401)).toBe(true);
    // The 55th failure within the minute (limit 50) waited 5 steps of 100 ms.
    expect(answers.at(-1)!.ms).toBeGreaterThanOrEqual(500);
    // The right token is never refused or delayed because others guessed from its address.
    expect((await post('meta-token-0123456789abcdef')).status).toBe(200);
    expect(d.logs.some((l) => l.msg === 'hook API authentication failed' && Number(l.delayMs) >= 500)).toBe(true);
  });

  test('plaintext to the TLS port does not get through', async () => {
    const plain = new api.magrathea.v1.NodeService(`127.0.0.1:${d.port}`, grpc.credentials.createInsecure());
    expect(await codeOf(unary(plain, plain.GetNode, {}, 2000))).toMatch(/UNAVAILABLE|DEADLINE_EXCEEDED/);
  });

  test('watch streams per client are limited (RESOURCE_EXHAUSTED), and freed when a stream ends', async () => {
    const c = client('mon');
    const open = () => {
      const s = c.WatchNode({ since_generation: '0' });
      return {
        s,
        first: new Promise<string>((resolve) => {
          s.once('data', () => resolve('OK'));
          s.once('error', (e: grpc.ServiceError) => resolve(grpc.status[e.code]));
        }),
      };
    };
    const a = open();
    const b = open();
    expect([await a.first, await b.first]).toEqual(['OK', 'OK']);
    const third = open();
    expect(await third.first).toBe('RESOURCE_EXHAUSTED');
    a.s.cancel();
    await new Promise((r) => setTimeout(r, 300));
    const again = open();
    expect(await again.first).toBe('OK');
    b.s.cancel();
    again.s.cancel();
  });

  test('the CLI speaks mTLS with MAGRATHEA_TLS_*; without them it says why', async () => {
    const env = {
      MAGRATHEA_TLS_CA: `${pki}/ca.pem`,
      MAGRATHEA_TLS_CERT: `${pki}/clients/mon.pem`,
      MAGRATHEA_TLS_KEY: `${pki}/clients/mon.key`,
    };
    const ok = await cli(['status', '--node', `127.0.0.1:${d.port}`, '--json'], 15_000, env);
    expect(ok.code).toBe(0);
    const denied = await cli(
      ['job', 'start', '--node', `127.0.0.1:${d.port}`, '--domain', 'meta', '--job', 'z1'],
      15_000,
      env,
    );
    expect(denied.code).toBe(7);
    expect(denied.stderr).toMatch(/permission denied .*may not call StartJob/);
  });

  test('the real filter watches a TLS daemon (addressed by IP) with its filter certificate, and Node warns of nothing', async () => {
    const cfg = path.join(dir, 'filter.yaml');
    fs.writeFileSync(
      cfg,
      `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }
tls: { ca: ${pki}/ca.pem, cert: ${pki}/clients/filt.pem, key: ${pki}/clients/filt.key }
nodes:
  - { name: n1, address: "127.0.0.1:${d.port}" }
`,
    );
    const f = await spawnFilter(cfg);
    let stderr = '';
    f.proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    try {
      const cs = new api.magrathea.v1.ClusterService(`127.0.0.1:${f.grpcPort}`, grpc.credentials.createInsecure());
      let reachable = false;
      for (let i = 0; i < 50 && !reachable; i++) {
        const r = await unary<object, { nodes: { reachable: boolean }[] }>(cs, cs.ListNodes, {});
        reachable = r.nodes[0]?.reachable === true;
        if (!reachable) await new Promise((x) => setTimeout(x, 100));
      }
      expect(reachable).toBe(true);
      cs.close();
    } finally {
      await f.stop();
    }
    // grpc-js would send the IP as the TLS server name, which Node warns of (DEP0123) on stderr.
    expect(stderr).toBe('');
  });

  test('failed authentications are counted in /metrics and answered later and later; a valid certificate still gets in', async () => {
    const noCert = client(null);
    const codes: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < 55; i++) codes.push(await codeOf(unary(noCert, noCert.GetNode, {})));
    expect(codes.every((x) => x === 'UNAUTHENTICATED')).toBe(true);
    // Failures 51–55 waited 100 + 200 + … + 500 ms.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1500);
    const admin = client('admin');
    expect(await codeOf(unary(admin, admin.GetNode, {}))).toBe('OK');
    const text = await new Promise<string>((resolve, reject) =>
      http
        .get({ host: '127.0.0.1', port: hookPort, path: '/metrics' }, (res) => {
          let b = '';
          res.on('data', (c: Buffer) => (b += c.toString()));
          res.on('end', () => resolve(b));
        })
        .on('error', reject),
    );
    const failures = Number(/magrathea_auth_failures_total\{api="grpc"\} (\d+)/.exec(text)?.[1]);
    expect(failures).toBeGreaterThanOrEqual(55);
    expect(Number(/magrathea_auth_delayed_total\{api="grpc"\} (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(5);
    expect(d.logs.some((l) => l.msg === 'authentication failed' && Number(l.delayMs) > 0)).toBe(true);
  });
});
