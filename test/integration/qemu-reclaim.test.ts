/**
 * `preemption: reclaim` with real QEMU guests (TCG) under memory pressure that is real: the
 * daemon and its two QEMUs run inside a cgroup v1 memory group whose limit stands for the
 * node's RAM (the host has no swap, so what does not fit is killed by the kernel).
 *
 * A 512 MiB batch guest runs a job holding 300 MiB of tmpfs data whose checksum it records; a
 * priority job then fills 400 MiB in the priority guest. With `throttle` the kernel kills
 * something (the memory group's oom_kill count goes up). With `reclaim` nothing is killed, the
 * batch QEMU's resident memory drops by at least 250 MiB (read from /proc, not from the daemon),
 * the job's processes are stopped while preempted, and after resume they run again and the
 * checksum matches. MAGRATHEA_RECLAIM_RUNS (default 2) preemption rounds are run.
 *
 * cgroup v1 traps on this host (reference/hypervisors.md §3): the group is made inside this
 * process's own memory group (never at the root), and hierarchy accounting is checked (a limit
 * on a parent counts its children only with memory.use_hierarchy = 1).
 */
import { FILL_BATCH } from '../../bench/guest-fill';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import { GuestAgent } from '../../packages/node-daemon/src/hypervisor/guest-agent';
import { GUEST, hasQemuGuest } from '../helpers/guest';
import { getNode, nodeClient, spawnDaemon, statesOf, tmpDir, unary, until } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const MiB = 1024 * 1024;
/** The node's RAM for this test: both QEMUs (about 160 MiB of their own each) and the daemon. */
const NODE_RAM_MIB = Number(process.env.MAGRATHEA_RECLAIM_NODE_MIB ?? 900);
const RUNS = Number(process.env.MAGRATHEA_RECLAIM_RUNS ?? 2);
const AGENT_MS = 30_000;

/** This process's own memory cgroup (v1), or null when there is none to nest a group in. */
function ownMemoryCgroup(): string | null {
  try {
    const line = fs
      .readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => /^\d+:memory:/.test(l));
    if (!line) return null;
    const dir = path.join('/sys/fs/cgroup/memory', line.split(':')[2]!);
    fs.accessSync(dir, fs.constants.W_OK);
    return fs.readFileSync(path.join(dir, 'memory.use_hierarchy'), 'utf8').trim() === '1' ? dir : null;
  } catch {
    return null;
  }
}

const memcgParent = ownMemoryCgroup();
const runnable = hasQemuGuest() && memcgParent !== null && fs.existsSync('/sys/fs/cgroup/cpu');
if (!runnable) {
  const why = hasQemuGuest()
    ? 'no writable cgroup v1 memory group with hierarchy'
    : 'QEMU or the test guest is missing';
  if (process.env.MAGRATHEA_REQUIRE_QEMU === '1') throw new Error(`reclaim tests required but ${why}`);
  process.stdout.write(`reclaim tests skipped: ${why}\n`);
}
const maybe = runnable ? describe : describe.skip;

const rssMiB = (pid: number): number => {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};

/** A node of two guests in its own memory group, run by a daemon started inside it. */
class Node {
  dir = tmpDir('mg-rc-');
  runDir = path.join(this.dir, 'run');
  memcg = path.join(
    memcgParent ?? '/nonexistent',
    `mg-reclaim-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  );
  cpuRoot = `mg-reclaim-${process.pid}`;
  d: DaemonProcess | null = null;
  c: NodeServiceClient | null = null;

  async start(batchMode: string, extra = ''): Promise<void> {
    fs.mkdirSync(this.memcg);
    fs.writeFileSync(path.join(this.memcg, 'memory.limit_in_bytes'), String(NODE_RAM_MIB * MiB));
    // Joins the daemon to the group before it starts anything: its QEMUs are born inside.
    const preload = path.join(this.dir, 'join-memcg.js');
    fs.writeFileSync(
      preload,
      `require('fs').writeFileSync(${JSON.stringify(path.join(this.memcg, 'cgroup.procs'))}, String(process.pid));\n`,
    );
    const vm = (mem: number, more: string) =>
      `vm: { kernel: ${GUEST}/vmlinux, initrd: ${GUEST}/initrd.cpio.gz, memoryMiB: ${mem}, readyLine: MAGRATHEA-GUEST-READY, guestAgent: true, ${more} }`;
    this.d = await spawnDaemon({
      stateDir: path.join(this.dir, 'state'),
      nodeArgs: ['--require', preload],
      config: `
driver:
  kind: qemu
  qemu: { accel: tcg, runDir: ${this.runDir}, cgroup: { root: ${this.cpuRoot} }, qmpTimeoutMs: 15000, agentTimeoutMs: ${AGENT_MS}, reclaimDeadlineMs: 300000, reclaimStallMs: 20000, powerdownTimeoutMs: 3000 }
reconcileCron: "*/5 * * * * *"
domains:
  - { name: batch, class: normal, preemption: ${batchMode}, ${vm(512, `swapMiB: 512, preemptedMemoryMiB: 96${extra}`)} }
  - { name: prio, class: priority, preemption: pause, ${vm(512, 'idleMemoryMiB: 128')} }
`,
    });
    this.c = nodeClient(this.d.admin);
    await until(
      async () => {
        const s = statesOf(await getNode(this.c!));
        return s.batch === 'free' && s.prio === 'free';
      },
      'both guests booted',
      240_000,
      500,
    );
  }

  pid(dom: string): number {
    return Number(fs.readFileSync(path.join(this.runDir, `${dom}.pid`), 'utf8').trim());
  }

  oomKills(): number {
    const m = /^oom_kill (\d+)$/m.exec(fs.readFileSync(path.join(this.memcg, 'memory.oom_control'), 'utf8'));
    return m ? Number(m[1]) : 0;
  }

  /** Runs a script in a guest through its agent (the daemon uses the channel only while it preempts or resumes). */
  async sh(dom: string, script: string, ms = 600_000): Promise<string> {
    const a = await GuestAgent.connect(path.join(this.runDir, `${dom}.ga`), AGENT_MS);
    try {
      const r = await a.exec(script, ms);
      if (r.exitCode !== 0) throw new Error(`in ${dom}: exit ${r.exitCode}: ${r.output}`);
      return r.output;
    } finally {
      a.close();
    }
  }

  async release(dom: string) {
    return (await getNode(this.c!)).domains.find((x) => x.name === dom)!.last_release!;
  }

  async stop(): Promise<void> {
    this.c?.close();
    await this.d?.stop();
    for (const dom of ['batch', 'prio']) {
      try {
        process.kill(this.pid(dom), 'SIGKILL');
      } catch {
        // not running
      }
    }
    await until(
      () => {
        try {
          return fs.readFileSync(path.join(this.memcg, 'cgroup.procs'), 'utf8').trim() === '';
        } catch {
          return true;
        }
      },
      'memory group empty',
      30_000,
    ).catch(() => undefined);
    for (const d of [this.memcg, ...['batch', 'prio', ''].map((x) => path.join('/sys/fs/cgroup/cpu', this.cpuRoot, x))])
      try {
        fs.rmdirSync(d);
      } catch {
        // already gone
      }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

const CHECKSUM = "md5sum /fill/data | cut -d' ' -f1";
const JOB_STATES = "for p in $(cat /sys/fs/cgroup/jobs/j1/cgroup.procs); do cut -d' ' -f3 /proc/$p/stat; done";
/** The priority job: 400 MiB (written, so the priority QEMU really holds it). */
/** What the priority guest gives back when it is shrunk to its idle 128 MiB after its 400 MiB job. */
const PRIO_GIVES_BACK_MIB = 250;
const FILL_PRIO =
  'mkdir -p /fill && mount -t tmpfs -o size=460m tmpfs /fill && head -c 419430400 /dev/zero > /fill/x && echo filled';

maybe('preemption: reclaim under real memory pressure (QEMU, TCG, cgroup v1 memory)', () => {
  test('throttle: the priority job does not fit; the kernel kills something', async () => {
    const n = new Node();
    try {
      await n.start('throttle');
      await unary(n.c!, n.c!.StartJob, { domain: 'batch', job_id: 'b1', preemptible: true });
      await n.sh('batch', FILL_BATCH);
      const kills = n.oomKills();
      await unary(n.c!, n.c!.StartJob, { domain: 'prio', job_id: 'p1' }, 300_000);
      expect((await n.release('batch')).mode).toBe('throttle');
      await n.sh('prio', FILL_PRIO).catch(() => 'the priority QEMU was killed');
      await until(() => n.oomKills() > kills, 'an OOM kill in the node memory group', 120_000, 500);
    } finally {
      await n.stop();
    }
  }, 900_000);

  test(`reclaim: no OOM, the batch QEMU gives back ≥ 250 MiB, its jobs are stopped and continue, data intact (${RUNS} runs)`, async () => {
    const n = new Node();
    try {
      await n.start('reclaim');
      await unary(n.c!, n.c!.StartJob, { domain: 'batch', job_id: 'b1', preemptible: true });
      const sum = (await n.sh('batch', FILL_BATCH)).trim();
      expect(sum).toMatch(/^[0-9a-f]{32}$/);
      const kills = n.oomKills();
      for (let run = 1; run <= RUNS; run++) {
        const before = rssMiB(n.pid('batch'));
        const r = await unary<object, { preempted: string[] }>(
          n.c!,
          n.c!.StartJob,
          { domain: 'prio', job_id: `p${run}` },
          400_000,
        );
        expect(r.preempted).toEqual(['batch']);
        const after = rssMiB(n.pid('batch'));
        const rel = await n.release('batch');
        process.stdout.write(
          `reclaim run ${run}: batch RSS ${before.toFixed(0)} -> ${after.toFixed(0)} MiB; reported ${(Number(rel.memory_released_bytes) / MiB).toFixed(0)} MiB, ${rel.outcome}, steps ${rel.steps.map((s) => `${s.name}:${s.millis.toFixed(0)}ms`).join(' ')}\n`,
        );
        expect(rel).toMatchObject({ mode: 'reclaim', outcome: 'reached', reason: '' });
        expect(before - after).toBeGreaterThanOrEqual(250);
        expect(Number(rel.memory_released_bytes)).toBeGreaterThanOrEqual(250 * MiB);
        expect(rel.steps.map((s) => s.name)).toEqual(
          expect.arrayContaining(['stop-jobs', 'drop-caches', 'swap-on', 'balloon']),
        );
        // The job is stopped while preempted.
        expect((await n.sh('batch', JOB_STATES)).trim().split('\n')).toEqual(['T']);
        expect((await n.sh('prio', FILL_PRIO)).trim()).toBe('filled');
        expect(n.oomKills()).toBe(kills);
        await n.sh('prio', 'umount /fill');
        const prioFull = rssMiB(n.pid('prio'));
        await unary(n.c!, n.c!.EndJob, { domain: 'prio', job_id: `p${run}` }, 600_000);
        // The priority domain is shrunk before the batch domain is resumed, and gives the
        // memory back (not only asked to): else the batch guest's swap-in meets it still resident.
        const prioIdle = rssMiB(n.pid('prio'));
        process.stdout.write(
          `reclaim run ${run}: prio RSS after its job ${prioFull.toFixed(0)} -> ${prioIdle.toFixed(0)} MiB\n`,
        );
        expect(prioFull - prioIdle).toBeGreaterThanOrEqual(PRIO_GIVES_BACK_MIB);
        expect(statesOf(await getNode(n.c!)).batch).toBe('running-preemptible');
        expect((await n.sh('batch', JOB_STATES)).trim().split('\n')).not.toContain('T');
        expect((await n.sh('batch', 'cat /proc/swaps | wc -l')).trim()).toBe('1'); // swap off again
        expect((await n.sh('batch', CHECKSUM)).trim()).toBe(sum);
        expect(n.oomKills()).toBe(kills);
      }
    } finally {
      await n.stop();
    }
  }, 3_600_000);
});
