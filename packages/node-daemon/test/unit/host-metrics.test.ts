/**
 * Host metrics without systeminformation on Linux (issue 15, the daemon's idle footprint): the
 * /proc/meminfo reading agrees with systeminformation's on this host, and a host without
 * /proc/meminfo falls back to systeminformation.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import * as si from 'systeminformation';
import { loadPerCpu, meminfoMemory, SystemInformationMetrics } from '../../src/metrics/host-metrics';

const clock = { now: () => 1234 };
const kb = fc.integer({ min: 0, max: 2 ** 36 });

describe('meminfoMemory', () => {
  test('total and available in bytes; without MemAvailable, free + buffers + cache; without MemTotal, null', () => {
    fc.assert(
      fc.property(kb, kb, kb, kb, fc.option(kb, { nil: null }), (total, free, buffers, cached, avail) => {
        const text = [
          `MemTotal:       ${total} kB`,
          `MemFree:        ${free} kB`,
          ...(avail === null ? [] : [`MemAvailable:   ${avail} kB`]),
          `Buffers:        ${buffers} kB`,
          `Cached:         ${cached} kB`,
          'SwapCached:            0 kB',
          '',
        ].join('\n');
        expect(meminfoMemory(text)).toEqual({
          total: total * 1024,
          available: (avail ?? free + buffers + cached) * 1024,
        });
        expect(meminfoMemory(text.replace(/^MemTotal:.*$/m, ''))).toBeNull();
      }),
    );
  });
});

describe('loadPerCpu', () => {
  test('the highest load average per CPU, two decimals', () => {
    const load = fc.double({ min: 0, max: 1000, noNaN: true });
    fc.assert(
      fc.property(fc.tuple(load, load, load), fc.integer({ min: 1, max: 4096 }), (avg, cpus) => {
        const r = loadPerCpu(avg, cpus);
        expect(Math.abs(r - Math.max(...avg) / cpus)).toBeLessThanOrEqual(0.005 + 1e-9);
        expect(Number(r.toFixed(2))).toBe(r);
      }),
    );
  });
});

describe('SystemInformationMetrics', () => {
  test('on this host, /proc/meminfo gives what systeminformation gives', async () => {
    const m = new SystemInformationMetrics(clock);
    expect(m.latest()).toBeNull();
    const s = await m.refresh();
    const [mem, load] = await Promise.all([si.mem(), si.currentLoad()]);
    expect(s.memoryTotalBytes).toBe(mem.total);
    expect(s.cpus).toBe(load.cpus.length);
    expect(s.cpus).toBe(os.cpus().length);
    expect(s.sampledAtMs).toBe(1234);
    expect(m.latest()).toBe(s);
  });

  test('without /proc/meminfo, the sample comes from systeminformation', async () => {
    const m = new SystemInformationMetrics(clock, path.join(os.tmpdir(), 'mg15-no-such-meminfo'));
    const s = await m.refresh();
    expect(s.memoryTotalBytes).toBe((await si.mem()).total);
    expect(s.memoryAvailableBytes).toBeGreaterThan(0);
    expect(s.cpus).toBe(os.cpus().length);
  });
});
