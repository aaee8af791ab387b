/** `cpuCounting`: the opt-in CPU-counting mode of a node (absent: exclusive mode, the default). */
import type { ConfigChecker } from '@magrathea/common';
import { MAX_CPUS } from '../engine/validate';

export interface CpuCountingConfig {
  /** The node's CPUs that jobs may hold in all. Default: the host's CPUs. */
  readonly cpus: number;
}

export function checkCpuCounting(c: ConfigChecker, v: unknown, hostCpus: number): CpuCountingConfig | null {
  if (v === undefined || v === null || v === false) return null;
  const o = c.object(v === true ? {} : v, 'cpuCounting', ['cpus']);
  if (!o) return null;
  return { cpus: c.int(o, 'cpus', 'cpuCounting', 1, MAX_CPUS) ?? hostCpus };
}
