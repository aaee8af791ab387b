/** Builds the configured driver. */
import type { CgroupDriverOptions, Signaller } from './cgroup/cgroup-driver';
import { CgroupDriver } from './cgroup/cgroup-driver';
import type { HypervisorDriver } from './hypervisor-driver';
import type { SimulatedDriverOptions } from './simulated/simulated-driver';
import { SimulatedDriver } from './simulated/simulated-driver';

export const DRIVER_KINDS = ['simulated', 'cgroup'] as const;
export const PREEMPTION_MODES = ['throttle', 'pause', 'save'] as const;
export type PreemptionMode = (typeof PREEMPTION_MODES)[number];
export type DriverKind = (typeof DRIVER_KINDS)[number];

export interface DriverConfig {
  readonly kind: DriverKind;
  readonly simulated: SimulatedDriverOptions;
  /** Options of the cgroup driver (without the per-domain commands, which come from domains[]). */
  readonly cgroup: Omit<CgroupDriverOptions, 'commands' | 'modes'>;
}

export interface DriverEnv {
  /** Per-domain commands (the cgroup driver). */
  readonly commands: Readonly<Record<string, readonly string[]>>;
  /** Per-domain preemption modes. */
  readonly modes: Readonly<Record<string, PreemptionMode>>;
  readonly signaller: Signaller;
}

export function createDriver(config: DriverConfig, env: DriverEnv): HypervisorDriver {
  switch (config.kind) {
    case 'simulated':
      return new SimulatedDriver(config.simulated);
    case 'cgroup':
      return new CgroupDriver(
        {
          ...config.cgroup,
          commands: env.commands,
          // The config loader refuses `save` for cgroup domains.
          modes: Object.fromEntries(
            Object.entries(env.modes).map(([d, m]) => [d, m === 'pause' ? 'pause' : 'throttle']),
          ),
        },
        env.signaller,
      );
  }
}
