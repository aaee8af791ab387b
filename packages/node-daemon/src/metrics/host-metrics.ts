/**
 * Host metrics for GetNode, sampled and cached (sampling is not free). On Linux they are read
 * from /proc/meminfo and the kernel's load averages, which is where systeminformation reads them
 * there; systeminformation itself (23 modules, several MB of the daemon's idle footprint, issue
 * 15) is loaded only on a host without /proc/meminfo, on the first sample.
 */
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import type * as SystemInformationModule from 'systeminformation';
import type { HostSample } from '../engine/view';
import type { Clock } from '../engine/domain-manager';
import { meminfoBytes } from '../hypervisor/meminfo';

export interface HostMetrics {
  /** The last sample, or null before the first one. */
  latest(): HostSample | null;
  /** Takes a new sample. */
  refresh(): Promise<HostSample>;
}

/** Total and available memory of a /proc/meminfo text (bytes); null without MemTotal. */
export function meminfoMemory(text: string): { total: number; available: number } | null {
  const total = meminfoBytes(text, 'MemTotal');
  if (total === null) return null;
  const free = meminfoBytes(text, 'MemFree') ?? 0;
  const cache = (meminfoBytes(text, 'Buffers') ?? 0) + (meminfoBytes(text, 'Cached') ?? 0);
  // Kernels before 3.14 have no MemAvailable: free plus buffers and page cache.
  const available = meminfoBytes(text, 'MemAvailable') ?? free + cache;
  return { total, available };
}

/** The highest of the 1, 5 and 15 minute load averages per CPU, two decimals (systeminformation's avgLoad). */
export function loadPerCpu(loadavg: readonly number[], cpus: number): number {
  return Number((Math.max(...loadavg) / Math.max(1, cpus)).toFixed(2));
}

export class SystemInformationMetrics implements HostMetrics {
  private sample: HostSample | null = null;
  /** Loaded on the first sample of a host without /proc/meminfo. */
  private si: typeof SystemInformationModule | null = null;

  constructor(
    private readonly clock: Clock,
    private readonly meminfoPath = '/proc/meminfo',
  ) {}

  latest(): HostSample | null {
    return this.sample;
  }

  async refresh(): Promise<HostSample> {
    const proc = this.si ? null : await fsp.readFile(this.meminfoPath, 'utf8').catch(() => null);
    const mem = proc === null ? null : meminfoMemory(proc);
    if (mem) {
      const cpus = os.cpus().length;
      this.sample = {
        memoryTotalBytes: mem.total,
        memoryAvailableBytes: mem.available,
        load1: loadPerCpu(os.loadavg(), cpus),
        cpus,
        sampledAtMs: this.clock.now(),
      };
      return this.sample;
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
    this.si ??= require('systeminformation') as typeof SystemInformationModule;
    const [m, load] = await Promise.all([this.si.mem(), this.si.currentLoad()]);
    this.sample = {
      memoryTotalBytes: m.total,
      memoryAvailableBytes: m.available,
      load1: load.avgLoad,
      cpus: load.cpus.length,
      sampledAtMs: this.clock.now(),
    };
    return this.sample;
  }
}
