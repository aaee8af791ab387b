/**
 * The `cgroup` driver: a domain is a process tree started from a command in the config, in its
 * own cgroups (the VServer/OpenVZ analogue of the original). This host offers the v1
 * controllers (freezer, cpu, cpuacct, memory); the groups live in a subtree the daemon owns
 * (`<controller>/<root>/<domain>`), and the processes outlive a daemon restart.
 *
 * Preempt = freeze the tree, drop its CPU shares, and try to lower its memory limit; what was
 * really given back is measured (a frozen group without swap gives back no memory) and
 * reported. Save/restore needs CRIU, which does not work here: those operations are refused.
 *
 * CPU-counting mode stops single jobs (stopJobs): a job's processes are the domain's processes
 * whose environment names it (`PBS_JOBID`, which pbs_mom gives every process of a job); they
 * are moved into a child group `<controller>/<root>/<domain>/job.<id>` (freezer and cpuacct)
 * and that group is frozen, so the rest of the domain — the mom and the other jobs — runs on.
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

export interface CgroupDriverOptions {
  /** Where the v1 hierarchies are mounted. Default /sys/fs/cgroup. */
  readonly mount: string;
  /** The daemon's subtree name under each controller. Default magrathea. */
  readonly root: string;
  /** Command (argv) of each domain. */
  readonly commands: Readonly<Record<string, readonly string[]>>;
  /** Preemption mode of each domain: throttle (keeps running, minimal CPU shares) or pause (frozen). */
  readonly modes: Readonly<Record<string, 'throttle' | 'pause'>>;
  /** cpu.shares of a running, idle and preempted domain. Defaults 1024, 64, 2. */
  readonly activeShares: number;
  readonly idleShares: number;
  readonly preemptedShares: number;
  /** Memory limit asked of a preempted domain, bytes. Default 64 MiB. */
  readonly preemptedMemoryBytes: number;
  /** Time for the tree to stop after SIGTERM before SIGKILL, ms. Default 5000. */
  readonly stopTimeoutMs: number;
  /** The environment of a process, NUL-separated. Default: /proc/PID/environ. */
  readonly environOf?: (pid: number) => string;
}

const CONTROLLERS = ['freezer', 'cpu', 'cpuacct', 'memory'] as const;
/** The controllers a job's child group is made in (freezing it, and telling its CPU time). */
const JOB_CONTROLLERS = ['freezer', 'cpuacct'] as const;
/** The child group of a job: its id with anything but [A-Za-z0-9_.-] made `_` (PBS ids: `12[3].server`). */
export const jobGroupName = (jobId: string): string => `job.${jobId.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
type Controller = (typeof CONTROLLERS)[number];
const UNLIMITED = '-1';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class CgroupDriver implements HypervisorDriver {
  readonly kind = 'cgroup';
  readonly capabilities: DriverCapabilities = {
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

  start(domains: readonly AdoptedDomain[]): Promise<void> {
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

  async resume(domain: string): Promise<void> {
    try {
      this.write('memory', domain, 'memory.limit_in_bytes', UNLIMITED);
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
