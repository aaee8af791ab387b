/**
 * Partial preemption with real processes in real cgroups (v1 freezer, cpu, cpuacct, memory)
 * through a real magrathead in CPU-counting mode on a 2-CPU node: two 1-CPU batch jobs in one
 * domain; a 1-CPU priority job stops exactly one of them (its own frozen group's CPU time stops,
 * the domain's keeps growing: the other job runs on) and it is resumed when the priority job
 * ends. Each domain's CFS quota follows the CPUs its running jobs hold (the idle floor: 1 CPU).
 * The jobs' processes carry PBS_JOBID and sit in the domain's groups, as when pbs_mom
 * inside the domain starts them. Needs root and the v1 hierarchies; elsewhere it says why it skips.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import { getNode, nodeClient, spawnDaemon, statesOf, tmpDir, unary, until } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';
import { CGROUP_CONTROLLERS, CGROUP_MOUNT, cgroupsWritable } from '../helpers/cgroups';

const MOUNT = CGROUP_MOUNT;
const CONTROLLERS = CGROUP_CONTROLLERS;
const available = cgroupsWritable('cgroup partial-preemption tests');
const maybe = available ? describe : describe.skip;

/** The mom stand-in of each domain: alive, nearly idle. */
const IDLE = '["/bin/sh", "-c", "while :; do sleep 1; done"]';

maybe('partial preemption in real cgroups (CPU-counting mode)', () => {
  const root = `magrathea-partial-${process.pid}-${Date.now() % 100000}`;
  let dir: string;
  let d: DaemonProcess | undefined;
  let c: NodeServiceClient | undefined;
  const jobs: ChildProcess[] = [];
  const group = (ctl: string, ...sub: string[]) => path.join(MOUNT, ctl, root, ...sub);
  const cpuNs = (...sub: string[]) =>
    Number(fs.readFileSync(path.join(group('cpuacct', ...sub), 'cpuacct.usage'), 'utf8'));
  /** CPU ms used by the group over `ms` of wall time. */
  const cpuOver = async (ms: number, ...groups: string[][]) => {
    const a = groups.map((g) => cpuNs(...g));
    await new Promise((r) => setTimeout(r, ms));
    return groups.map((g, i) => (cpuNs(...g) - (a[i] as number)) / 1e6);
  };

  /** The domain's CPU cap in CPUs, from its cpu group's CFS quota and period (-1: none). */
  const capOf = (domain: string) => {
    const q = Number(fs.readFileSync(path.join(group('cpu', domain), 'cpu.cfs_quota_us'), 'utf8'));
    return q < 0 ? -1 : q / Number(fs.readFileSync(path.join(group('cpu', domain), 'cpu.cfs_period_us'), 'utf8'));
  };

  /** A batch job's process as pbs_mom in the domain would start it: PBS_JOBID set, in the domain's groups. */
  const startJobProcess = (domain: string, jobId: string): ChildProcess => {
    const p = spawn('/bin/sh', ['-c', 'while :; do :; done'], {
      env: { ...process.env, PBS_JOBID: jobId },
      detached: true,
      stdio: 'ignore',
    });
    jobs.push(p);
    for (const ctl of CONTROLLERS) fs.writeFileSync(path.join(group(ctl, domain), 'cgroup.procs'), String(p.pid));
    return p;
  };

  beforeAll(async () => {
    dir = tmpDir('mg-cgp-');
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `
driver: { kind: cgroup, cgroup: { root: ${root}, stopTimeoutMs: 2000 } }
cpuCounting: { cpus: 2 }
reconcileCron: "*/2 * * * * *"
domains:
  - { name: meta, class: normal, command: ${IDLE} }
  - { name: priv, class: priority, command: ${IDLE} }
`,
    });
    c = nodeClient(d.admin);
    const client = c;
    await until(async () => {
      const s = statesOf(await getNode(client));
      return s.meta === 'free' && s.priv === 'free';
    }, 'domains booted');
  }, 30_000);

  afterAll(async () => {
    // Whatever a failed test left: thaw every group (a frozen v1 task defers SIGKILL), kill our processes.
    for (const dom of ['meta', 'priv']) {
      for (const g of [group('freezer', dom), ...subgroups(group('freezer', dom))]) {
        try {
          fs.writeFileSync(path.join(g, 'freezer.state'), 'THAWED');
        } catch {
          // gone
        }
      }
    }
    for (const p of jobs) {
      try {
        process.kill(p.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (c) {
      const client = c;
      for (const dom of ['priv', 'meta'])
        for (const j of (await getNode(client).catch(() => null))?.domains.find((x) => x.name === dom)?.jobs ?? [])
          await unary(client, client.EndJob, { domain: dom, job_id: j.id }).catch(() => undefined);
      for (const dom of ['meta', 'priv'])
        await unary(client, client.DomainAction, { domain: dom, action: 'down' }).catch(() => undefined);
      client.close();
    }
    await d?.stop();
    for (const dom of ['meta', 'priv']) {
      const g = group('freezer', dom);
      for (const sub of [...subgroups(g), g]) {
        try {
          for (const p of fs.readFileSync(path.join(sub, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean))
            process.kill(Number(p), 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const ctl of CONTROLLERS) {
      for (const dom of ['meta', 'priv']) {
        for (const p of [...subgroups(group(ctl, dom)), group(ctl, dom)]) {
          try {
            fs.rmdirSync(p);
          } catch {
            // already gone
          }
        }
      }
      try {
        fs.rmdirSync(group(ctl));
      } catch {
        // already gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  test('a 1-CPU priority job stops exactly one of two 1-CPU batch jobs; the other runs on; it resumes at the end', async () => {
    const client = c!;
    // Booted and idle: both at the floor.
    expect([capOf('meta'), capOf('priv')]).toEqual([1, 1]);
    startJobProcess('meta', 'b1.pbs');
    startJobProcess('meta', 'b2.pbs');
    await unary(client, client.StartJob, { domain: 'meta', job_id: 'b1.pbs', preemptible: true, cpus: 1 });
    expect(capOf('meta')).toBe(1);
    await unary(client, client.StartJob, { domain: 'meta', job_id: 'b2.pbs', preemptible: true, cpus: 1 });
    expect(capOf('meta')).toBe(2);
    // Both burn (the domain's CPU time grows by well over one CPU's share of the wait, on a loaded machine too).
    const [both] = await cpuOver(500, ['meta']);
    expect(both).toBeGreaterThan(100);

    const r = await unary<object, { suspended_jobs: { domain: string; job_id: string }[]; phases: { name: string }[] }>(
      client,
      client.StartJob,
      { domain: 'priv', job_id: 'p1.pbs', cpus: 1 },
    );
    expect(r.suspended_jobs).toHaveLength(1);
    const victim = r.suspended_jobs[0]!.job_id;
    const other = victim === 'b1.pbs' ? 'b2.pbs' : 'b1.pbs';
    // The victim stops, then meta's cap goes down to the one job left; priv's floor already is 1 CPU.
    expect(r.phases.map((p) => p.name)).toEqual(['stop-jobs:meta', 'cap-cpus:meta', 'grow:priv']);
    expect([capOf('meta'), capOf('priv')]).toEqual([1, 1]);
    const vg = `job.${victim}`;
    expect(fs.readFileSync(path.join(group('freezer', 'meta', vg), 'freezer.state'), 'utf8').trim()).toBe('FROZEN');
    // The victim's process is in its frozen group; the other job's is still right in the domain's.
    const victimPids = fs.readFileSync(path.join(group('freezer', 'meta', vg), 'cgroup.procs'), 'utf8').trim();
    expect(victimPids).not.toBe('');
    expect(fs.existsSync(group('freezer', 'meta', `job.${other}`))).toBe(false);

    const [victimMs, domainMs] = await cpuOver(500, ['meta', vg], ['meta']);
    expect(victimMs).toBeLessThan(5);
    expect(domainMs! - victimMs!).toBeGreaterThan(100);

    const n = await getNode(client);
    const meta = n.domains.find((x) => x.name === 'meta')!;
    expect(meta.state).toBe('running-preemptible');
    expect(Object.fromEntries(meta.jobs.map((j) => [j.id, j.suspended]))).toEqual({ [victim]: true, [other]: false });
    // The domain itself is not stopped: no drift at the next reconciliation.
    expect(meta.observed?.drift ?? false).toBe(false);
    await until(async () => {
      const o = (await getNode(client)).domains.find((x) => x.name === 'meta')?.observed;
      return o !== null && o !== undefined && o.cpu_cap === 1;
    }, 'the observation shows the cap');

    const e = await unary<object, { resumed_jobs: { domain: string; job_id: string }[] }>(client, client.EndJob, {
      domain: 'priv',
      job_id: 'p1.pbs',
    });
    expect(e.resumed_jobs).toEqual([{ domain: 'meta', job_id: victim }]);
    expect(fs.readFileSync(path.join(group('freezer', 'meta', vg), 'freezer.state'), 'utf8').trim()).toBe('THAWED');
    expect(capOf('meta')).toBe(2);
    const [resumedMs] = await cpuOver(500, ['meta', vg]);
    expect(resumedMs).toBeGreaterThan(50);
    await unary(client, client.EndJob, { domain: 'meta', job_id: 'b1.pbs' });
    await unary(client, client.EndJob, { domain: 'meta', job_id: 'b2.pbs' });
    expect(capOf('meta')).toBe(1);
  }, 60_000);
});

function subgroups(g: string): string[] {
  try {
    return fs
      .readdirSync(g, { withFileTypes: true })
      .filter((e) => e.isDirectory() && e.name.startsWith('job.'))
      .map((e) => path.join(g, e.name));
  } catch {
    return [];
  }
}
