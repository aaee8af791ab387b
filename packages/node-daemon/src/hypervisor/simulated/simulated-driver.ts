/**
 * The embedded default driver: in-memory VMs with scriptable latencies and failures. It
 * behaves like a hypervisor whose VMs outlive the daemon: on start it adopts the postures
 * the recorded state says the domains are in.
 */
import type { DriverOpKind, Posture } from '../../domain';
import { DriverError } from '../../errors';
import type {
  AdoptedDomain,
  DriverCapabilities,
  HypervisorDriver,
  Observation,
  PowerState,
  ReleaseMeasurement,
} from '../hypervisor-driver';
import { ALL_CAPABILITIES } from '../hypervisor-driver';

export type SimulatedOp = DriverOpKind | 'observe';

/** One scripted failure: the op fails `times` times (default: always) for the domain (default: any). */
export interface SimulatedFailure {
  readonly op: SimulatedOp;
  readonly domain?: string;
  readonly times?: number;
  readonly message?: string;
}

export interface SimulatedDriverOptions {
  /** Latency of each operation, milliseconds. Default 0 for everything but boot (default 20). */
  readonly latencyMs?: Partial<Record<SimulatedOp, number>>;
  readonly failures?: readonly SimulatedFailure[];
  /** Memory a running domain holds, bytes. Default 4 GiB. */
  readonly activeMemoryBytes?: number;
  /** Memory of an idle domain, bytes. Default 160 MiB (the original's Xen default). */
  readonly idleMemoryBytes?: number;
  /** Memory left to a preempted domain, bytes. Default 200 MiB (the original's Xen default). */
  readonly preemptedMemoryBytes?: number;
}

interface Vm {
  power: PowerState;
  memoryBytes: number;
  cpuWeight: number;
}

const WEIGHT = { active: 1000, idle: 10, preempted: 1 } as const;

export class SimulatedDriver implements HypervisorDriver {
  readonly kind = 'simulated';
  /** Stops jobs one by one too (CPU-counting mode). */
  readonly capabilities: DriverCapabilities = { ...ALL_CAPABILITIES, 'stop-jobs': true, 'continue-jobs': true };
  /** Jobs stopped one by one now, as `domain/job`. */
  readonly stoppedJobs = new Set<string>();
  private readonly vms = new Map<string, Vm>();
  private readonly failures: { rule: SimulatedFailure; left: number }[];
  private readonly active: number;
  private readonly idle: number;
  private readonly preempted: number;
  /** Every operation performed, in order (for tests). */
  readonly log: { op: SimulatedOp; domain: string }[] = [];

  constructor(private readonly opts: SimulatedDriverOptions = {}) {
    this.failures = (opts.failures ?? []).map((rule) => ({ rule, left: rule.times ?? Infinity }));
    this.active = opts.activeMemoryBytes ?? 4 * 1024 ** 3;
    this.idle = opts.idleMemoryBytes ?? 160 * 1024 ** 2;
    this.preempted = opts.preemptedMemoryBytes ?? 200 * 1024 ** 2;
  }

  private vmFor(posture: Posture): Vm {
    switch (posture) {
      case 'off':
      case 'booting':
        return { power: 'shut-off', memoryBytes: 0, cpuWeight: 0 };
      case 'idle':
        return { power: 'running', memoryBytes: this.idle, cpuWeight: WEIGHT.idle };
      case 'active':
        return { power: 'running', memoryBytes: this.active, cpuWeight: WEIGHT.active };
      case 'preempted':
        return { power: 'throttled', memoryBytes: this.preempted, cpuWeight: WEIGHT.preempted };
      case 'saved':
        return { power: 'saved', memoryBytes: 0, cpuWeight: 0 };
    }
  }

  start(domains: readonly AdoptedDomain[]): Promise<void> {
    for (const d of domains) if (!this.vms.has(d.name)) this.vms.set(d.name, this.vmFor(d.posture));
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  /** Scripts a failure at run time (tests). */
  failNext(op: SimulatedOp, domain?: string, times = 1, message = 'scripted failure'): void {
    this.failures.push({ rule: { op, ...(domain ? { domain } : {}), times, message }, left: times });
  }

  /** The VM disappears behind the daemon's back (tests of reconciliation). */
  vanish(domain: string): void {
    this.vms.set(domain, this.vmFor('off'));
  }

  /** Someone pauses the VM behind the daemon's back. */
  pauseBehindBack(domain: string): void {
    const vm = this.vms.get(domain);
    if (vm) vm.power = 'paused';
  }

  private async run(op: SimulatedOp, domain: string): Promise<Vm> {
    this.log.push({ op, domain });
    const delay = this.opts.latencyMs?.[op] ?? (op === 'boot' ? 20 : 0);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const f = this.failures.find((x) => x.left > 0 && x.rule.op === op && (!x.rule.domain || x.rule.domain === domain));
    if (f) {
      f.left--;
      throw new DriverError(this.kind, op, domain, f.rule.message ?? 'scripted failure');
    }
    let vm = this.vms.get(domain);
    if (!vm) {
      vm = this.vmFor('off');
      this.vms.set(domain, vm);
    }
    return vm;
  }

  private set(domain: string, posture: Posture): void {
    this.vms.set(domain, this.vmFor(posture));
  }

  async boot(domain: string): Promise<void> {
    await this.run('boot', domain);
    this.set(domain, 'idle');
  }

  async shutdown(domain: string): Promise<void> {
    await this.run('shutdown', domain);
    this.set(domain, 'off');
  }

  async preempt(domain: string): Promise<ReleaseMeasurement> {
    const vm = await this.run('preempt', domain);
    if (vm.power === 'shut-off') throw new DriverError(this.kind, 'preempt', domain, 'domain is not running');
    const before = { ...vm };
    this.set(domain, 'preempted');
    const after = this.vms.get(domain) as Vm;
    return {
      mode: 'simulated',
      memoryReleasedBytes: Math.max(0, before.memoryBytes - after.memoryBytes),
      cpuWeightBefore: before.cpuWeight,
      cpuWeightAfter: after.cpuWeight,
    };
  }

  async resume(domain: string): Promise<void> {
    await this.run('resume', domain);
    this.set(domain, 'active');
  }

  async grow(domain: string): Promise<void> {
    await this.run('grow', domain);
    this.set(domain, 'active');
  }

  async shrink(domain: string): Promise<void> {
    await this.run('shrink', domain);
    this.set(domain, 'idle');
  }

  async save(domain: string): Promise<void> {
    await this.run('save', domain);
    this.set(domain, 'saved');
  }

  async restore(domain: string): Promise<void> {
    await this.run('restore', domain);
    this.set(domain, 'active');
  }

  async stopJobs(domain: string, jobs: readonly string[]): Promise<void> {
    const vm = await this.run('stop-jobs', domain);
    if (vm.power === 'shut-off') throw new DriverError(this.kind, 'stop-jobs', domain, 'domain is not running');
    for (const j of jobs) this.stoppedJobs.add(`${domain}/${j}`);
  }

  async continueJobs(domain: string, jobs: readonly string[]): Promise<void> {
    await this.run('continue-jobs', domain);
    for (const j of jobs) this.stoppedJobs.delete(`${domain}/${j}`);
  }

  async observe(domain: string): Promise<Observation> {
    const vm = await this.run('observe', domain);
    return { power: vm.power, memoryBytes: vm.memoryBytes, cpuWeight: vm.cpuWeight, detail: '' };
  }
}
