/**
 * Builds the configured driver. Only the configured driver's modules are loaded (on the call,
 * with `require`): a daemon never compiles nor holds the code of the drivers it does not use
 * (QEMU with its QMP client, reclaim and guest agent; libvirt's virsh session; cgroups), which
 * is part of its idle footprint (BENCHMARKS.md, issue 15). test/integration/lazy-modules.test.ts
 * fails if one of them is imported eagerly again; import only types of them at the top.
 */
import type { CgroupDriverOptions } from './cgroup/cgroup-driver';
import type { HypervisorDriver, Signaller } from './hypervisor-driver';
import type { PreemptionMode } from './preemption';
import type { LibvirtDriverOptions } from './libvirt/libvirt-driver';
import type { AccelFacts } from './qemu/accel';
import type { QemuVmConfig } from './qemu/qemu-driver';
import type { QemuConfig } from './qemu/qemu-config';
import type { SimulatedDriverOptions } from './simulated/simulated-driver';
import type * as SimulatedModule from './simulated/simulated-driver';
import type * as CgroupModule from './cgroup/cgroup-driver';
import type * as QemuModule from './qemu/qemu-driver';
import type * as AccelModule from './qemu/accel';
import type * as LibvirtModule from './libvirt/libvirt-driver';
import type { VmDisks, VmLifecycleDisks } from './vm-disks';

export const DRIVER_KINDS = ['simulated', 'cgroup', 'qemu', 'libvirt'] as const;
export { PREEMPTION_MODES } from './preemption';
export type { PreemptionMode } from './preemption';
export type DriverKind = (typeof DRIVER_KINDS)[number];

export interface DriverConfig {
  readonly kind: DriverKind;
  readonly simulated: SimulatedDriverOptions;
  /** Options of the cgroup driver (without the per-domain commands, which come from domains[]). */
  readonly cgroup: Omit<CgroupDriverOptions, 'commands' | 'modes'>;
  /** Options of the qemu driver (without the per-domain VMs, which come from domains[]). */
  readonly qemu: QemuConfig;
  /** Options of the libvirt driver (without the per-domain names and modes). */
  readonly libvirt: Omit<LibvirtDriverOptions, 'names' | 'modes' | 'disks'>;
}

export interface DriverEnv {
  /** Per-domain commands (the cgroup driver). */
  readonly commands: Readonly<Record<string, readonly string[]>>;
  /** Per-domain preemption modes. */
  readonly modes: Readonly<Record<string, PreemptionMode>>;
  /** Per-domain VMs (the qemu driver). */
  readonly vms: Readonly<Record<string, QemuVmConfig>>;
  /** libvirt domain name of each domain (the libvirt driver). */
  readonly libvirtNames: Readonly<Record<string, string>>;
  readonly signaller: Signaller;
  /** Host facts for choosing QEMU's accelerator (read by the caller). */
  readonly accelFacts: () => AccelFacts;
  /** Disks of image-based domains (the qemu and libvirt drivers), or null. */
  readonly disks?: VmDisks | null;
  /** Domains that reset after each job (domains[].lifecycle revert/reboot; the qemu driver). */
  readonly lifecycles?: Readonly<Record<string, 'revert' | 'reboot'>>;
  /** Their golden and kept overlays (image-based domains), or null. */
  readonly lifecycleDisks?: VmLifecycleDisks | null;
}

/* eslint-disable @typescript-eslint/no-require-imports -- loaded on use, see the file's comment */
export function createDriver(config: DriverConfig, env: DriverEnv): HypervisorDriver {
  switch (config.kind) {
    case 'simulated': {
      const { SimulatedDriver } = require('./simulated/simulated-driver') as typeof SimulatedModule;
      return new SimulatedDriver(config.simulated);
    }
    case 'cgroup': {
      const { CgroupDriver } = require('./cgroup/cgroup-driver') as typeof CgroupModule;
      return new CgroupDriver(
        {
          ...config.cgroup,
          commands: env.commands,
          // The config loader refuses `save` for cgroup domains.
          modes: Object.fromEntries(
            Object.entries(env.modes).map(([d, m]) => [d, m === 'pause' || m === 'reclaim' ? m : 'throttle']),
          ),
        },
        env.signaller,
      );
    }
    case 'qemu': {
      const { QemuDriver } = require('./qemu/qemu-driver') as typeof QemuModule;
      const { chooseAccel } = require('./qemu/accel') as typeof AccelModule;
      return new QemuDriver(
        {
          ...config.qemu,
          accel: chooseAccel(config.qemu.accel, env.accelFacts()),
          vms: env.vms,
          modes: env.modes,
          disks: env.disks ?? null,
          lifecycles: env.lifecycles ?? {},
          lifecycleDisks: env.lifecycleDisks ?? null,
        },
        env.signaller,
      );
    }
    case 'libvirt': {
      const { LibvirtDriver } = require('./libvirt/libvirt-driver') as typeof LibvirtModule;
      return new LibvirtDriver({
        ...config.libvirt,
        names: env.libvirtNames,
        modes: env.modes,
        disks: env.disks ?? null,
      });
    }
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */
