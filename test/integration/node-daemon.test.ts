/**
 * magrathead as a child process, driven only through the CLI and gRPC: the full
 * normal → priority → resume → free cycle, watched in generation order.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { NodeEventMessage, NodeServiceClient } from '@magrathea/common';
import {
  DAEMON_BIN,
  cli,
  collectWatch,
  getNode,
  nodeClient,
  runToExit,
  spawnDaemon,
  statesOf,
  tmpDir,
  unary,
} from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

describe('magrathead (child process) through the CLI and gRPC', () => {
  let d: DaemonProcess;
  let client: NodeServiceClient;
  let dir: string;

  beforeAll(async () => {
    dir = tmpDir('mg-int-');
    d = await spawnDaemon({ stateDir: path.join(dir, 'state') });
    client = nodeClient(d.admin);
  });
  afterAll(async () => {
    client?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the cycle: normal job, priority job preempts, priority end resumes, all end frees — every change watched in order', async () => {
    // Wait for the autostart boots (the daemon is ready before its domains are up).
    for (let i = 0; i < 200 && Object.values(statesOf(await getNode(client))).some((s) => s !== 'free'); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(statesOf(await getNode(client))).toEqual({ meta: 'free', egee: 'free', priv: 'free' });
    const watch = collectWatch(client);
    await watch.waitFor((e) => e.length >= 1);
    expect(watch.events[0]!.snapshot).toBeTruthy();
    const g0 = Number(watch.events[0]!.generation);

    let r = await cli(['job', 'start', '--node', d.admin, '--domain', 'meta', '--job', '100.pbs']);
    expect(r).toMatchObject({ code: 0 });
    const st = JSON.parse((await cli(['status', '--node', d.addr, '--json'])).stdout) as {
      domains: {
        name: string;
        state: string;
        jobs: { id: string }[];
        generation: number;
        class: string;
        since: string;
      }[];
    };
    expect(Object.fromEntries(st.domains.map((x) => [x.name, x.state]))).toEqual({
      meta: 'running-preemptible',
      egee: 'occupied',
      priv: 'occupied-would-preempt',
    });
    expect(st.domains[0]).toMatchObject({ name: 'meta', class: 'normal', jobs: [{ id: '100.pbs' }] });
    expect(typeof st.domains[0]!.generation).toBe('number');
    expect(Number.isNaN(Date.parse(st.domains[0]!.since))).toBe(false);

    // A job in an occupied domain is refused with the reason on stderr and a non-zero exit.
    r = await cli(['job', 'start', '--node', d.admin, '--domain', 'egee', '--job', '101.pbs']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/refused: occupied/);

    // Priority job over the Unix socket preempts the batch domain.
    r = await cli(['job', 'start', '--node', `unix:${d.socket}`, '--domain', 'priv', '--job', '200.pbs', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ state: 'running-priority', preempted: ['meta'] });
    expect(statesOf(await getNode(client))).toEqual({ meta: 'preempted', egee: 'occupied', priv: 'running-priority' });

    // Repeating a start is idempotent.
    r = await cli(['job', 'start', '--node', d.admin, '--domain', 'priv', '--job', '200.pbs', '--json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ already_running: true });

    r = await cli(['job', 'end', '--node', d.admin, '--domain', 'priv', '--job', '200.pbs']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resumed meta/);
    expect(statesOf(await getNode(client))).toEqual({
      meta: 'running-preemptible',
      egee: 'occupied',
      priv: 'occupied-would-preempt',
    });
    const meta = (await getNode(client)).domains[0]!;
    expect(meta.jobs[0]!.preempted_seconds).toBeGreaterThan(0);

    r = await cli(['job', 'end', '--node', d.admin, '--domain', 'meta', '--job', '100.pbs']);
    expect(r.code).toBe(0);
    expect(statesOf(await getNode(client))).toEqual({ meta: 'free', egee: 'free', priv: 'free' });

    // Ending again: success with a warning (end hooks retry).
    r = await cli(['job', 'end', '--node', d.admin, '--domain', 'meta', '--job', '100.pbs']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: job 100.pbs is not known/);

    const final = Number((await getNode(client)).generation);
    await watch.waitFor((e) => Number(e.at(-1)!.generation) === final);
    watch.stream.cancel();
    const changes = watch.events.slice(1);
    // Every committed change, each generation exactly once, in order.
    expect(changes.map((e) => Number(e.generation))).toEqual(Array.from({ length: final - g0 }, (_, i) => g0 + 1 + i));
    const seen = (dom: string) =>
      changes.flatMap((e) => e.change!.domains.filter((x) => x.name === dom).map((x) => x.state));
    expect(seen('meta')).toEqual(['running-preemptible', 'preempted', 'running-preemptible', 'free']);
    expect(seen('priv')).toEqual(['occupied-would-preempt', 'running-priority', 'occupied-would-preempt', 'free']);
    expect(seen('egee')).toEqual(['occupied', 'free']);
  });

  test('a watcher that resumes from a generation gets exactly the events it missed', async () => {
    const g = Number((await getNode(client)).generation);
    await unary(client, client.StartJob, { domain: 'egee', job_id: 'r1', preemptible: true, cpus: 1 });
    await unary(client, client.EndJob, { domain: 'egee', job_id: 'r1' });
    const w = collectWatch(client, g);
    await w.waitFor((e) => e.length >= 2);
    w.stream.cancel();
    expect(w.events.map((e) => Number(e.generation))).toEqual([g + 1, g + 2]);
    expect(w.events.every((e: NodeEventMessage) => e.change && !e.snapshot)).toBe(true);
  });

  test('domain actions through the CLI, with refusals and reasons', async () => {
    let r = await cli(['domain', 'offline', 'egee', '--node', d.admin, '--reason', 'disk check']);
    expect(r).toMatchObject({ code: 0 });
    const table = (await cli(['status', '--node', d.addr])).stdout;
    expect(table).toMatch(/egee\s+normal\s+-\s+free\s+-\s+\S+ ago\s+\d+\s+offline: disk check/);
    r = await cli(['job', 'start', '--node', d.admin, '--domain', 'egee', '--job', 'x1']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/offline: domain egee is offline: disk check/);
    expect((await cli(['domain', 'online', 'egee', '--node', d.admin])).code).toBe(0);
    r = await cli(['domain', 'freeze', 'meta', '--node', d.admin]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/not-priority/);
    expect((await cli(['domain', 'down', 'egee', '--node', d.admin])).stdout).toMatch(/down egee: down-bootable/);
    expect((await cli(['domain', 'boot', 'egee', '--node', d.admin])).stdout).toMatch(/boot egee: booting/);
    for (let i = 0; i < 200 && statesOf(await getNode(client)).egee !== 'free'; i++)
      await new Promise((res) => setTimeout(res, 10));
    expect(statesOf(await getNode(client)).egee).toBe('free');
  });

  test('bad input gets a clear error and changes nothing', async () => {
    const before = await getNode(client);
    const err = (req: object) =>
      unary(client, client.StartJob, req).then(
        () => null,
        (e: grpc.ServiceError) => e,
      );
    expect((await err({ domain: 'nope', job_id: 'a' }))!.code).toBe(grpc.status.NOT_FOUND);
    expect((await err({ domain: 'meta', job_id: '' }))!.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await err({ domain: 'meta', job_id: 'x'.repeat(300) }))!.details).toMatch(/at most 255/);
    expect((await err({ domain: 'meta', job_id: 'a b' }))!.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await err({ domain: 'meta', job_id: 'a', cpus: 100000 }))!.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await err({ domain: '../etc', job_id: 'a' }))!.code).toBe(grpc.status.INVALID_ARGUMENT);
    const stale = await err({ domain: 'meta', job_id: 'a', expected_generation: '999999' });
    expect(stale!.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(stale!.metadata.get('magrathea-reason')).toEqual(['stale-generation']);
    const act = await unary(client, client.DomainAction, { domain: 'meta', action: 'explode' }).catch(
      (e: grpc.ServiceError) => e,
    );
    expect((act as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    const after = await getNode(client);
    expect(after.generation).toBe(before.generation);
    let r = await cli(['job', 'start', '--node', d.admin, '--domain', 'meta', '--job', 'j', '--cpus', 'many']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--cpus/);
    r = await cli(['status', '--node', 'no-port']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not HOST:PORT/);
  });

  test('standard health service reports SERVING and reflection lists NodeService', async () => {
    const healthDef = protoLoader.loadSync(require.resolve('grpc-health-check/proto/health/v1/health.proto'), {
      keepCase: true,
      enums: String,
    });
    const Health = (grpc.loadPackageDefinition(healthDef) as any).grpc.health.v1.Health;
    const h = new Health(d.addr, grpc.credentials.createInsecure());
    const res = await new Promise<any>((resolve, reject) =>
      h.Check({ service: 'magrathea.v1.NodeService' }, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))),
    );
    expect(res.status).toBe('SERVING');
    h.close();
    const reflDef = protoLoader.loadSync(
      require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto'),
      { keepCase: true },
    );
    const Refl = (grpc.loadPackageDefinition(reflDef) as any).grpc.reflection.v1.ServerReflection;
    const rc = new Refl(d.addr, grpc.credentials.createInsecure());
    const stream = rc.ServerReflectionInfo();
    // Wait for the call's own status before closing the channel: closing it while the server
    // is still ending the stream makes grpc-js emit 'Connection dropped' after the test.
    const services = await new Promise<string[]>((resolve, reject) => {
      let names: string[] = [];
      stream.on('data', (m: any) => {
        names = m.list_services_response.service.map((s: { name: string }) => s.name);
        stream.end();
      });
      stream.on('error', reject);
      stream.on('status', () => resolve(names));
      stream.write({ list_services: '' });
    });
    rc.close();
    expect(services).toEqual(expect.arrayContaining(['magrathea.v1.NodeService', 'grpc.health.v1.Health']));
  });

  test('the Unix socket is mode 0600 and the state directory 0700', () => {
    expect(fs.statSync(d.socket).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, 'state')).mode & 0o777).toBe(0o700);
  });
});

describe('magrathead start-up errors and shutdown', () => {
  test('an invalid config: every problem on stderr, exit 78, nothing started', async () => {
    const dir = tmpDir('mg-badcfg-');
    const f = path.join(dir, 'bad.yaml');
    fs.writeFileSync(
      f,
      'domains: [{ name: meta, class: batch }, { name: meta }]\nlisten: { tcp: "8.8.8.8:1" }\ncolour: red\n',
    );
    const r = await runToExit([DAEMON_BIN, '--config', f, '--state-dir', path.join(dir, 's')]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/domains\.0\.class/);
    expect(r.stderr).toMatch(/domains\.1\.name: duplicate/);
    expect(r.stderr).toMatch(/listen\.tcp: 8\.8\.8\.8 is not a loopback/);
    expect(r.stderr).toMatch(/colour: unknown key/);
    expect(fs.existsSync(path.join(dir, 's'))).toBe(false);
    fs.rmSync(dir, { recursive: true });
  });

  test('an unusable state directory: clear error, exit 73', async () => {
    const dir = tmpDir('mg-badstate-');
    fs.writeFileSync(path.join(dir, 'file'), '');
    const r = await runToExit([
      DAEMON_BIN,
      '--state-dir',
      path.join(dir, 'file', 'state'),
      '--listen',
      '127.0.0.1:0',
      '--socket',
      path.join(dir, 's.sock'),
    ]);
    expect(r.code).toBe(73);
    expect(r.stderr).toMatch(/state directory .* is not usable/);
    fs.rmSync(dir, { recursive: true });
  });

  test('SIGTERM: open watch streams are closed, the daemon exits 0, state survives the restart', async () => {
    const dir = tmpDir('mg-term-');
    const state = path.join(dir, 'state');
    const d = await spawnDaemon({
      stateDir: state,
      config:
        'domains: [{ name: a }, { name: p, class: priority }]\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n',
    });
    const c = nodeClient(d.admin);
    for (let i = 0; i < 100 && statesOf(await getNode(c)).a !== 'free'; i++)
      await new Promise((r) => setTimeout(r, 10));
    await unary(c, c.StartJob, { domain: 'a', job_id: 'keep.me', preemptible: true });
    const gen = (await getNode(c)).generation;
    const w = collectWatch(c);
    await w.waitFor((e) => e.length >= 1);
    const ended = new Promise<string>((resolve) => {
      w.stream.on('end', () => resolve('end'));
      w.stream.on('error', (e: grpc.ServiceError) => resolve(`error ${e.code}`));
    });
    expect(await d.stop()).toBe(0);
    expect(await ended).toBe('end');
    expect(d.logs.some((l) => l.msg === 'magrathead stopped')).toBe(true);
    c.close();
    const d2 = await spawnDaemon({ stateDir: state, config: 'domains: [{ name: a }, { name: p, class: priority }]\n' });
    const c2 = nodeClient(d2.admin);
    const n = await getNode(c2);
    expect(n.generation).toBe(gen);
    expect(n.domains[0]!.jobs.map((j) => j.id)).toEqual(['keep.me']);
    c2.close();
    await d2.stop();
    fs.rmSync(dir, { recursive: true });
  });
});
