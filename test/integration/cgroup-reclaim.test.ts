/**
 * `preemption: reclaim` with the cgroup driver: real processes in real v1 cgroups, and real
 * host swap. A batch domain's job holds 256 MiB of anonymous memory whose checksum it records;
 * a priority job preempts it. The daemon freezes the tree and lowers its memory limit step by
 * step; the kernel pushes the frozen pages to swap. Checked from outside the daemon: the
 * group's usage drops by ≥ 200 MiB, the job's own VmSwap holds them, and after resume the job
 * runs again with its data intact.
 *
 * These hosts have no swap of their own: without it the daemon must refuse a reclaim domain at
 * start with the reason (tested first). The test then turns on a swap file of its own (removed
 * in `finally`; other suites expect no swap) — skipped, with the reason, where swapon is not
 * permitted.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import { hostSwap } from '../../packages/node-daemon/src/hypervisor/cgroup/cgroup-driver';
import { CGROUP_MOUNT, cgroupsWritable, removeCgroupDomains } from '../helpers/cgroups';
import {
  DAEMON_BIN,
  getNode,
  nodeClient,
  runToExit,
  spawnDaemon,
  statesOf,
  tmpDir,
  unary,
  until,
} from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const MiB = 1024 * 1024;
const HOLD_MIB = 256;
const SWAP_MIB = 512;
const swapAtStart = hostSwap(fs.readFileSync('/proc/meminfo', 'utf8')).totalBytes;
const available = cgroupsWritable('cgroup reclaim tests');
const maybe = available ? describe : describe.skip;

/**
 * The job: fills HOLD_MIB of anonymous memory with a pattern, writes its md5 to `sum`; on
 * SIGUSR1 recomputes it into `check` (so the data is read back after the resume).
 */
const JOB = (dir: string) =>
  JSON.stringify([
    process.execPath,
    '-e',
    `const fs = require('fs'), c = require('crypto');
const b = Buffer.allocUnsafe(${HOLD_MIB} * 1048576);
let x = 2463534242;
for (let i = 0; i < b.length; i += 4) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b.writeUInt32LE(x >>> 0, i); }
const md5 = () => c.createHash('md5').update(b).digest('hex');
fs.writeFileSync(${JSON.stringify(path.join(dir, 'sum'))}, md5());
process.on('SIGUSR1', () => fs.writeFileSync(${JSON.stringify(path.join(dir, 'check'))}, md5()));
setInterval(() => {}, 1000);`,
  ]);
const BURN = '["/bin/sh", "-c", "while :; do sleep 1; done"]';

const config = (root: string, dir: string) => `
driver: { kind: cgroup, cgroup: { root: ${root}, stopTimeoutMs: 2000, preemptedMemoryBytes: ${32 * MiB}, reclaimDeadlineMs: 120000 } }
reconcileCron: "*/1 * * * * *"
domains:
  - { name: batch, class: normal, command: ${JOB(dir)}, preemption: reclaim }
  - { name: prio, class: priority, command: ${BURN} }
`;

const read = (root: string, c: string, dom: string, f: string) =>
  fs.readFileSync(path.join(CGROUP_MOUNT, c, root, dom, f), 'utf8').trim();

maybe('preemption: reclaim with the cgroup driver (real cgroups, real host swap)', () => {
  (swapAtStart === 0 ? test : test.skip)(
    'without host swap the daemon refuses a reclaim domain at start, with the reason',
    async () => {
      const dir = tmpDir('mg-cgrc-');
      const root = `magrathea-cgrc-${process.pid}-a`;
      try {
        const cfg = path.join(dir, 'c.yaml');
        fs.writeFileSync(cfg, config(root, dir));
        const r = await runToExit(
          [
            DAEMON_BIN,
            '--state-dir',
            path.join(dir, 'state'),
            '--listen',
            '127.0.0.1:0',
            '--socket',
            path.join(dir, 'd.sock'),
            '--config',
            cfg,
          ],
          30_000,
        );
        expect(r.code).not.toBe(0);
        expect(r.stdout + r.stderr).toMatch(/reclaim needs swap on the host \(SwapTotal is 0/);
        // Nothing was started.
        expect(fs.existsSync(path.join(dir, 'sum'))).toBe(false);
      } finally {
        await removeCgroupDomains(root, ['batch', 'prio']);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );

  test('reclaim: the frozen job is swapped out (≥ 200 MiB), then continues with its data intact (2 rounds)', async () => {
    const dir = tmpDir('mg-cgrc-');
    const root = `magrathea-cgrc-${process.pid}-b`;
    const swapFile = path.join(dir, 'swap');
    let swapOn = false;
    let d: DaemonProcess | null = null;
    let c: NodeServiceClient | null = null;
    try {
      if (swapAtStart === 0) {
        execFileSync('dd', ['if=/dev/zero', `of=${swapFile}`, 'bs=1M', `count=${SWAP_MIB}`], { stdio: 'ignore' });
        fs.chmodSync(swapFile, 0o600);
        execFileSync('mkswap', [swapFile], { stdio: 'ignore' });
        try {
          execFileSync('swapon', [swapFile], { stdio: 'pipe' });
          swapOn = true;
        } catch (err) {
          process.stdout.write(
            `cgroup reclaim test skipped: swapon is not permitted here (${(err as Error).message})\n`,
          );
          return;
        }
      }
      d = await spawnDaemon({ stateDir: path.join(dir, 'state'), config: config(root, dir) });
      c = nodeClient(d.admin);
      const cl = c;
      await until(async () => {
        const s = statesOf(await getNode(cl));
        return s.batch === 'free' && s.prio === 'free';
      }, 'domains booted');
      await until(() => fs.existsSync(path.join(dir, 'sum')), 'the job filled its memory', 120_000);
      const sum = fs.readFileSync(path.join(dir, 'sum'), 'utf8');
      const pid = Number(
        read(root, 'freezer', 'batch', 'cgroup.procs')
          .split('\n')
          .find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('createHash')),
      );
      const vmSwap = () =>
        Number(/^VmSwap:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
      await unary(c, c.StartJob, { domain: 'batch', job_id: 'b1', preemptible: true });
      for (let round = 1; round <= 2; round++) {
        const before = Number(read(root, 'memory', 'batch', 'memory.usage_in_bytes'));
        const r = await unary<object, { preempted: string[] }>(
          c,
          c.StartJob,
          { domain: 'prio', job_id: `p${round}` },
          300_000,
        );
        expect(r.preempted).toEqual(['batch']);
        const after = Number(read(root, 'memory', 'batch', 'memory.usage_in_bytes'));
        const rel = (await getNode(c)).domains.find((x) => x.name === 'batch')!.last_release!;
        process.stdout.write(
          `cgroup reclaim round ${round}: usage ${(before / MiB).toFixed(0)} -> ${(after / MiB).toFixed(0)} MiB, job VmSwap ${(vmSwap() / MiB).toFixed(0)} MiB; reported ${(Number(rel.memory_released_bytes) / MiB).toFixed(0)} MiB, ${rel.outcome}, steps ${rel.steps.map((s) => `${s.name}:${s.millis.toFixed(0)}ms`).join(' ')}\n`,
        );
        expect(rel).toMatchObject({ mode: 'reclaim', outcome: 'reached', reason: '' });
        expect(before - after).toBeGreaterThanOrEqual(200 * MiB);
        expect(Number(rel.memory_released_bytes)).toBeGreaterThanOrEqual(200 * MiB);
        expect(vmSwap()).toBeGreaterThanOrEqual(200 * MiB);
        expect(read(root, 'freezer', 'batch', 'freezer.state')).toBe('FROZEN');
        await unary(c, c.EndJob, { domain: 'prio', job_id: `p${round}` }, 300_000);
        expect(statesOf(await getNode(c)).batch).toBe('running-preemptible');
        expect(read(root, 'freezer', 'batch', 'freezer.state')).toBe('THAWED');
        fs.rmSync(path.join(dir, 'check'), { force: true });
        process.kill(pid, 'SIGUSR1');
        await until(() => fs.existsSync(path.join(dir, 'check')), 'the job read its data back', 120_000);
        await until(() => fs.readFileSync(path.join(dir, 'check'), 'utf8').length === 32, 'checksum written', 10_000);
        expect(fs.readFileSync(path.join(dir, 'check'), 'utf8')).toBe(sum);
      }
    } finally {
      c?.close();
      await d?.stop();
      await removeCgroupDomains(root, ['batch', 'prio']);
      if (swapOn) execFileSync('swapoff', [swapFile], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
