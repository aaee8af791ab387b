/**
 * Config checks of a domain's per-job lifecycle (`domains[].lifecycle`, `domains[].keepFailed`)
 * and of waking it on demand (`domains[].wakeOnDemand`, `idleShutdownMs`, `bootBackoffMs`).
 */
import type { ConfigChecker, ConfigObject as Obj } from '@magrathea/common';
import type { Lifecycle } from '../domain';

export const LIFECYCLES = ['persistent', 'revert', 'reboot'] as const satisfies readonly Lifecycle[];

export interface LifecycleConfig {
  /** persistent (default: the VM lives across jobs), revert (clean disk and golden memory state after each job), reboot (clean disk and a cold boot after each job). */
  readonly lifecycle: Lifecycle;
  /** Overlays of the last N failed jobs kept for debugging (0: none). Default 0. */
  readonly keepFailed: number;
  /** The filter may boot the domain when a queued job asks for its image. Default false. */
  readonly wakeOnDemand: boolean;
  /** A domain up this long with no job is taken down (0: never). Default 0. */
  readonly idleShutdownMs: number;
  /** After a failed boot the domain is not offered for a wake-up for this long. Default 60000. */
  readonly bootBackoffMs: number;
}

/** The lifecycle and wake-up fields of one domain. */
export function checkLifecycle(c: ConfigChecker, o: Obj, at: string): LifecycleConfig {
  return {
    lifecycle: c.oneOf(o, 'lifecycle', at, LIFECYCLES) ?? 'persistent',
    keepFailed: c.int(o, 'keepFailed', at, 0, 1000) ?? 0,
    wakeOnDemand: c.bool(o, 'wakeOnDemand', at) ?? false,
    idleShutdownMs: c.int(o, 'idleShutdownMs', at, 0, 30 * 86_400_000) ?? 0,
    bootBackoffMs: c.int(o, 'bootBackoffMs', at, 0, 86_400_000) ?? 60_000,
  };
}

/** A per-job lifecycle needs the qemu driver, and a clean disk to go back to. */
export function checkLifecycleUse(
  c: ConfigChecker,
  kind: string,
  d: LifecycleConfig & { readonly image: string; readonly vm: { readonly disk: string | null } | null },
  i: number,
  hasCatalogue: boolean,
): void {
  const at = `domains.${i}`;
  if (d.lifecycle !== 'persistent' && kind !== 'qemu')
    c.fail(`${at}.lifecycle`, `${d.lifecycle} needs the qemu driver (this node uses ${kind})`);
  if (d.lifecycle !== 'persistent' && d.vm?.disk)
    c.fail(
      `${at}.lifecycle`,
      `${d.lifecycle} cannot make vm.disk clean again; give the domain a catalogue image (its disk is an overlay)`,
    );
  if (d.wakeOnDemand && d.image === '')
    c.fail(`${at}.wakeOnDemand`, 'a domain is woken for the image a job asks for: it needs domains[].image');
  if (d.keepFailed > 0 && d.lifecycle === 'persistent')
    c.fail(`${at}.keepFailed`, 'keeps overlays across resets: it needs lifecycle revert or reboot');
  else if (d.keepFailed > 0 && (d.image === '' || !hasCatalogue))
    c.fail(`${at}.keepFailed`, 'keeps the overlays of failed jobs: the domain needs a catalogue image');
}
