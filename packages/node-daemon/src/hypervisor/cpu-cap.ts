/** The CPU cap of CPU-counting mode on a v1 cpu cgroup (the cgroup driver's domain groups, QEMU's group). */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * CFS bandwidth of a v1 cpu group: `cpus` CPUs of time per period (null: no limit). The quota
 * is at least 1000 µs (the kernel's least).
 */
export function writeCpuCap(cpuDir: string, cpus: number | null): void {
  const quota =
    cpus === null
      ? -1
      : Math.max(1000, Math.round(cpus * Number(fs.readFileSync(path.join(cpuDir, 'cpu.cfs_period_us'), 'utf8'))));
  fs.writeFileSync(path.join(cpuDir, 'cpu.cfs_quota_us'), String(quota));
}

/** The CPU cap of a v1 cpu group, CPUs (0: none). */
export function readCpuCap(cpuDir: string): number {
  const quota = Number(fs.readFileSync(path.join(cpuDir, 'cpu.cfs_quota_us'), 'utf8'));
  if (!(quota > 0)) return 0;
  return quota / Number(fs.readFileSync(path.join(cpuDir, 'cpu.cfs_period_us'), 'utf8'));
}
