/**
 * The `cgroup` driver: a domain is a process tree started from a command in the config, in its
 * own cgroups (the VServer/OpenVZ analogue of the original). This host offers the v1
 * controllers (freezer, cpu, cpuacct, memory); the groups live in a subtree the daemon owns
 * (`<controller>/<root>/<domain>`), and the processes outlive a daemon restart.
 *
 * Preempt = freeze the tree, drop its CPU shares, and try to lower its memory limit; what was
 * really given back is measured (a frozen group without swap gives back no memory) and
 * reported. `reclaim` freezes the tree and lowers the limit step by step to the target while
 * watching the group's usage: the kernel pushes the frozen pages to the host's swap (a host
 * without swap is refused when the driver starts). Save/restore needs CRIU, which does not work
 * here: those operations are refused.
 *
 * CPU-counting mode stops single jobs (stopJobs): a job's processes are the domain's processes
 * whose environment names it (`PBS_JOBID`, which pbs_mom gives every process of a job); they
 * are moved into a child group `<controller>/<root>/<domain>/job.<id>` (freezer and cpuacct)
 * and that group is frozen, so the rest of the domain — the mom and the other jobs — runs on.
 * Each domain is limited to the CPUs its running jobs hold (setCpuCap): CFS bandwidth on the
 * domain's cpu group, `cpu.cfs_quota_us` = CPUs × `cpu.cfs_period_us` (-1: no limit).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DriverError } from '../../errors';
import type {
  AdoptedDomain,
  DriverCapabilities,
  HypervisorDriver,
  Observation,
  ReleaseMeasurement,
  Signaller,
} from '../hypervisor-driver';
import { meminfoBytes } from '../meminfo';
import { readCpuCap, writeCpuCap } from '../cpu-cap';

export interface CgroupDriverOptions {
  /** Where the v1 hierarchies are mounted. Default /sys/fs/cgroup. */
  readonly mount: string;
  /** The daemon's subtree name under each controller. Default magrathea. */
  readonly root: string;
  /** Command (argv) of each domain. */
  readonly commands: Readonly<Record<string, readonly string[]>>;
  /**
   * Preemption mode of each domain: throttle (keeps running, minimal CPU shares), pause (frozen)
   * or reclaim (frozen, and its memory pushed to the host swap through the memory limit).
   */
  readonly modes: Readonly<Record<string, CgroupPreemption>>;
  /** cpu.shares of a running, idle and preempted domain. Defaults 1024, 64, 2. */
  readonly activeShares: number;
  readonly idleShares: number;
  readonly preemptedShares: number;
  /** Memory limit asked of a preempted domain, bytes. Default 64 MiB. */
  readonly preemptedMemoryBytes: number;
  /** Time for the tree to stop after SIGTERM before SIGKILL, ms. Default 5000. */
  readonly stopTimeoutMs: number;
  /** reclaim: how long the memory limit may take to reach the target, ms. Default 60000. */
  readonly reclaimDeadlineMs: number;
  /** reclaim: the limit goes down by this much at a time, bytes. Default 64 MiB. */
  readonly reclaimStepBytes: number;
  /** The host's /proc/meminfo (swap present and free). Default: read it. */
  readonly meminfo?: () => string;
  /** The environment of a process, NUL-separated. Default: /proc/PID/environ. */
  readonly environOf?: (pid: number) => string;
}

const CONTROLLERS = ['freezer', 'cpu', 'cpuacct', 'memory'] as const;
/** The controllers a job's child group is made in (freezing it, and telling its CPU time). */
const JOB_CONTROLLERS = ['freezer', 'cpuacct'] as const;
/** The child group of a job: its id with anything but [A-Za-z0-9_.-] made `_` (PBS ids: `12[3].server`). */
export const jobGroupName = (jobId: string): string => `job.${jobId.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
type Controller = (typeof CONTROLLERS)[number];
export type CgroupPreemption = 'throttle' | 'pause' | 'reclaim';
const UNLIMITED = '-1';
/** Within this of the target counts as reached (usage moves in pages, and by the page cache of the tree). */
const RECLAIM_CLOSE_ENOUGH = 4 * 1024 * 1024;
const MiB = 1024 * 1024;

/** SwapTotal and SwapFree of a /proc/meminfo text, bytes (0 when absent). */
export function hostSwap(meminfo: string): { totalBytes: number; freeBytes: number } {
  return { totalBytes: meminfoBytes(meminfo, 'SwapTotal') ?? 0, freeBytes: meminfoBytes(meminfo, 'SwapFree') ?? 0 };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class CgroupDriver implements HypervisorDriver {
  readonly kind = 'cgroup';
  readonly capabilities: DriverCapabilities = {
    'cap-cpus': true,
    'stop-jobs': true,
    'continue-jobs': true,
    preempt: true,
    resume: true,
    grow: true,
    shrink: true,
    boot: true,
    shutdown: true,
    save: false,
    restore: false,
  };

  constructor(
    private readonly opts: CgroupDriverOptions,
    private readonly signaller: Signaller,
  ) {}

  private dir(c: Controller, domain: string): string {
    return path.join(this.opts.mount, c, this.opts.root, domain);
  }

  private fail(op: string, domain: string, err: unknown): DriverError {
    return DriverError.wrap(this.kind, op, domain, err);
  }

  private read(c: Controller, domain: string, file: string): string {
    return fs.readFileSync(path.join(this.dir(c, domain), file), 'utf8').trim();
  }

  private write(c: Controller, domain: string, file: string, value: string): void {
    fs.writeFileSync(path.join(this.dir(c, domain), file), value);
  }

  /** The processes of the domain's tree, those in its jobs' child groups included. */
  private pids(domain: string): number[] {
    return [...this.directPids(domain), ...this.jobGroups(domain).flatMap((g) => this.directPids(domain, g))];
  }

  /** The processes right in the domain's freezer group (or in its child group `sub`). */
  private directPids(domain: string, sub = ''): number[] {
    try {
      return fs
        .readFileSync(path.join(this.dir('freezer', domain), sub, 'cgroup.procs'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  }

  /** The domain's job child groups (freezer). */
  private jobGroups(domain: string): string[] {
    try {
      return fs
        .readdirSync(this.dir('freezer', domain), { withFileTypes: true })
        .filter((e) => e.isDirectory() && e.name.startsWith('job.'))
        .map((e) => e.name);
    } catch {
      return [];
    }
  }

  /** Creates the domain's groups; fails clearly when the hierarchy is not writable. */
  private ensureGroups(domain: string): void {
    for (const c of CONTROLLERS) fs.mkdirSync(this.dir(c, domain), { recursive: true });
  }

  private meminfo(): string {
    return this.opts.meminfo?.() ?? fs.readFileSync('/proc/meminfo', 'utf8');
  }

  start(domains: readonly AdoptedDomain[]): Promise<void> {
    const reclaiming = Object.entries(this.opts.modes).filter(([, m]) => m === 'reclaim');
    if (reclaiming.length > 0 && hostSwap(this.meminfo()).totalBytes === 0)
      return Promise.reject(
        new DriverError(
          this.kind,
          'start',
          reclaiming[0]![0],
          `preemption: reclaim needs swap on the host (SwapTotal is 0 in /proc/meminfo): a frozen group's memory can only be given back by swapping it out; add swap, or use throttle or pause for ${reclaiming.map(([d]) => d).join(', ')}`,
        ),
      );
    // The groups and their processes survive a daemon restart: nothing to do but check access.
    for (const d of domains) {
      try {
        this.ensureGroups(d.name);
      } catch {
        // Reported when the domain is booted or observed.
      }
    }
    return Promise.resolve();
  }

  stop(): Promise<void> {
    // Domains keep running when the daemon stops (like VMs under a hypervisor).
    return Promise.resolve();
  }

  async boot(domain: string): Promise<void> {
    const argv = this.opts.commands[domain];
    if (!argv || argv.length === 0)
      throw new DriverError(this.kind, 'boot', domain, 'no command configured for this domain');
    try {
      this.ensureGroups(domain);
    } catch (err) {
      throw this.fail('boot', domain, err);
    }
    if (this.pids(domain).length > 0) return; // already running (adopted)
    // The wrapper waits on stdin until it has been moved into the groups, so every
    // process of the tree starts inside them.
    const child = spawn('/bin/sh', ['-c', 'read _ && exec "$@"', 'magrathea-domain', ...argv], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (e) => resolve(e));
    });
    if (spawned || child.pid === undefined) throw this.fail('boot', domain, spawned ?? new Error('spawn failed'));
    try {
      for (const c of CONTROLLERS) this.write(c, domain, 'cgroup.procs', String(child.pid));
      this.write('cpu', domain, 'cpu.shares', String(this.opts.idleShares));
      this.write('memory', domain, 'memory.limit_in_bytes', UNLIMITED);
    } catch (err) {
      child.kill('SIGKILL');
      throw this.fail('boot', domain, err);
    }
    child.stdin?.end('go\n');
    child.unref();
    // A command that exits at once is a failed boot.
    await sleep(100);
    if (this.pids(domain).length === 0)
      throw new DriverError(this.kind, 'boot', domain, `the domain command exited at once: ${argv.join(' ')}`);
  }

  private async freezer(domain: string, state: 'FROZEN' | 'THAWED', sub = ''): Promise<void> {
    const file = path.join(this.dir('freezer', domain), sub, 'freezer.state');
    fs.writeFileSync(file, state);
    for (let i = 0; i < 200; i++) {
      if (fs.readFileSync(file, 'utf8').trim() === state) return;
      await sleep(2);
    }
    throw new Error(`freezer${sub ? ` of ${sub}` : ''} did not reach ${state} within 400 ms`);
  }

  /** The domain's processes (outside the job groups) that belong to the job, by their PBS_JOBID. */
  private jobPids(domain: string, jobId: string): number[] {
    const want = `PBS_JOBID=${jobId}`;
    return this.directPids(domain).filter((pid) => {
      try {
        const env = this.opts.environOf?.(pid) ?? fs.readFileSync(`/proc/${pid}/environ`, 'latin1');
        return env.split('\0').includes(want);
      } catch {
        return false; // gone meanwhile
      }
    });
  }

  /** Moves the job's processes into its child groups until no new one turns up (a job may fork meanwhile). */
  private gatherJob(domain: string, jobId: string, group: string): number {
    let moved = 0;
    for (let round = 0; round < 20; round++) {
      const found = this.jobPids(domain, jobId);
      if (found.length === 0) break;
      for (const pid of found) {
        for (const c of JOB_CONTROLLERS) {
          try {
            fs.writeFileSync(path.join(this.dir(c, domain), group, 'cgroup.procs'), String(pid));
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // exited meanwhile
          }
        }
        moved++;
      }
    }
    return moved;
  }

  /** Stops each job's own processes: moved into the job's child group, which is frozen. */
  async stopJobs(domain: string, jobs: readonly string[]): Promise<void> {
    try {
      for (const jobId of jobs) {
        const group = jobGroupName(jobId);
        for (const c of JOB_CONTROLLERS) fs.mkdirSync(path.join(this.dir(c, domain), group), { recursive: true });
        this.gatherJob(domain, jobId, group);
        await this.freezer(domain, 'FROZEN', group);
        // A process forked between the last look and the freeze: into the frozen group (it stops on entry).
        this.gatherJob(domain, jobId, group);
      }
    } catch (err) {
      throw this.fail('stop-jobs', domain, err);
    }
  }

  /** Lets each job's processes run again (a job that ended while stopped: so they can exit); an empty group is removed. */
  async continueJobs(domain: string, jobs: readonly string[]): Promise<void> {
    try {
      for (const jobId of jobs) {
        const group = jobGroupName(jobId);
        if (!fs.existsSync(path.join(this.dir('freezer', domain), group))) continue;
        await this.freezer(domain, 'THAWED', group);
        if (this.directPids(domain, group).length > 0) continue;
        for (const c of JOB_CONTROLLERS) {
          try {
            fs.rmdirSync(path.join(this.dir(c, domain), group));
          } catch {
            // Busy again or already gone: removed with a later job's continue or the domain.
          }
        }
      }
    } catch (err) {
      throw this.fail('continue-jobs', domain, err);
    }
  }

  setCpuCap(domain: string, cpus: number | null): Promise<void> {
    try {
      writeCpuCap(this.dir('cpu', domain), cpus);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(this.fail('cap-cpus', domain, err));
    }
  }

  async shutdown(domain: string): Promise<void> {
    try {
      const pids = this.pids(domain);
      if (pids.length === 0) return;
      // Under v1 a kill is deferred while frozen: thaw first (the jobs' own groups too).
      await this.freezer(domain, 'THAWED');
      for (const g of this.jobGroups(domain)) await this.freezer(domain, 'THAWED', g);
      for (const p of pids) this.signal(p, 'SIGTERM');
      const until = Date.now() + this.opts.stopTimeoutMs;
      while (this.pids(domain).length > 0 && Date.now() < until) await sleep(20);
      for (const p of this.pids(domain)) this.signal(p, 'SIGKILL');
      while (this.pids(domain).length > 0 && Date.now() < until + 2000) await sleep(20);
    } catch (err) {
      throw this.fail('shutdown', domain, err);
    }
  }

  private signal(pid: number, sig: 'SIGTERM' | 'SIGKILL'): void {
    try {
      this.signaller(pid, sig);
    } catch {
      // Already gone.
    }
  }

  private memoryUsage(domain: string): number {
    return Number(this.read('memory', domain, 'memory.usage_in_bytes'));
  }

  async preempt(domain: string): Promise<ReleaseMeasurement> {
    try {
      const before = this.memoryUsage(domain);
      const sharesBefore = Number(this.read('cpu', domain, 'cpu.shares'));
      const mode = this.opts.modes[domain] ?? 'throttle';
      if (mode === 'reclaim') return await this.reclaim(domain, before, sharesBefore);
      if (mode === 'pause') await this.freezer(domain, 'FROZEN');
      this.write('cpu', domain, 'cpu.shares', String(this.opts.preemptedShares));
      try {
        // Without swap the kernel cannot take memory from a frozen group: EBUSY below usage.
        this.write('memory', domain, 'memory.limit_in_bytes', String(this.opts.preemptedMemoryBytes));
      } catch {
        // Reported truthfully below: nothing was released.
      }
      const after = this.memoryUsage(domain);
      return {
        mode,
        memoryReleasedBytes: Math.max(0, before - after),
        cpuWeightBefore: sharesBefore,
        cpuWeightAfter: this.opts.preemptedShares,
      };
    } catch (err) {
      throw this.fail('preempt', domain, err);
    }
  }

  /**
   * Freezes the tree, then lowers its memory limit a step at a time towards the target while
   * the kernel swaps its pages out; each write runs off the event loop (the kernel reclaims
   * inside it). Stops at the target, when the kernel can take no more (EBUSY with no new low),
   * or at the deadline, and says which.
   */
  private async reclaim(domain: string, before: number, sharesBefore: number): Promise<ReleaseMeasurement> {
    const steps: { name: string; millis: number }[] = [];
    const t0 = Date.now();
    await this.freezer(domain, 'FROZEN');
    this.write('cpu', domain, 'cpu.shares', String(this.opts.preemptedShares));
    steps.push({ name: 'freeze', millis: Date.now() - t0 });
    const target = this.opts.preemptedMemoryBytes;
    const limitFile = path.join(this.dir('memory', domain), 'memory.limit_in_bytes');
    const t1 = Date.now();
    const deadline = t1 + this.opts.reclaimDeadlineMs;
    let reason = '';
    for (;;) {
      const usage = this.memoryUsage(domain);
      if (usage <= target + RECLAIM_CLOSE_ENOUGH) break;
      if (Date.now() >= deadline) {
        reason = `the group was at ${Math.round(usage / MiB)} MiB of the ${Math.round(target / MiB)} MiB target at reclaimDeadlineMs (${this.opts.reclaimDeadlineMs} ms)`;
        break;
      }
      const next = Math.max(target, usage - this.opts.reclaimStepBytes);
      try {
        await fs.promises.writeFile(limitFile, String(next));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
        if (this.memoryUsage(domain) < usage) continue; // the kernel got some: try again
        const swap = hostSwap(this.meminfo());
        reason = `the kernel could not take the group below ${Math.round(usage / MiB)} MiB (target ${Math.round(target / MiB)} MiB; host swap free ${Math.round(swap.freeBytes / MiB)} of ${Math.round(swap.totalBytes / MiB)} MiB)`;
        break;
      }
      // The kernel reclaims inside the write; a limit taken while the usage stays above it is
      // not a memory controller that gives back (never loop on it).
      const now = this.memoryUsage(domain);
      if (now > next + RECLAIM_CLOSE_ENOUGH) {
        reason = `memory.limit_in_bytes took ${Math.round(next / MiB)} MiB but the group's usage stays at ${Math.round(now / MiB)} MiB`;
        break;
      }
    }
    steps.push({ name: 'memory-limit', millis: Date.now() - t1 });
    const after = this.memoryUsage(domain);
    return {
      mode: 'reclaim',
      memoryReleasedBytes: Math.max(0, before - after),
      cpuWeightBefore: sharesBefore,
      cpuWeightAfter: this.opts.preemptedShares,
      outcome: reason ? 'kept' : 'reached',
      reason,
      steps,
      targetBytes: target,
    };
  }

  async resume(domain: string): Promise<void> {
    try {
      // Off the event loop: raising the limit is quick, but the write is the same file.
      await fs.promises.writeFile(path.join(this.dir('memory', domain), 'memory.limit_in_bytes'), UNLIMITED);
      this.write('cpu', domain, 'cpu.shares', String(this.opts.activeShares));
      await this.freezer(domain, 'THAWED');
    } catch (err) {
      throw this.fail('resume', domain, err);
    }
  }

  grow(domain: string): Promise<void> {
    try {
      this.write('cpu', domain, 'cpu.shares', String(this.opts.activeShares));
      this.write('memory', domain, 'memory.limit_in_bytes', UNLIMITED);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(this.fail('grow', domain, err));
    }
  }

  shrink(domain: string): Promise<void> {
    try {
      this.write('cpu', domain, 'cpu.shares', String(this.opts.idleShares));
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(this.fail('shrink', domain, err));
    }
  }

  save(domain: string): Promise<void> {
    return Promise.reject(
      new DriverError(
        this.kind,
        'save',
        domain,
        'cgroup domains cannot be saved here (CRIU does not work on this kernel)',
      ),
    );
  }

  restore(domain: string): Promise<void> {
    return Promise.reject(new DriverError(this.kind, 'restore', domain, 'cgroup domains cannot be restored here'));
  }

  observe(domain: string): Promise<Observation> {
    try {
      const pids = this.pids(domain);
      if (pids.length === 0) return Promise.resolve({ power: 'shut-off', memoryBytes: 0, cpuWeight: 0, detail: '' });
      const frozen = this.read('freezer', domain, 'freezer.state') !== 'THAWED';
      const shares = Number(this.read('cpu', domain, 'cpu.shares'));
      return Promise.resolve({
        power: frozen ? 'paused' : shares <= this.opts.preemptedShares ? 'throttled' : 'running',
        memoryBytes: this.memoryUsage(domain),
        cpuWeight: shares,
        cpuCap: readCpuCap(this.dir('cpu', domain)),
        detail: `${pids.length} process(es)`,
      });
    } catch (err) {
      return Promise.resolve({
        power: 'unknown',
        memoryBytes: 0,
        cpuWeight: 0,
        detail: `cannot read the domain's cgroups: ${(err as Error).message}`,
      });
    }
  }

  /** CPU time the domain's tree has used, ns (cpuacct.usage). */
  cpuNanos(domain: string): number {
    return Number(this.read('cpuacct', domain, 'cpuacct.usage'));
  }
}
