/**
 * The cgroup driver with real processes in real cgroups (v1 freezer, cpu, cpuacct, memory),
 * driven through a real magrathead. Needs root and the v1 hierarchies (as on the project's
 * machines and CI); elsewhere the suite says why it is skipped.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NodeServiceClient } from '@magrathea/common';
import { getNode, nodeClient, spawnDaemon, statesOf, tmpDir, unary, until as waitFor } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';
import { CGROUP_CONTROLLERS, CGROUP_MOUNT, cgroupsWritable, removeCgroupDomains } from '../helpers/cgroups';

const MOUNT = CGROUP_MOUNT;
const available = cgroupsWritable('cgroup driver tests');
const maybe = available ? describe : describe.skip;

const BURN = '["/bin/sh", "-c", "while :; do :; done"]';

maybe('cgroup driver (real processes, real cgroups)', () => {
  const root = `magrathea-test-${process.pid}-${Date.now() % 100000}`;
  let dir: string;
  let d: DaemonProcess;
  let c: NodeServiceClient;
  const cpuNs = (domain: string) =>
    Number(fs.readFileSync(path.join(MOUNT, 'cpuacct', root, domain, 'cpuacct.usage'), 'utf8'));
  const cpuOver = async (domain: string, ms: number) => {
    const a = cpuNs(domain);
    await new Promise((r) => setTimeout(r, ms));
    return (cpuNs(domain) - a) / 1e6;
  };
  const until = async (pred: () => Promise<boolean>, what: string) => {
    for (let i = 0; i < 300; i++) {
      if (await pred()) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out: ${what}`);
  };

  beforeAll(async () => {
    dir = tmpDir('mg-cg-');
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `
driver: { kind: cgroup, cgroup: { root: ${root}, stopTimeoutMs: 2000 } }
reconcileCron: "*/1 * * * * *"
domains:
  - { name: meta, class: normal, command: ${BURN}, preemption: pause }
  - { name: egee, class: normal, command: ${BURN} }
  - { name: priv, class: priority, command: ${BURN} }
  - { name: broken, class: normal, command: ["/bin/false"] }
`,
    });
    c = nodeClient(d.admin);
    await until(async () => {
      const s = statesOf(await getNode(c));
      return (
        s.meta === 'free' &&
        s.egee === 'free' &&
        s.priv === 'free' &&
        (s.broken === 'down' || s.broken === 'down-bootable')
      );
    }, 'domains booted');
  }, 30_000);

  afterAll(async () => {
    for (const dom of ['meta', 'egee', 'priv'])
      await unary(c, c.DomainAction, { domain: dom, action: 'down' }).catch(() => undefined);
    c?.close();
    await d?.stop();
    await removeCgroupDomains(root, ['meta', 'egee', 'priv', 'broken']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a domain whose command exits at once is down with the reason; the others keep working', async () => {
    const n = await getNode(c);
    const broken = n.domains.find((x) => x.name === 'broken')!;
    expect(broken.down_reason).toMatch(/the domain command exited at once/);
  });

  test('preemption freezes the batch tree (its CPU time stops), the priority domain gets the CPU, and the batch work continues after', async () => {
    await unary(c, c.StartJob, { domain: 'meta', job_id: 'batch.1', preemptible: true });
    expect(await cpuOver('meta', 400)).toBeGreaterThan(100);
    const r = await unary<object, { preempted: string[]; phases: { name: string; millis: number }[] }>(c, c.StartJob, {
      domain: 'priv',
      job_id: 'prio.1',
    });
    expect(r.preempted).toEqual(['meta']);
    expect(r.phases.map((p) => p.name)).toEqual(['preempt:meta', 'grow:priv']);
    expect(await cpuOver('meta', 500)).toBeLessThan(5);
    expect(await cpuOver('priv', 500)).toBeGreaterThan(150);
    const n = await getNode(c);
    const meta = n.domains.find((x) => x.name === 'meta')!;
    expect(meta.state).toBe('preempted');
    // Truthful release: a frozen group without swap gives back no memory; the CPU shares dropped.
    expect(meta.last_release).toMatchObject({ mode: 'pause', memory_released_bytes: '0', cpu_weight_after: 2 });
    await until(
      async () => (await getNode(c)).domains.find((x) => x.name === 'meta')?.observed?.power === 'paused',
      'observed paused',
    );
    expect((await getNode(c)).domains.find((x) => x.name === 'meta')!.observed!.drift).toBe(false);

    await unary(c, c.EndJob, { domain: 'priv', job_id: 'prio.1' });
    expect(statesOf(await getNode(c)).meta).toBe('running-preemptible');
    expect(await cpuOver('meta', 400)).toBeGreaterThan(100);
    await unary(c, c.EndJob, { domain: 'meta', job_id: 'batch.1' });
  });

  test('throttle mode: the preempted tree keeps running with minimal CPU shares (observed throttled, no drift)', async () => {
    await unary(c, c.StartJob, { domain: 'egee', job_id: 'grid.1', preemptible: true });
    await unary(c, c.StartJob, { domain: 'priv', job_id: 'prio.t' });
    const n = await getNode(c);
    expect(n.domains.find((x) => x.name === 'egee')!.last_release).toMatchObject({
      mode: 'throttle',
      cpu_weight_before: 1024,
      cpu_weight_after: 2,
    });
    expect(Number(fs.readFileSync(path.join(MOUNT, 'cpu', root, 'egee', 'cpu.shares'), 'utf8'))).toBe(2);
    expect(fs.readFileSync(path.join(MOUNT, 'freezer', root, 'egee', 'freezer.state'), 'utf8').trim()).toBe('THAWED');
    await until(
      async () => (await getNode(c)).domains.find((x) => x.name === 'egee')?.observed?.power === 'throttled',
      'observed throttled',
    );
    expect((await getNode(c)).domains.find((x) => x.name === 'egee')!.observed!.drift).toBe(false);
    await unary(c, c.EndJob, { domain: 'priv', job_id: 'prio.t' });
    expect(Number(fs.readFileSync(path.join(MOUNT, 'cpu', root, 'egee', 'cpu.shares'), 'utf8'))).toBe(1024);
    await unary(c, c.EndJob, { domain: 'egee', job_id: 'grid.1' });
  });

  test('freeze (save to disk) is refused: the cgroup driver cannot save a domain here', async () => {
    await unary(c, c.StartJob, { domain: 'priv', job_id: 'prio.2' });
    const err = await unary(c, c.DomainAction, { domain: 'priv', action: 'freeze' }).catch((e: grpc.ServiceError) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.FAILED_PRECONDITION);
    expect((err as grpc.ServiceError).metadata.get('magrathea-reason')).toEqual(['unsupported']);
    expect(statesOf(await getNode(c)).priv).toBe('running-priority');
    await unary(c, c.EndJob, { domain: 'priv', job_id: 'prio.2' });
  });

  test('a tree killed behind the daemon’s back: the domain goes down at the next reconciliation, its jobs reported lost', async () => {
    await unary(c, c.StartJob, { domain: 'meta', job_id: 'doomed.1', preemptible: true });
    const pids = fs
      .readFileSync(path.join(MOUNT, 'freezer', root, 'meta', 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
    for (const p of pids) process.kill(p, 'SIGKILL');
    await until(async () => ['down', 'down-bootable'].includes(statesOf(await getNode(c)).meta ?? ''), 'meta down');
    const meta = (await getNode(c)).domains.find((x) => x.name === 'meta')!;
    expect(meta.jobs).toEqual([]);
    expect(meta.down_reason).toMatch(/vanished/);
    expect(d.logs.some((l) => l.msg === 'job lost: its domain vanished' && l.jobId === 'doomed.1')).toBe(true);
    expect(statesOf(await getNode(c)).priv).toBe('free');
  }, 20_000);
});

maybe('cgroup driver: a CPU cap left in a domain group by an earlier run (real cgroups)', () => {
  test('exclusive mode on a fresh state directory takes it off, whether the domain is booted or found running', async () => {
    const root = `magrathea-leftcap-${process.pid}-${Date.now() % 100000}`;
    const dir = tmpDir('mg-cg-cap-');
    const g = (ctl: string, dom: string) => path.join(MOUNT, ctl, root, dom);
    const quota = (dom: string) => Number(fs.readFileSync(path.join(g('cpu', dom), 'cpu.cfs_quota_us'), 'utf8'));
    // A mom already running in its groups (adopted), as an earlier run in CPU-counting mode left it: capped at 1 CPU.
    const mom = spawn('/bin/sh', ['-c', 'while :; do sleep 1; done'], { detached: true, stdio: 'ignore' });
    let d: DaemonProcess | undefined;
    let c: NodeServiceClient | undefined;
    try {
      for (const dom of ['meta', 'egee']) {
        for (const ctl of CGROUP_CONTROLLERS) fs.mkdirSync(g(ctl, dom), { recursive: true });
        fs.writeFileSync(path.join(g('cpu', dom), 'cpu.cfs_quota_us'), '100000');
      }
      for (const ctl of CGROUP_CONTROLLERS)
        fs.writeFileSync(path.join(g(ctl, 'egee'), 'cgroup.procs'), String(mom.pid));
      expect([quota('meta'), quota('egee')]).toEqual([100000, 100000]);
      d = await spawnDaemon({
        stateDir: path.join(dir, 'state'),
        config: `
driver: { kind: cgroup, cgroup: { root: ${root}, stopTimeoutMs: 2000 } }
domains:
  - { name: meta, class: normal, command: ${BURN} }
  - { name: egee, class: normal, command: ${BURN} }
`,
      });
      const client = nodeClient(d.admin);
      c = client;
      await waitFor(async () => {
        const s = statesOf(await getNode(client));
        return s.meta === 'free' && s.egee === 'free';
      }, 'domains booted');
      expect([quota('meta'), quota('egee')]).toEqual([-1, -1]);
      // The adopted one is the mom found running, not a second tree.
      expect(fs.readFileSync(path.join(g('freezer', 'egee'), 'cgroup.procs'), 'utf8').trim()).toBe(String(mom.pid));
    } finally {
      c?.close();
      await d?.stop();
      mom.kill('SIGKILL');
      await removeCgroupDomains(root, ['meta', 'egee']);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
