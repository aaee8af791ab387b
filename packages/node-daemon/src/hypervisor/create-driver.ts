/** Builds the configured driver. Real drivers (cgroup, qemu, libvirt) plug in here. */
import type { HypervisorDriver } from './hypervisor-driver';
import type { SimulatedDriverOptions } from './simulated/simulated-driver';
import { SimulatedDriver } from './simulated/simulated-driver';

export const DRIVER_KINDS = ['simulated'] as const;
export type DriverKind = (typeof DRIVER_KINDS)[number];

export interface DriverConfig {
  readonly kind: DriverKind;
  readonly simulated: SimulatedDriverOptions;
}

export function createDriver(config: DriverConfig): HypervisorDriver {
  switch (config.kind) {
    case 'simulated':
      return new SimulatedDriver(config.simulated);
  }
}
