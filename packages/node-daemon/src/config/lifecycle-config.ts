/** Config checks of a domain's per-job lifecycle: `domains[].lifecycle` and `domains[].keepFailed`. */
import type { ConfigChecker, ConfigObject as Obj } from '@magrathea/common';
import type { Lifecycle } from '../domain';

export const LIFECYCLES = ['persistent', 'revert', 'reboot'] as const satisfies readonly Lifecycle[];

export interface LifecycleConfig {
  /** persistent (default: the VM lives across jobs), revert (clean disk and golden memory state after each job), reboot (clean disk and a cold boot after each job). */
  readonly lifecycle: Lifecycle;
  /** Overlays of the last N failed jobs kept for debugging (0: none). Default 0. */
  readonly keepFailed: number;
}

/** The two fields of one domain. */
export function checkLifecycle(c: ConfigChecker, o: Obj, at: string): LifecycleConfig {
  return {
    lifecycle: c.oneOf(o, 'lifecycle', at, LIFECYCLES) ?? 'persistent',
    keepFailed: c.int(o, 'keepFailed', at, 0, 1000) ?? 0,
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
  if (d.keepFailed > 0 && d.lifecycle === 'persistent')
    c.fail(`${at}.keepFailed`, 'keeps overlays across resets: it needs lifecycle revert or reboot');
  else if (d.keepFailed > 0 && (d.image === '' || !hasCatalogue))
    c.fail(`${at}.keepFailed`, 'keeps the overlays of failed jobs: the domain needs a catalogue image');
}
