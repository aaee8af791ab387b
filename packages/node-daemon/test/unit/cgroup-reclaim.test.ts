/**
 * The cgroup driver's reclaim on a fake cgroup tree (a directory of plain files): what it does
 * when the kernel would not behave as it does on the real thing (the real behaviour is in
 * test/integration/cgroup-reclaim.test.ts): no host swap, a limit that does not lower usage.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CgroupDriver, hostSwap } from '../../src/hypervisor/cgroup/cgroup-driver';

const MiB = 1024 * 1024;
const MEMINFO = (swapKb: number) =>
  `MemTotal:       24683520 kB\nSwapTotal:      ${swapKb} kB\nSwapFree:       ${swapKb} kB\n`;

function fakeTree(): string {
  const mount = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-fakecg-'));
  for (const c of ['freezer', 'cpu', 'cpuacct', 'memory'])
    fs.mkdirSync(path.join(mount, c, 'mg', 'b'), { recursive: true });
  fs.writeFileSync(path.join(mount, 'freezer/mg/b/freezer.state'), 'THAWED');
  fs.writeFileSync(path.join(mount, 'cpu/mg/b/cpu.shares'), '1024');
  fs.writeFileSync(path.join(mount, 'memory/mg/b/memory.usage_in_bytes'), String(300 * MiB));
  fs.writeFileSync(path.join(mount, 'memory/mg/b/memory.limit_in_bytes'), '-1');
  return mount;
}

const driver = (mount: string, swapKb: number) =>
  new CgroupDriver(
    {
      mount,
      root: 'mg',
      commands: { b: ['/bin/true'] },
      modes: { b: 'reclaim' },
      activeShares: 1024,
      idleShares: 64,
      preemptedShares: 2,
      preemptedMemoryBytes: 32 * MiB,
      stopTimeoutMs: 1000,
      reclaimDeadlineMs: 10_000,
      reclaimStepBytes: 64 * MiB,
      meminfo: () => MEMINFO(swapKb),
    },
    () => undefined,
  );

describe('cgroup driver reclaim (fake tree)', () => {
  test('hostSwap reads SwapTotal and SwapFree; absent fields are 0', () => {
    expect(hostSwap(MEMINFO(1024))).toEqual({ totalBytes: 1024 * 1024, freeBytes: 1024 * 1024 });
    expect(hostSwap('MemTotal: 1 kB\n')).toEqual({ totalBytes: 0, freeBytes: 0 });
  });

  test('without host swap, start refuses and names the domains', async () => {
    const mount = fakeTree();
    try {
      await expect(driver(mount, 0).start([])).rejects.toThrow(
        /reclaim needs swap on the host.*use throttle or pause for b/,
      );
    } finally {
      fs.rmSync(mount, { recursive: true, force: true });
    }
  });

  test('a limit the usage does not follow ends the reclaim as kept, with the reason, at once', async () => {
    const mount = fakeTree();
    try {
      const d = driver(mount, 1024 * 1024);
      await d.start([]);
      const m = await d.preempt('b');
      expect(m).toMatchObject({ mode: 'reclaim', outcome: 'kept', memoryReleasedBytes: 0, cpuWeightAfter: 2 });
      expect(m.reason).toBe("memory.limit_in_bytes took 236 MiB but the group's usage stays at 300 MiB");
      expect(fs.readFileSync(path.join(mount, 'freezer/mg/b/freezer.state'), 'utf8')).toBe('FROZEN');
      await d.resume('b');
      expect(fs.readFileSync(path.join(mount, 'memory/mg/b/memory.limit_in_bytes'), 'utf8')).toBe('-1');
      expect(fs.readFileSync(path.join(mount, 'freezer/mg/b/freezer.state'), 'utf8')).toBe('THAWED');
    } finally {
      fs.rmSync(mount, { recursive: true, force: true });
    }
  });
});
