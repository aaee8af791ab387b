/**
 * Partial preemption inside a real QEMU guest (TCG) through its guest agent: a daemon in
 * CPU-counting mode on a 2-CPU node runs two 1-CPU batch jobs in one guest, each in its own guest
 * cgroup `/sys/fs/cgroup/jobs/<job id>` (where pbs_mom's cgroup hook would put it). A 1-CPU
 * priority job stops exactly one of them (its counter stops, the other's goes on, the guest
 * itself keeps running) and it is continued when the priority job ends. The batch QEMU's CFS
 * quota follows the CPUs its running jobs hold.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import { GuestAgent } from '../../packages/node-daemon/src/hypervisor/guest-agent';
import { GUEST, hasQemuGuest } from '../helpers/guest';
import { getNode, nodeClient, spawnDaemon, statesOf, tmpDir, unary, until } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const AGENT_MS = 30_000;
const runnable = hasQemuGuest() && fs.existsSync('/sys/fs/cgroup/cpu');
if (!runnable) {
  if (process.env.MAGRATHEA_REQUIRE_QEMU === '1') throw new Error('QEMU partial-preemption tests required');
  process.stdout.write('QEMU partial-preemption tests skipped: QEMU, the test guest or cgroup v1 cpu is missing\n');
}
const maybe = runnable ? describe : describe.skip;

/** A job in the guest: its own cgroup, a counter it bumps every 200 ms. */
const startJob = (id: string) =>
  [
    `mkdir -p /sys/fs/cgroup/jobs/${id}`,
    `setsid sh -c 'echo $$ > /sys/fs/cgroup/jobs/${id}/cgroup.procs; n=0; while true; do n=$((n+1)); echo $n > /tmp/${id}.count; sleep 0.2; done' </dev/null >/dev/null 2>&1 &`,
    'echo started',
  ].join('\n');

maybe('partial preemption in a QEMU guest through its agent (CPU-counting mode)', () => {
  const dir = tmpDir('mg-qpp-');
  const runDir = path.join(dir, 'run');
  const cpuRoot = `mg-qpp16-${process.pid}`;
  let d: DaemonProcess | undefined;
  let c: NodeServiceClient | undefined;

  const sh = async (script: string): Promise<string> => {
    const a = await GuestAgent.connect(path.join(runDir, 'batch.ga'), AGENT_MS);
    try {
      const r = await a.exec(script, AGENT_MS);
      if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${r.output}`);
      return r.output;
    } finally {
      a.close();
    }
  };
  const counts = async (): Promise<Record<string, number>> => {
    const out = await sh('for j in b1 b2; do echo "$j $(cat /tmp/$j.count)"; done');
    return Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .map(([j, n]) => [j, Number(n)]),
    );
  };
  /** How far each counter moved over `ms`. */
  const movedOver = async (ms: number) => {
    const a = await counts();
    await new Promise((r) => setTimeout(r, ms));
    const b = await counts();
    return { b1: b.b1! - a.b1!, b2: b.b2! - a.b2! };
  };
  const capOf = (dom: string) => {
    const g = path.join('/sys/fs/cgroup/cpu', cpuRoot, dom);
    const q = Number(fs.readFileSync(path.join(g, 'cpu.cfs_quota_us'), 'utf8'));
    return q < 0 ? -1 : q / Number(fs.readFileSync(path.join(g, 'cpu.cfs_period_us'), 'utf8'));
  };

  beforeAll(async () => {
    const vm = (more: string) =>
      `vm: { kernel: ${GUEST}/vmlinux, initrd: ${GUEST}/initrd.cpio.gz, memoryMiB: 192, readyLine: MAGRATHEA-GUEST-READY${more} }`;
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `
driver:
  kind: qemu
  qemu: { accel: tcg, runDir: ${runDir}, cgroup: { root: ${cpuRoot} }, qmpTimeoutMs: 15000, agentTimeoutMs: ${AGENT_MS}, powerdownTimeoutMs: 3000 }
cpuCounting: { cpus: 2 }
domains:
  - { name: batch, class: normal, preemption: pause, ${vm(', guestAgent: true')} }
  - { name: prio, class: priority, preemption: pause, ${vm('')} }
`,
    });
    c = nodeClient(d.admin);
    const client = c;
    await until(
      async () => {
        const s = statesOf(await getNode(client));
        return s.batch === 'free' && s.prio === 'free';
      },
      'both guests booted',
      240_000,
      500,
    );
  }, 300_000);

  afterAll(async () => {
    c?.close();
    await d?.stop();
    for (const dom of ['batch', 'prio']) {
      try {
        process.kill(Number(fs.readFileSync(path.join(runDir, `${dom}.pid`), 'utf8').trim()), 'SIGKILL');
      } catch {
        // not running
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const x of ['batch', 'prio', ''])
      try {
        fs.rmdirSync(path.join('/sys/fs/cgroup/cpu', cpuRoot, x));
      } catch {
        // already gone
      }
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  test('a 1-CPU priority job stops exactly one of two jobs in the guest; the other runs on; it continues at the end', async () => {
    const client = c!;
    expect([capOf('batch'), capOf('prio')]).toEqual([1, 1]);
    for (const j of ['b1', 'b2']) {
      expect((await sh(startJob(j))).trim()).toBe('started');
      await unary(client, client.StartJob, { domain: 'batch', job_id: j, preemptible: true, cpus: 1 });
    }
    expect(capOf('batch')).toBe(2);
    await until(async () => {
      const m = await movedOver(1500);
      return m.b1 > 0 && m.b2 > 0;
    }, 'both counters move');

    const r = await unary<object, { suspended_jobs: { domain: string; job_id: string }[]; phases: { name: string }[] }>(
      client,
      client.StartJob,
      { domain: 'prio', job_id: 'p1', cpus: 1 },
      120_000,
    );
    expect(r.suspended_jobs).toHaveLength(1);
    const victim = r.suspended_jobs[0]!.job_id as 'b1' | 'b2';
    const other = victim === 'b1' ? 'b2' : 'b1';
    // Not the whole guest: its jobs alone, then its cap down to the job left.
    expect(r.phases.map((p) => p.name)).toEqual(['stop-jobs:batch', 'cap-cpus:batch', 'grow:prio']);
    expect(capOf('batch')).toBe(1);
    const stopped = await movedOver(2000);
    expect(stopped[victim]).toBe(0);
    expect(stopped[other]).toBeGreaterThan(0);
    const n = await getNode(client);
    const batch = n.domains.find((x) => x.name === 'batch')!;
    expect(batch.state).toBe('running-preemptible');
    expect(Object.fromEntries(batch.jobs.map((j) => [j.id, j.suspended]))).toEqual({ [victim]: true, [other]: false });

    const e = await unary<object, { resumed_jobs: { domain: string; job_id: string }[] }>(
      client,
      client.EndJob,
      { domain: 'prio', job_id: 'p1' },
      120_000,
    );
    expect(e.resumed_jobs).toEqual([{ domain: 'batch', job_id: victim }]);
    expect(capOf('batch')).toBe(2);
    await until(async () => (await movedOver(1500))[victim] > 0, 'the continued job counts again');
    await sh('for j in b1 b2; do kill -9 $(cat /sys/fs/cgroup/jobs/$j/cgroup.procs) 2>/dev/null; done; true');
    for (const j of ['b1', 'b2']) await unary(client, client.EndJob, { domain: 'batch', job_id: j });
    expect(capOf('batch')).toBe(1);
  }, 600_000);
});
