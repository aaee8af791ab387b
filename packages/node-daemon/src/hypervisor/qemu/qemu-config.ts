/** Config checks of the `qemu` driver: `driver.qemu`, and each domain's `vm`. */
import * as path from 'node:path';
import type { ConfigChecker } from '@magrathea/common';
import type { DomainUse } from '../driver-config';
import { CGROUP_NAME, checkShares, SHARE_KEYS } from '../driver-config';
import { selectorProblem } from '../guest-agent/guest-commands';
import type { QemuDriverOptions, QemuVmConfig } from './qemu-driver';

/** `driver.qemu` as configured (the per-domain VMs and modes come from `domains[]`; `auto` is resolved at start). */
export type QemuConfig = Omit<QemuDriverOptions, 'vms' | 'modes' | 'accel'> & {
  readonly accel: 'auto' | 'kvm' | 'tcg';
};

/** `driver.qemu`. */
export function checkQemu(c: ConfigChecker, v: unknown, stateDir: string, baseDir: string): QemuConfig {
  const at = 'driver.qemu';
  const q = c.object(v, at, [
    'binary',
    'accel',
    'runDir',
    'cgroup',
    ...SHARE_KEYS,
    'qmpTimeoutMs',
    'bootTimeoutMs',
    'powerdownTimeoutMs',
    'saveTimeoutMs',
    'balloonSettleMs',
    'balloonMarginMiB',
    ...RECLAIM_KEYS,
    'reclaimStepMiB',
    'reclaimStallMs',
    'agentTimeoutMs',
    'swapOffTimeoutMs',
  ]);
  let cgroup: QemuConfig['cgroup'] = { mount: '/sys/fs/cgroup', root: 'magrathea' };
  if (q && q.cgroup === false) cgroup = null;
  else if (q && q.cgroup !== undefined && q.cgroup !== null) {
    const cg = c.object(q.cgroup, `${at}.cgroup`, ['mount', 'root']);
    cgroup = {
      mount: c.string(cg, 'mount', `${at}.cgroup`) ?? '/sys/fs/cgroup',
      root: c.string(cg, 'root', `${at}.cgroup`, CGROUP_NAME) ?? 'magrathea',
    };
  }
  const runDirText = c.path(q, 'runDir', at);
  const runDir = runDirText ? path.resolve(baseDir, runDirText) : path.join(stateDir, 'qemu');
  return {
    binary: c.path(q, 'binary', at) ?? 'qemu-system-x86_64',
    accel: c.oneOf(q, 'accel', at, ['auto', 'kvm', 'tcg'] as const) ?? 'auto',
    runDir,
    cgroup,
    ...checkShares(c, q, at),
    qmpTimeoutMs: c.int(q, 'qmpTimeoutMs', at, 50, 600_000) ?? 5000,
    bootTimeoutMs: c.int(q, 'bootTimeoutMs', at, 100, 3_600_000) ?? 120_000,
    powerdownTimeoutMs: c.int(q, 'powerdownTimeoutMs', at, 0, 600_000) ?? 10_000,
    saveTimeoutMs: c.int(q, 'saveTimeoutMs', at, 100, 3_600_000) ?? 120_000,
    balloonSettleMs: c.int(q, 'balloonSettleMs', at, 0, 60_000) ?? 2000,
    balloonMarginMiB: c.int(q, 'balloonMarginMiB', at, 0, 1_048_576) ?? 32,
    reclaimDeadlineMs: c.int(q, 'reclaimDeadlineMs', at, 100, 3_600_000) ?? 120_000,
    onShortfall: c.oneOf(q, 'onShortfall', at, SHORTFALL_ACTIONS) ?? 'save',
    reclaimStepMiB: c.int(q, 'reclaimStepMiB', at, 1, 1_048_576) ?? 64,
    reclaimStallMs: c.int(q, 'reclaimStallMs', at, 100, 600_000) ?? 5000,
    agentTimeoutMs: c.int(q, 'agentTimeoutMs', at, 50, 600_000) ?? 10_000,
    swapOffTimeoutMs: c.int(q, 'swapOffTimeoutMs', at, 100, 3_600_000) ?? 600_000,
  };
}

/** The reclaim keys a domain's `vm` may override. */
const RECLAIM_KEYS = ['reclaimDeadlineMs', 'onShortfall'] as const;
export const SHORTFALL_ACTIONS = ['save', 'keep'] as const;

/** A domain's `vm` (what QEMU boots), or null when it is unusable. */
export function checkVm(c: ConfigChecker, v: unknown, at: string, baseDir: string): QemuVmConfig | null {
  const o = c.object(v, at, [
    'kernel',
    'initrd',
    'append',
    'disk',
    'memoryMiB',
    'idleMemoryMiB',
    'preemptedMemoryMiB',
    'cpus',
    'readyLine',
    'extraArgs',
    'guestAgent',
    'swapMiB',
    'jobsCgroup',
    ...RECLAIM_KEYS,
  ]);
  if (!o) return null;
  const kernel = c.path(o, 'kernel', at);
  if (o.kernel === undefined) c.fail(`${at}.kernel`, 'is required (path of the guest kernel)');
  const initrd = c.path(o, 'initrd', at);
  const disk = c.path(o, 'disk', at);
  const memoryMiB = c.int(o, 'memoryMiB', at, 96, 4_194_304) ?? 256;
  const idleMemoryMiB = c.int(o, 'idleMemoryMiB', at, 1, 4_194_304) ?? null;
  const preemptedMemoryMiB = c.int(o, 'preemptedMemoryMiB', at, 0, 4_194_304) ?? 0;
  if (idleMemoryMiB !== null && idleMemoryMiB > memoryMiB) c.fail(`${at}.idleMemoryMiB`, 'must not exceed memoryMiB');
  let extraArgs: string[] = [];
  if (o.extraArgs !== undefined && o.extraArgs !== null) {
    if (!Array.isArray(o.extraArgs) || !o.extraArgs.every((x) => typeof x === 'string'))
      c.fail(`${at}.extraArgs`, 'must be a list of strings');
    else extraArgs = o.extraArgs;
  }
  const jobsCgroup = c.string(o, 'jobsCgroup', at) ?? '/sys/fs/cgroup/jobs';
  const why = selectorProblem({ cgroup: jobsCgroup });
  if (why) c.fail(`${at}.jobsCgroup`, why);
  if (!kernel) return null;
  return {
    kernel: path.resolve(baseDir, kernel),
    initrd: initrd ? path.resolve(baseDir, initrd) : null,
    append: c.string(o, 'append', at) ?? 'console=ttyS0 quiet panic=-1',
    disk: disk ? path.resolve(baseDir, disk) : null,
    memoryMiB,
    idleMemoryMiB,
    preemptedMemoryMiB,
    cpus: c.int(o, 'cpus', at, 1, 256) ?? 1,
    readyLine: c.string(o, 'readyLine', at) ?? null,
    extraArgs,
    guestAgent: c.bool(o, 'guestAgent', at) ?? null,
    swapMiB: c.int(o, 'swapMiB', at, 0, 4_194_304) ?? 0,
    jobsCgroup,
    reclaimDeadlineMs: c.int(o, 'reclaimDeadlineMs', at, 100, 3_600_000) ?? null,
    onShortfall: c.oneOf(o, 'onShortfall', at, SHORTFALL_ACTIONS) ?? null,
  };
}

/** With another driver a domain may not have a VM; with qemu each needs one, and throttling needs the cgroup. */
export function checkVmUse(c: ConfigChecker, kind: string, d: DomainUse, i: number, qemu: QemuConfig): void {
  if (kind !== 'qemu' && d.vm !== null)
    c.fail(`domains.${i}.vm`, `is only for the qemu driver (driver.kind is ${kind})`);
  if (kind !== 'qemu') return;
  const qmpSocket = path.join(qemu.runDir, `${d.name}.qmp`);
  if (Buffer.byteLength(qmpSocket) > 107)
    c.fail('driver.qemu.runDir', `the QMP socket path ${qmpSocket} is longer than the 107 bytes a Unix socket allows`);
  if (d.vm === null) c.fail(`domains.${i}.vm`, 'is required with the qemu driver (kernel, memoryMiB, ...)');
  const vm = d.vm as QemuVmConfig | null;
  if (d.preemption === 'reclaim' && vm?.guestAgent === false)
    c.fail(
      `domains.${i}.vm.guestAgent`,
      'reclaim stops the jobs and turns swap on through the guest agent; leave guestAgent on (or use throttle, pause or save)',
    );
  if (d.preemption !== 'reclaim' && vm && (vm.reclaimDeadlineMs !== null || vm.onShortfall !== null))
    c.fail(
      `domains.${i}.vm`,
      `reclaimDeadlineMs and onShortfall apply to preemption: reclaim (this domain uses ${d.preemption})`,
    );
  if (d.preemption === 'throttle' && qemu.cgroup === null)
    c.fail(
      `domains.${i}.preemption`,
      'throttle needs driver.qemu.cgroup (the CPU weight of the VM); use pause or save, or configure the cgroup',
    );
}
