/** Config checks of the `cgroup` driver: `driver.cgroup`, and each domain's `command`. */
import type { ConfigChecker, ConfigObject as Obj } from '@magrathea/common';
import type { DomainUse } from '../driver-config';
import { CGROUP_NAME, checkShares, SHARE_KEYS } from '../driver-config';
import type { CgroupDriverOptions } from './cgroup-driver';

/** `driver.cgroup` (the per-domain commands and modes come from `domains[]`). */
export function checkCgroup(c: ConfigChecker, v: unknown): Omit<CgroupDriverOptions, 'commands' | 'modes'> {
  const at = 'driver.cgroup';
  const cg = c.object(v, at, [
    'mount',
    'root',
    ...SHARE_KEYS,
    'preemptedMemoryBytes',
    'stopTimeoutMs',
    'reclaimDeadlineMs',
    'reclaimStepMiB',
  ]);
  return {
    mount: c.string(cg, 'mount', at) ?? '/sys/fs/cgroup',
    root: c.string(cg, 'root', at, CGROUP_NAME) ?? 'magrathea',
    ...checkShares(c, cg, at),
    preemptedMemoryBytes: c.int(cg, 'preemptedMemoryBytes', at, 4096, Number.MAX_SAFE_INTEGER) ?? 64 * 1024 * 1024,
    stopTimeoutMs: c.int(cg, 'stopTimeoutMs', at, 0, 600_000) ?? 5000,
    reclaimDeadlineMs: c.int(cg, 'reclaimDeadlineMs', at, 100, 3_600_000) ?? 60_000,
    reclaimStepBytes: (c.int(cg, 'reclaimStepMiB', at, 1, 1_048_576) ?? 64) * 1024 * 1024,
  };
}

/** A domain's `command` (argv of its process tree); empty when not given. */
export function checkCommand(c: ConfigChecker, o: Obj, p: string): string[] {
  if (o.command === undefined || o.command === null) return [];
  if (
    !Array.isArray(o.command) ||
    o.command.length === 0 ||
    !o.command.every((x) => typeof x === 'string' && x.length > 0)
  ) {
    c.fail(`${p}.command`, 'must be a non-empty list of strings (argv)');
    return [];
  }
  return o.command as string[];
}

/** With another driver, a domain may not have a command. */
export function checkCommandUse(c: ConfigChecker, kind: string, d: DomainUse, i: number): void {
  if (kind !== 'cgroup' && d.command.length > 0)
    c.fail(`domains.${i}.command`, 'is only for the cgroup driver (driver.kind is ' + kind + ')');
}

/** With the cgroup driver: every domain has a command, and none is preempted by saving. */
export function checkCgroupDomains(c: ConfigChecker, domains: readonly DomainUse[]): void {
  domains.forEach((d, i) => {
    if (d.command.length === 0)
      c.fail(`domains.${i}.command`, 'is required with the cgroup driver (the process tree of the domain)');
    if (d.preemption === 'save') {
      c.fail(
        `domains.${i}.preemption`,
        'save is not possible with the cgroup driver here (CRIU does not work on this kernel); use throttle or pause',
      );
    }
  });
}
