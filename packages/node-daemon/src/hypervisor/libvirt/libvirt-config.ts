/** Config checks of the `libvirt` driver: `driver.libvirt`, and each domain's `libvirtName`. */
import * as path from 'node:path';
import type { ConfigChecker, ConfigObject as Obj } from '@magrathea/common';
import type { DomainUse } from '../driver-config';
import { checkShares, SHARE_KEYS } from '../driver-config';
import type { LibvirtDriverOptions } from './libvirt-driver';

/** `driver.libvirt` (the per-domain names and modes come from `domains[]`). */
export function checkLibvirt(
  c: ConfigChecker,
  v: unknown,
  stateDir: string,
  baseDir: string,
): Omit<LibvirtDriverOptions, 'names' | 'modes' | 'disks'> {
  const at = 'driver.libvirt';
  const o = c.object(v, at, [
    'virsh',
    'uri',
    'runDir',
    'weightParam',
    'quotaParam',
    ...SHARE_KEYS,
    'preemptedMemoryMiB',
    'balloonMarginMiB',
    'commandTimeoutMs',
    'bootTimeoutMs',
    'shutdownTimeoutMs',
  ]);
  const runDir = c.path(o, 'runDir', at);
  return {
    virsh: c.path(o, 'virsh', at) ?? 'virsh',
    uri: c.string(o, 'uri', at, { pattern: /^[a-z+]+:\/\/[^\s']*$/, patternText: 'a libvirt URI' }) ?? 'qemu:///system',
    runDir: runDir ? path.resolve(baseDir, runDir) : path.join(stateDir, 'libvirt'),
    weightParam:
      c.string(o, 'weightParam', at, { pattern: /^[a-z_]+$/, patternText: 'a scheduler parameter name' }) ??
      'cpu_shares',
    quotaParam:
      o && o.quotaParam === ''
        ? ''
        : (c.string(o, 'quotaParam', at, {
            pattern: /^[a-z_]+_quota$/,
            patternText: "a scheduler parameter name ending in _quota, or '' for no CPU cap",
          }) ?? 'global_quota'),
    ...checkShares(c, o, at),
    preemptedMemoryMiB: c.int(o, 'preemptedMemoryMiB', at, 0, 4_194_304) ?? 0,
    balloonMarginMiB: c.int(o, 'balloonMarginMiB', at, 0, 1_048_576) ?? 32,
    commandTimeoutMs: c.int(o, 'commandTimeoutMs', at, 50, 600_000) ?? 30_000,
    bootTimeoutMs: c.int(o, 'bootTimeoutMs', at, 100, 3_600_000) ?? 120_000,
    shutdownTimeoutMs: c.int(o, 'shutdownTimeoutMs', at, 0, 600_000) ?? 30_000,
  };
}

/** A domain's `libvirtName` (the libvirt domain behind it), or null. */
export function checkLibvirtName(c: ConfigChecker, o: Obj, p: string): string | null {
  return (
    c.string(o, 'libvirtName', p, { pattern: /^[A-Za-z0-9_.:+-]{1,200}$/, patternText: 'a libvirt domain name' }) ??
    null
  );
}

/** With another driver, a domain may not name a libvirt domain. */
export function checkLibvirtNameUse(c: ConfigChecker, kind: string, d: DomainUse, i: number): void {
  if (kind !== 'libvirt' && d.libvirtName !== null)
    c.fail(`domains.${i}.libvirtName`, `is only for the libvirt driver (driver.kind is ${kind})`);
  if (kind === 'libvirt' && d.preemption === 'reclaim')
    c.fail(
      `domains.${i}.preemption`,
      'reclaim is implemented by the qemu driver only (libvirt would need its agent channel and setmem loop); use throttle, pause or save',
    );
}
