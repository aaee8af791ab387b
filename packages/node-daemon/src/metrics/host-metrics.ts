/** Host metrics for GetNode, sampled with systeminformation and cached (sampling is not free). */
import * as si from 'systeminformation';
import type { HostSample } from '../engine/view';
import type { Clock } from '../engine/domain-manager';

export interface HostMetrics {
  /** The last sample, or null before the first one. */
  latest(): HostSample | null;
  /** Takes a new sample. */
  refresh(): Promise<HostSample>;
}

export class SystemInformationMetrics implements HostMetrics {
  private sample: HostSample | null = null;

  constructor(private readonly clock: Clock) {}

  latest(): HostSample | null {
    return this.sample;
  }

  async refresh(): Promise<HostSample> {
    const [mem, load] = await Promise.all([si.mem(), si.currentLoad()]);
    this.sample = {
      memoryTotalBytes: mem.total,
      memoryAvailableBytes: mem.available,
      load1: load.avgLoad,
      cpus: load.cpus.length,
      sampledAtMs: this.clock.now(),
    };
    return this.sample;
  }
}
