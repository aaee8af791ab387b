/** Config checks the drivers share: cpu.shares of a domain's three postures, cgroup names. */
import type { ConfigChecker, ConfigObject as Obj } from '@magrathea/common';

/** The cpu.shares keys of a driver section. */
export const SHARE_KEYS = ['activeShares', 'idleShares', 'preemptedShares'] as const;

/** A cgroup (subtree) name. */
export const CGROUP_NAME = { pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, patternText: 'a cgroup name' } as const;

/** cpu.shares of a running, idle and preempted domain (every real driver has them). */
export function checkShares(c: ConfigChecker, o: Obj | null, at: string): Record<(typeof SHARE_KEYS)[number], number> {
  return {
    activeShares: c.int(o, 'activeShares', at, 2, 262144) ?? 1024,
    idleShares: c.int(o, 'idleShares', at, 2, 262144) ?? 64,
    preemptedShares: c.int(o, 'preemptedShares', at, 2, 262144) ?? 2,
  };
}

/** A configured domain, as the drivers' cross-checks see it. */
export interface DomainUse {
  readonly name: string;
  readonly command: readonly string[];
  readonly preemption: string;
  readonly vm: unknown;
  readonly libvirtName: string | null;
}
