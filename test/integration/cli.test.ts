/**
 * The `magrathea` CLI as an admin and a script meet it, against real daemons and a real filter:
 * the default node, --timeout, --json everywhere (errors too), error text naming the right
 * component without gRPC internals, the TLS hint, state filters and reasons, the one-domain view,
 * `domain offline` keeping its reason, the NOTES column and its legend.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import type { CliResult, DaemonProcess } from '../helpers/processes';
import { CLI_BIN, cli, getNode, nodeClient, ROOT, spawnDaemon, statesOf, tmpDir, until } from '../helpers/processes';

const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs the CLI in `cwd` with exactly `env` added to a clean environment (no MAGRATHEA_* from outside). */
function cliIn(cwd: string, args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MAGRATHEA_')));
    const p = spawn(process.execPath, [CLI_BIN, ...args], {
      cwd,
      env: { ...clean, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const json = (r: CliResult): Record<string, any> => JSON.parse(r.stdout) as Record<string, any>;

describe('magrathea against a plaintext daemon', () => {
  let dir: string;
  let d: DaemonProcess;
  let c: NodeServiceClient;

  beforeAll(async () => {
    dir = tmpDir('mg-cli-');
    // The state directory of `npm run daemon`: the CLI finds its socket without --node.
    const state = path.join(dir, '.magrathea');
    d = await spawnDaemon({
      stateDir: state,
      args: ['--socket', path.join(state, 'magrathead.sock')],
      config:
        'domains: [{ name: meta }, { name: egee }, { name: priv, class: priority }]\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n',
    });
    c = nodeClient(d.addr);
    await until(async () => Object.values(statesOf(await getNode(c))).every((s) => s === 'free'), 'domains free');
  });
  afterAll(async () => {
    c?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('--version', async () => {
    const r = await cliIn(dir, ['--version']);
    expect([r.code, r.stdout.trim()]).toEqual([0, VERSION]);
  });

  test('the default node: the local socket, else MAGRATHEA_NODE; without either a clear usage error', async () => {
    const local = await cliIn(dir, ['status', '--json']);
    expect(local.code).toBe(0);
    expect(json(local)).toMatchObject({ version: VERSION, domains: expect.any(Array) });
    const viaEnv = await cliIn(ROOT, ['status', '--json'], { MAGRATHEA_NODE: d.addr });
    expect(json(viaEnv).generation).toBe(json(local).generation);
    const elsewhere = tmpDir('mg-cli-none-');
    const none = await cliIn(elsewhere, ['status']);
    fs.rmSync(elsewhere, { recursive: true });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no magrathead to talk to: give --node HOST:PORT or unix:PATH, or set MAGRATHEA_NODE/);
  });

  test('a misspelled required option is named as unknown, with the right one suggested; a missing one is named', async () => {
    const typo = await cliIn(dir, ['job', 'start', '--domian', 'meta', '--job', '3.pbs']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown option '--domian'\s+\(Did you mean --domain\?\)/);
    const missing = await cliIn(dir, ['job', 'end', '--domain', 'meta', '--json']);
    expect(missing.code).toBe(2);
    expect(json(missing).error).toMatchObject({ kind: 'usage', message: "required option '--job <id>' not specified" });
    const before = json(await cliIn(dir, ['status', '--json'])).generation;
    expect((await cliIn(dir, ['job', 'start', '--job', '4.pbs'])).code).toBe(2);
    expect(json(await cliIn(dir, ['status', '--json'])).generation).toBe(before); // nothing was sent
  });

  test('--json everywhere: a refused job start prints the refusal as JSON on stdout (exit 3)', async () => {
    expect((await cliIn(dir, ['job', 'start', '--domain', 'meta', '--job', '1.pbs', '--json'])).code).toBe(0);
    const r = await cliIn(dir, ['job', 'start', '--domain', 'egee', '--job', '2.pbs', '--json']);
    expect(r.code).toBe(3);
    expect(json(r)).toEqual({
      error: {
        kind: 'refused',
        exit_code: 3,
        reason: 'occupied',
        message: expect.stringMatching(/^refused: occupied: domain egee is occupied/),
      },
    });
    expect(r.stderr).toMatch(/^magrathea: refused: occupied/);
    const act = await cliIn(dir, ['domain', 'offline', 'egee', '--reason', 'disk check', '--json']);
    expect(json(act)).toMatchObject({ action: 'offline', domain: 'egee', state: 'occupied' });
    const usage = await cliIn(dir, ['status', '--state', 'sideways', '--json']);
    expect(usage.code).toBe(2);
    expect(json(usage).error).toMatchObject({ kind: 'usage', message: expect.stringMatching(/sideways: not a state/) });
    const missing = await cliIn(dir, ['domain', 'show', 'nope', '--json']);
    expect([missing.code, json(missing).error.kind]).toEqual([4, 'not-found']);
  });

  test('domain offline without --reason keeps the reason; -l lists problems with reasons; --state filters', async () => {
    expect((await cliIn(dir, ['domain', 'offline', 'egee'])).code).toBe(0);
    const p = await cliIn(dir, ['status', '--problems']);
    expect(p.stdout).toMatch(/egee\s+occupied\s+\S+ ago\s+offline: disk check/);
    await cliIn(dir, ['job', 'start', '--domain', 'priv', '--job', '3.pbs', '--non-preemptible']);
    const problems = json(await cliIn(dir, ['status', '-l', '--json']));
    expect(problems.domains).toEqual([
      expect.objectContaining({
        name: 'meta',
        state: 'preempted',
        problems: ['preempted by priv: jobs 1.pbs suspended'],
      }),
      expect.objectContaining({ name: 'egee', problems: ['offline: disk check'] }),
    ]);
    const only = json(await cliIn(dir, ['status', '--state', 'preempted,offline', '--json']));
    expect(only.domains.map((x: { name: string }) => x.name)).toEqual(['meta', 'egee']);
    expect((await cliIn(dir, ['status', '--state', 'running-priority'])).stdout).toMatch(
      /\npriv\s+priority\s+-\s+running-priority\s+3\.pbs\*/,
    );
  });

  test('the NOTES column: a priority domain is never "preempted"; the markers are explained in a legend', async () => {
    await new Promise((r) => setTimeout(r, 1200)); // meta accumulates preempted CPU-seconds
    const t = (await cliIn(dir, ['status'])).stdout;
    expect(t).toMatch(/\nmeta\s+normal\s+-\s+preempted\s+1\.pbs\s+.*preempted \d+ cpu-s/);
    const priv = t.split('\n').find((l) => l.startsWith('priv'))!;
    expect(priv).not.toMatch(/preempted/);
    expect(t).toMatch(/JOB\* a job that may not be preempted/);
    expect(t).toMatch(/offline: REASON: taken out by an admin/);
    expect(t).toMatch(/preempted N cpu-s: CPU-seconds its current jobs have been suspended/);
  });

  test('domain show: every fact of one domain, scontrol style', async () => {
    const r = await cliIn(dir, ['domain', 'show', 'meta']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Domain=meta Node=\S+ Class=normal Image=-\n/);
    expect(r.stdout).toMatch(/State=preempted StoredState=preempted Generation=\d+/);
    expect(r.stdout).toMatch(/Jobs=1\.pbs\[cpus=1 preemptible started=\S+ preempted=[\d.]+s SUSPENDED\]/);
    expect(r.stdout).toMatch(/Problems=preempted by priv/);
    const priv = json(await cliIn(dir, ['domain', 'show', 'priv', '--json']));
    expect(priv).toMatchObject({ name: 'priv', class: 'priority', state: 'running-priority', problems: [] });
    await cliIn(dir, ['job', 'end', '--domain', 'priv', '--job', '3.pbs']);
    await cliIn(dir, ['job', 'end', '--domain', 'meta', '--job', '1.pbs']);
    await cliIn(dir, ['domain', 'online', 'egee']);
  });

  test('--timeout: a server that never answers is given up on, saying so (exit 5)', async () => {
    const silent = net.createServer(() => undefined).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const t0 = Date.now();
      const r = await cliIn(dir, ['status', '--node', `127.0.0.1:${port}`, '--timeout', '1']);
      expect(r.code).toBe(5);
      expect(r.stderr).toMatch(`magrathead at 127.0.0.1:${port} did not answer within 1 s`);
      expect(Date.now() - t0).toBeLessThan(10_000); // not the default 10 s deadline (plus start-up)
      expect((await cliIn(dir, ['status', '--timeout', 'soon'])).code).toBe(2);
    } finally {
      silent.close();
    }
  });

  test('errors name the component and carry no gRPC internals', async () => {
    const free = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => free.once('listening', r));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise((r) => free.close(r));
    const f = await cliIn(dir, ['cluster', 'status', '--filter', `127.0.0.1:${port}`]);
    expect(f.code).toBe(5);
    expect(f.stderr).toMatch(`magrathea: cannot reach magrathea-filter at 127.0.0.1:${port}: connection refused`);
    expect(f.stderr).toMatch(/hint: is magrathea-filter running/);
    const n = await cliIn(dir, ['status', '--node', `unix:${dir}/no.sock`]);
    expect(n.stderr).toMatch(`cannot reach magrathead at unix:${dir}/no.sock: no socket at that path`);
    for (const r of [f, n]) expect(r.stderr).not.toMatch(/Resolution note|No connection established|Last error/);
    const j = await cliIn(dir, ['cluster', 'status', '--filter', `127.0.0.1:${port}`, '--json']);
    expect(json(j).error).toMatchObject({ kind: 'unavailable', exit_code: 5, hint: expect.stringMatching(/running/) });
  });
});

describe('magrathea against a TLS-only daemon', () => {
  let dir: string;
  let pki: string;
  let d: DaemonProcess;
  let wrongIp: DaemonProcess;

  beforeAll(async () => {
    dir = tmpDir('mg-clitls-');
    pki = path.join(dir, 'pki');
    expect(
      (await cli(['pki', 'init', '--out', pki, '--node', 'n1', '--client', 'admin=operator', '--json'])).code,
    ).toBe(0);
    const tlsConfig = (listen: string) => `
listen:
  tcp: "${listen}"
  tls: { ca: ${pki}/ca.pem, cert: ${pki}/nodes/n1.pem, key: ${pki}/nodes/n1.key, clients: [{ identity: admin, role: operator }] }
domains: [{ name: meta }, { name: priv, class: priority }]
`;
    d = await spawnDaemon({ stateDir: path.join(dir, 's1'), config: tlsConfig('127.0.0.1:0') });
    // 127.0.0.2 is loopback too, but not in n1's certificate (SANs: n1, localhost, 127.0.0.1).
    wrongIp = await spawnDaemon({
      stateDir: path.join(dir, 's2'),
      config: tlsConfig('127.0.0.2:0'),
      listen: '127.0.0.2:0',
    });
  }, 60_000);
  afterAll(async () => {
    await d?.stop();
    await wrongIp?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const tlsEnv = (): Record<string, string> => ({
    MAGRATHEA_TLS_CA: `${pki}/ca.pem`,
    MAGRATHEA_TLS_CERT: `${pki}/clients/admin.pem`,
    MAGRATHEA_TLS_KEY: `${pki}/clients/admin.key`,
  });

  test('a plaintext client gets exit 7 and what to set, not "cannot reach" (exit 5)', async () => {
    const r = await cliIn(dir, ['status', '--node', `127.0.0.1:${d.port}`]);
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(
      `cannot reach magrathead at 127.0.0.1:${d.port}: it serves TLS only (mTLS) and this client spoke plaintext`,
    );
    expect(r.stderr).toMatch(/hint: set MAGRATHEA_TLS_CA, MAGRATHEA_TLS_CERT and MAGRATHEA_TLS_KEY/);
    const j = await cliIn(dir, ['status', '--node', `127.0.0.1:${d.port}`, '--json']);
    expect(json(j).error).toMatchObject({ kind: 'denied', exit_code: 7 });
  });

  test('over TLS to an IP address: it works, with no Node deprecation warning; the certificate is still checked against the IP', async () => {
    const ok = await cliIn(dir, ['status', '--node', `127.0.0.1:${d.port}`], tlsEnv());
    expect(ok.code).toBe(0);
    expect(ok.stderr).not.toMatch(/DeprecationWarning|DEP0123/);
    const bad = await cliIn(dir, ['status', '--node', `127.0.0.2:${wrongIp.port}`], tlsEnv());
    expect(bad.code).toBe(7);
    expect(bad.stderr).toMatch(/its certificate does not name the address it was reached at/);
    expect(bad.stderr).toMatch(/hint: .*magrathea pki init --ip ADDRESS/);
    expect(bad.stderr).not.toMatch(/DeprecationWarning/);
  });
});
