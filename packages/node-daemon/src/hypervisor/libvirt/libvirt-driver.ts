/**
 * The `libvirt` driver, for sites whose nodes already run libvirt: the same operations as the
 * qemu driver through `virsh` (suspend, resume, setmem, schedinfo, save, restore, domstate,
 * dommemstat), in one long-lived virsh session. Domains must be defined in libvirt beforehand
 * (`virsh define`); the daemon starts, preempts and stops them, it does not create them.
 *
 * A domain naming a catalogue image (domains[].image) gets its disks from the image layer: before
 * each boot the daemon writes the root overlay (target vda), the context disk (vdb) and the NIC
 * with the stable MAC into the persistent definition (device-xml.ts), then starts it; the rest of
 * the admin's definition (kernel, memory, other devices) is kept. A restore uses the saved
 * definition (same files); the base image is leased while the VM exists.
 *
 * Memory is lowered only as far as the guest can spare (`dommemstat`'s `usable` plus a margin)
 * and what was released is measured (`rss` before and after). A VM that dies is found by the
 * periodic reconciliation (libvirt's event stream is not used).
 *
 * CPU-counting mode caps a domain's CPU time with the scheduler parameter `quotaParam`
 * (global_quota: the whole VM's bandwidth per `global_period`), through `schedinfo --live --set`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DriverError } from '../../errors';
import type { PreemptionMode } from '../preemption';
import { ALL_CAPABILITIES } from '../hypervisor-driver';
import type { DiskUse, VmDisks } from '../vm-disks';
import { blockTargets, DISK_TARGETS, diskXml, interfaceMacs, interfaceXml } from './device-xml';
import type {
  AdoptedDomain,
  DriverCapabilities,
  HypervisorDriver,
  Observation,
  PowerState,
  ReleaseMeasurement,
} from '../hypervisor-driver';
import { VirshSession } from './virsh-session';

export interface LibvirtDriverOptions {
  /** The virsh binary. */
  readonly virsh: string;
  /** Connection URI, e.g. qemu:///system. */
  readonly uri: string;
  /** Directory for saved states. */
  readonly runDir: string;
  /** libvirt domain name of each magrathea domain. */
  readonly names: Readonly<Record<string, string>>;
  readonly modes: Readonly<Record<string, PreemptionMode>>;
  /** The scheduler parameter that weighs CPU (cpu_shares for QEMU/KVM). */
  readonly weightParam: string;
  /** The scheduler parameter of the CPU cap, µs per period (global_quota for QEMU/KVM; its period is the `_period` one). '' = no cap. */
  readonly quotaParam: string;
  readonly activeShares: number;
  readonly idleShares: number;
  readonly preemptedShares: number;
  /** Memory asked of a throttled domain, MiB (the guest's floor wins; 0 = as low as safe). */
  readonly preemptedMemoryMiB: number;
  readonly balloonMarginMiB: number;
  readonly commandTimeoutMs: number;
  readonly bootTimeoutMs: number;
  readonly shutdownTimeoutMs: number;
  /** Disks of image-based domains, or null. */
  readonly disks?: VmDisks | null;
}

const KiB = 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Parses `key value` lines (dommemstat) or `key : value` lines (schedinfo, dominfo). */
export function parsePairs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = line.includes(':') ? /^\s*([^:]+?)\s*:\s*(.*)$/.exec(line) : /^\s*(\S+)\s+(.*)$/.exec(line);
    if (m?.[1]) out[m[1].trim()] = (m[2] ?? '').trim();
  }
  return out;
}

/** Maps `domstate --reason` output to a power state. */
export function powerOf(domstate: string): PowerState {
  const s = domstate.trim().toLowerCase();
  if (s.startsWith('running')) return 'running';
  if (s.startsWith('paused') || s.startsWith('pmsuspended')) return 'paused';
  if (s.startsWith('shut off (saved)')) return 'saved';
  if (s.startsWith('shut off') || s.startsWith('crashed') || s.startsWith('in shutdown')) return 'shut-off';
  return 'unknown';
}

export class LibvirtDriver implements HypervisorDriver {
  readonly kind = 'libvirt';
  readonly capabilities: DriverCapabilities;
  private readonly session: VirshSession;
  /** Each domain's maximum memory (KiB), read from libvirt at start. */
  private readonly maxKiB = new Map<string, number>();

  constructor(private readonly opts: LibvirtDriverOptions) {
    this.session = new VirshSession(opts.virsh, opts.uri, opts.commandTimeoutMs);
    this.capabilities = { ...ALL_CAPABILITIES, 'cap-cpus': opts.quotaParam !== '' };
  }

  private name(domain: string): string {
    return this.opts.names[domain] ?? domain;
  }

  private stateFile(domain: string): string {
    return path.join(this.opts.runDir, `${domain}.state`);
  }

  private fail(op: string, domain: string, err: unknown): DriverError {
    return DriverError.wrap(this.kind, op, domain, err);
  }

  private virsh(...args: string[]): Promise<string> {
    return this.session.run(args);
  }

  private async domstate(domain: string): Promise<PowerState> {
    return powerOf(await this.virsh('domstate', this.name(domain), '--reason'));
  }

  private async memstat(domain: string): Promise<Record<string, number>> {
    const pairs = parsePairs(await this.virsh('dommemstat', this.name(domain)));
    return Object.fromEntries(Object.entries(pairs).map(([k, v]) => [k, Number(v)]));
  }

  private async setWeight(domain: string, shares: number): Promise<void> {
    await this.virsh('schedinfo', this.name(domain), '--set', `${this.opts.weightParam}=${shares}`);
  }

  private get periodParam(): string {
    return this.opts.quotaParam.replace(/_quota$/, '_period');
  }

  /** The CPU cap: quota = CPUs × the domain's period (-1: no limit, as libvirt spells it). */
  async setCpuCap(domain: string, cpus: number | null): Promise<void> {
    try {
      let quota = -1;
      if (cpus !== null) {
        const period = Number(parsePairs(await this.virsh('schedinfo', this.name(domain)))[this.periodParam]);
        if (!(period > 0)) throw new Error(`schedinfo shows no ${this.periodParam} to scale the cap by`);
        quota = Math.max(1000, Math.round(cpus * period));
      }
      await this.virsh('schedinfo', this.name(domain), '--live', '--set', `${this.opts.quotaParam}=${quota}`);
    } catch (err) {
      throw this.fail('cap-cpus', domain, err);
    }
  }

  /** The weight and the CPU cap (CPUs; 0 = none) from one schedinfo. */
  private async sched(domain: string): Promise<{ weight: number; cpuCap: number }> {
    const p = parsePairs(await this.virsh('schedinfo', this.name(domain)));
    const w = Number(p[this.opts.weightParam]);
    const quota = this.opts.quotaParam ? Number(p[this.opts.quotaParam]) : 0;
    const period = Number(p[this.periodParam]);
    return { weight: Number.isFinite(w) ? w : 0, cpuCap: quota > 0 && period > 0 ? quota / period : 0 };
  }

  private async weight(domain: string): Promise<number> {
    const v = Number(parsePairs(await this.virsh('schedinfo', this.name(domain)))[this.opts.weightParam]);
    return Number.isFinite(v) ? v : 0;
  }

  private async max(domain: string): Promise<number> {
    let m = this.maxKiB.get(domain);
    if (m === undefined) {
      m = Number(parsePairs(await this.virsh('dominfo', this.name(domain)))['Max memory']?.split(' ')[0]);
      if (!Number.isFinite(m) || m <= 0) throw new Error('cannot read the domain’s maximum memory (dominfo)');
      this.maxKiB.set(domain, m);
    }
    return m;
  }

  async start(domains: readonly AdoptedDomain[]): Promise<void> {
    fs.mkdirSync(this.opts.runDir, { recursive: true, mode: 0o700 });
    for (const d of domains) {
      try {
        await this.max(d.name);
      } catch {
        // Reported when the domain is booted or observed.
      }
      if (!this.imageBacked(d.name)) continue;
      try {
        // A VM that outlived the daemon (or its saved state) holds its base: lease it again.
        const st = await this.domstate(d.name);
        if (st === 'running' || st === 'paused' || st === 'saved' || fs.existsSync(this.stateFile(d.name)))
          await this.opts.disks?.prepare(d.name, 'adopt');
      } catch {
        // Reported when the domain is booted or observed.
      }
    }
  }

  private imageBacked(domain: string): boolean {
    return this.opts.disks?.has(domain) ?? false;
  }

  /**
   * The image layer's disks for the domain (downloaded, overlay made); for a boot they are written
   * into the persistent definition (a restore brings its own, saved with the state).
   */
  private async imageDevices(domain: string, use: DiskUse): Promise<void> {
    const disks = this.opts.disks;
    if (!disks || !this.imageBacked(domain)) return;
    let prepared: Awaited<ReturnType<VmDisks['prepare']>>;
    try {
      prepared = await disks.prepare(domain, use);
    } catch (err) {
      throw new Error(`its image: ${(err as Error).message}`);
    }
    if (use !== 'boot') return;
    try {
      const name = this.name(domain);
      fs.mkdirSync(this.opts.runDir, { recursive: true, mode: 0o700 });
      const targets = blockTargets(await this.virsh('domblklist', name, '--inactive', '--details'));
      for (const d of prepared.disks)
        await this.putDevice(domain, d.role, diskXml(d), targets.includes(DISK_TARGETS[d.role]));
      const nic = prepared.nic;
      if (nic) {
        const macs = interfaceMacs(await this.virsh('domiflist', name, '--inactive'));
        await this.putDevice(domain, 'nic', interfaceXml(nic), macs.includes(nic.mac.toLowerCase()));
      }
    } catch (err) {
      disks.release(domain);
      throw new Error(`writing its image disks into the libvirt definition: ${(err as Error).message}`);
    }
  }

  /** Writes one device into the persistent definition: replaced when it is there (`present`), else added. */
  private async putDevice(domain: string, what: string, xml: string, present: boolean): Promise<void> {
    const file = path.join(this.opts.runDir, `${domain}.${what}.xml`);
    fs.writeFileSync(file, xml, { mode: 0o600 });
    await this.virsh(present ? 'update-device' : 'attach-device', this.name(domain), file, '--config');
  }

  stop(): Promise<void> {
    this.session.close();
    return Promise.resolve();
  }

  async boot(domain: string): Promise<void> {
    try {
      fs.rmSync(this.stateFile(domain), { force: true });
      const st = await this.domstate(domain);
      if (st !== 'running') {
        await this.imageDevices(domain, 'boot');
        try {
          await this.virsh('start', this.name(domain));
        } catch (err) {
          this.opts.disks?.release(domain);
          throw err;
        }
      }
      const until = Date.now() + this.opts.bootTimeoutMs;
      while ((await this.domstate(domain)) !== 'running') {
        if (Date.now() > until) throw new Error(`not running within ${this.opts.bootTimeoutMs} ms`);
        await sleep(100);
      }
      await this.setWeight(domain, this.opts.idleShares);
    } catch (err) {
      throw this.fail('boot', domain, err);
    }
  }

  async shutdown(domain: string): Promise<void> {
    try {
      const st = await this.domstate(domain);
      if (st === 'running' || st === 'paused') {
        if (st === 'paused') await this.virsh('resume', this.name(domain));
        await this.virsh('shutdown', this.name(domain));
        const until = Date.now() + this.opts.shutdownTimeoutMs;
        while ((await this.domstate(domain)) !== 'shut-off' && Date.now() < until) await sleep(100);
        if ((await this.domstate(domain)) !== 'shut-off') await this.virsh('destroy', this.name(domain));
      }
      fs.rmSync(this.stateFile(domain), { force: true });
      this.opts.disks?.release(domain);
    } catch (err) {
      throw this.fail('shutdown', domain, err);
    }
  }

  /** The lowest memory (KiB) that is safe: what the guest uses plus a margin. */
  private async floorKiB(domain: string): Promise<number> {
    const s = await this.memstat(domain);
    const actual = s.actual ?? (await this.max(domain));
    const usable = s.usable;
    if (usable === undefined || !(usable >= 0)) return actual; // no statistics: take nothing
    return Math.max(0, actual - usable) + this.opts.balloonMarginMiB * KiB;
  }

  private async setMemKiB(domain: string, kib: number): Promise<void> {
    await this.virsh('setmem', this.name(domain), String(Math.round(kib)), '--live');
  }

  async preempt(domain: string): Promise<ReleaseMeasurement> {
    const mode = this.opts.modes[domain] ?? 'throttle';
    try {
      const before = (await this.memstat(domain)).rss ?? 0;
      const sharesBefore = await this.weight(domain);
      if (mode === 'save') {
        await this.saveToFile(domain);
        return { mode, memoryReleasedBytes: before * KiB, cpuWeightBefore: sharesBefore, cpuWeightAfter: 0 };
      }
      if (mode === 'pause') await this.virsh('suspend', this.name(domain));
      await this.setWeight(domain, this.opts.preemptedShares);
      if (mode === 'throttle') {
        const floor = await this.floorKiB(domain);
        await this.setMemKiB(domain, Math.max(floor, this.opts.preemptedMemoryMiB * KiB));
      }
      const after = (await this.memstat(domain)).rss ?? before;
      return {
        mode,
        memoryReleasedBytes: Math.max(0, before - after) * KiB,
        cpuWeightBefore: sharesBefore,
        cpuWeightAfter: this.opts.preemptedShares,
      };
    } catch (err) {
      throw this.fail('preempt', domain, err);
    }
  }

  async resume(domain: string): Promise<void> {
    try {
      const st = await this.domstate(domain);
      if (st === 'saved' || (st === 'shut-off' && fs.existsSync(this.stateFile(domain)))) {
        await this.restoreFromFile(domain);
        return;
      }
      await this.setWeight(domain, this.opts.activeShares);
      await this.setMemKiB(domain, await this.max(domain));
      if (st === 'paused') await this.virsh('resume', this.name(domain));
    } catch (err) {
      throw this.fail('resume', domain, err);
    }
  }

  async grow(domain: string): Promise<void> {
    try {
      await this.setWeight(domain, this.opts.activeShares);
      await this.setMemKiB(domain, await this.max(domain));
    } catch (err) {
      throw this.fail('grow', domain, err);
    }
  }

  async shrink(domain: string): Promise<void> {
    try {
      await this.setWeight(domain, this.opts.idleShares);
    } catch (err) {
      throw this.fail('shrink', domain, err);
    }
  }

  async save(domain: string): Promise<void> {
    try {
      await this.saveToFile(domain);
    } catch (err) {
      throw this.fail('save', domain, err);
    }
  }

  async restore(domain: string): Promise<void> {
    try {
      await this.restoreFromFile(domain);
    } catch (err) {
      throw this.fail('restore', domain, err);
    }
  }

  private async saveToFile(domain: string): Promise<void> {
    fs.mkdirSync(this.opts.runDir, { recursive: true, mode: 0o700 });
    await this.virsh('save', this.name(domain), this.stateFile(domain));
  }

  private async restoreFromFile(domain: string): Promise<void> {
    const file = this.stateFile(domain);
    await this.imageDevices(domain, 'restore');
    await this.virsh('restore', file);
    if ((await this.domstate(domain)) === 'paused') await this.virsh('resume', this.name(domain));
    await this.setWeight(domain, this.opts.activeShares);
    fs.rmSync(file, { force: true });
  }

  async observe(domain: string): Promise<Observation> {
    try {
      const power = await this.domstate(domain);
      if (power === 'shut-off' && fs.existsSync(this.stateFile(domain)))
        return { power: 'saved', memoryBytes: 0, cpuWeight: 0, detail: `saved to ${this.stateFile(domain)}` };
      if (power !== 'running' && power !== 'paused')
        return { power, memoryBytes: 0, cpuWeight: 0, detail: `libvirt ${this.name(domain)}` };
      const [mem, { weight, cpuCap }] = [await this.memstat(domain), await this.sched(domain)];
      return {
        power: power === 'running' && weight > 0 && weight <= this.opts.preemptedShares ? 'throttled' : power,
        memoryBytes: (mem.rss ?? 0) * KiB,
        cpuWeight: weight,
        cpuCap,
        detail: `libvirt ${this.name(domain)} on ${this.opts.uri}`,
      };
    } catch (err) {
      return { power: 'unknown', memoryBytes: 0, cpuWeight: 0, detail: `virsh: ${(err as Error).message}` };
    }
  }
}
