/**
 * The `qemu` driver: each domain is a `qemu-system-x86_64` spawned as a direct child of the
 * daemon (so its exit is seen at once) and driven over QMP with our own client. KVM only when it
 * really works, TCG otherwise (accel.ts). Operations (reference/hypervisors.md §1):
 *
 *  - pause = QMP `stop` / `cont`; CPU weight = cgroup v1 `cpu.shares` of QEMU's whole thread
 *    group (the process starts inside the group, so every thread is in it);
 *  - memory = virtio-balloon, never below a floor computed from the guest's own statistics
 *    (ballooning below what the guest uses makes it OOM and panic);
 *  - save = `stop`, `migrate` to `exec:cat > FILE.tmp && mv FILE.tmp FILE` (the file appears only
 *    when complete), `quit`; restore = spawn with `-incoming exec:cat FILE`, wait, `cont`;
 *  - shutdown = `system_powerdown` → time-out → `quit` → SIGKILL;
 *  - one job stopped alone (CPU-counting mode, guests with an agent) = SIGSTOP / SIGCONT through
 *    the guest agent to every process of the job's guest cgroup `<vm.jobsCgroup>/<job id>`;
 *  - CPU cap (CPU-counting mode) = CFS bandwidth of the same cpu group (`cpu.cfs_quota_us`),
 *    only with `driver.qemu.cgroup`.
 *
 * What a preemption released is measured on the host (QEMU's resident memory before and
 * after), not taken from the configuration. Every QMP call has a time limit; a VM whose QMP
 * hangs is observed `unknown` and an operation on it fails, the daemon keeps serving.
 * VMs outlive a daemon restart: the daemon re-attaches to them through their pid file and QMP
 * socket.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DriverError } from '../../errors';
import type { PreemptionMode } from '../preemption';
import { ALL_CAPABILITIES } from '../hypervisor-driver';
import type {
  AdoptedDomain,
  DriverCapabilities,
  DriverStep,
  HypervisorDriver,
  Observation,
  ReleaseMeasurement,
  Signaller,
} from '../hypervisor-driver';
import type { AccelChoice } from './accel';
import { QmpClient, QmpError } from './qmp-client';
import type { ReclaimContext, ReclaimSettings } from './reclaim';
import { readRecord, reclaim, unreclaim } from './reclaim';
import { GuestAgent, GuestControl, jobCgroup, SWAP_SERIAL } from '../guest-agent';
import { readCpuCap, writeCpuCap } from '../cpu-cap';
import type { DiskUse, VmDisks, VmLifecycleDisks } from '../vm-disks';
import type { ResetRecord } from '../../domain';
import { diskArgs } from './disk-args';

const MiB = 1024 * 1024;
/** A shrink waits at most this long for the balloon to give the memory back. */
const SHRINK_DEADLINE_MS = 60_000;

export interface QemuVmConfig {
  /** Guest kernel (an uncompressed vmlinux boots fastest under TCG), absolute path. */
  readonly kernel: string;
  readonly initrd: string | null;
  readonly append: string;
  /** Optional qcow2 disk, absolute path. */
  readonly disk: string | null;
  /** Guest RAM (-m), MiB: what a running domain gets. */
  readonly memoryMiB: number;
  /** Balloon target of an idle domain, MiB (null: keep all of memoryMiB). */
  readonly idleMemoryMiB: number | null;
  /** Balloon target asked of a throttled domain, MiB (the guest floor wins when higher). */
  readonly preemptedMemoryMiB: number;
  readonly cpus: number;
  /** Line on the serial console that says the guest is ready (null: ready when QMP answers). */
  readonly readyLine: string | null;
  readonly extraArgs: readonly string[];
  /** A virtio-serial port for a guest agent (null: only when the domain is preempted by reclaim). */
  readonly guestAgent: boolean | null;
  /** Size of the per-domain swap disk, MiB (0: none). */
  readonly swapMiB: number;
  /** The guest cgroup whose processes are the domain's jobs (stopped and continued by reclaim). */
  readonly jobsCgroup: string;
  /** Per-domain overrides of the driver's reclaimDeadlineMs and onShortfall (null: the driver's). */
  readonly reclaimDeadlineMs: number | null;
  readonly onShortfall: 'save' | 'keep' | null;
}

export interface QemuDriverOptions {
  readonly binary: string;
  readonly accel: AccelChoice;
  /** Directory for QMP sockets, pid files, serial logs and saved states. */
  readonly runDir: string;
  readonly vms: Readonly<Record<string, QemuVmConfig>>;
  readonly modes: Readonly<Record<string, PreemptionMode>>;
  /** cgroup v1 mount and subtree for CPU weight, or null to leave CPU weight alone. */
  readonly cgroup: { readonly mount: string; readonly root: string } | null;
  readonly activeShares: number;
  readonly idleShares: number;
  readonly preemptedShares: number;
  readonly qmpTimeoutMs: number;
  readonly bootTimeoutMs: number;
  readonly powerdownTimeoutMs: number;
  readonly saveTimeoutMs: number;
  /** How long a throttle preemption waits for the balloon to reach its target, ms. */
  readonly balloonSettleMs: number;
  /** Memory left to the guest above what it uses when ballooning, MiB. */
  readonly balloonMarginMiB: number;
  /** reclaim: how long the balloon may take to reach its target, ms. */
  readonly reclaimDeadlineMs: number;
  /** reclaim: what to do when the target is not reached (save the domain, or keep what was reached). */
  readonly onShortfall: 'save' | 'keep';
  /** reclaim: the balloon goes down by this much at a time, MiB. */
  readonly reclaimStepMiB: number;
  /** reclaim: no new low for this long means the guest gives no more, ms. */
  readonly reclaimStallMs: number;
  /** Time limit of each guest agent request (and of the handshake), ms. */
  readonly agentTimeoutMs: number;
  /** Time limit of turning the guest's swap off on resume (it reads every swapped page back), ms. */
  readonly swapOffTimeoutMs: number;
  /** Disks of image-based domains (overlay, context ISO, NIC), or null. */
  readonly disks?: VmDisks | null;
  /** domains[].lifecycle of the domains that reset after each job (absent: persistent). */
  readonly lifecycles?: Readonly<Record<string, 'revert' | 'reboot'>>;
  /** The golden and kept overlays of those domains (image-based ones), or null. */
  readonly lifecycleDisks?: VmLifecycleDisks | null;
}

/** QEMU's virtio-balloon `guest-stats` property. */
interface GuestStats {
  readonly stats?: Record<string, number>;
  readonly 'last-update'?: number;
}

interface Vm {
  pid: number;
  qmp: QmpClient | null;
  /** Our child (null when adopted after a daemon restart). */
  child: ChildProcess | null;
  exited: boolean;
  /** Set before a deliberate quit/powerdown: the exit is not a vanished VM. */
  expectExit: boolean;
  readonly exitWaiters: (() => void)[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Alive and not a zombie (an adopted VM's zombie may wait for a slow PID 1). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function shellQuote(p: string): string {
  if (p.includes("'")) throw new Error(`path contains a single quote: ${p}`);
  return `'${p}'`;
}

export class QemuDriver implements HypervisorDriver {
  readonly kind = 'qemu';
  readonly capabilities: DriverCapabilities;
  private readonly vms = new Map<string, Vm>();
  /** What the last resume of a reclaimed domain could not undo (shown in observe's detail). */
  private readonly reclaimProblems = new Map<string, string>();
  private vanished: ((domain: string) => void) | null = null;

  constructor(
    private readonly opts: QemuDriverOptions,
    private readonly signaller: Signaller,
  ) {
    // The CPU cap is the cpu group's bandwidth: only with a cgroup to put it on.
    this.capabilities = {
      ...ALL_CAPABILITIES,
      'cap-cpus': opts.cgroup !== undefined && opts.cgroup !== null,
      'stop-jobs': true,
      'continue-jobs': true,
    };
  }

  /** Jobs are stopped one by one only in a guest with an agent; the others are preempted whole. */
  stopsJobsOf(domain: string): boolean {
    return this.opts.vms[domain] !== undefined && this.agentEnabled(domain);
  }

  /** Runs `f` over one guest agent session of the domain. */
  private async inGuest<T>(domain: string, f: (g: GuestControl) => Promise<T>): Promise<T> {
    const agent = await GuestAgent.connect(this.file(domain, 'ga'), this.opts.agentTimeoutMs);
    try {
      return await f(new GuestControl(agent, this.opts.agentTimeoutMs));
    } finally {
      agent.close();
    }
  }

  /** SIGSTOP to each job's guest cgroup; a failure continues the jobs already stopped, so nothing is left half done. */
  async stopJobs(domain: string, jobs: readonly string[]): Promise<void> {
    const cg = this.vmConfig(domain).jobsCgroup;
    const stopped: string[] = [];
    try {
      await this.inGuest(domain, async (g) => {
        try {
          for (const j of jobs) {
            await g.stopJobs(jobCgroup(cg, j));
            stopped.push(j);
          }
        } catch (err) {
          for (const j of stopped) await g.continueJobs(jobCgroup(cg, j), true).catch(() => undefined);
          throw err;
        }
      });
    } catch (err) {
      throw this.fail('stop-jobs', domain, err);
    }
  }

  /** SIGCONT to each job's guest cgroup (a job that ended meanwhile has none: nothing to do). */
  async continueJobs(domain: string, jobs: readonly string[]): Promise<void> {
    const cg = this.vmConfig(domain).jobsCgroup;
    try {
      await this.inGuest(domain, async (g) => {
        for (const j of jobs) await g.continueJobs(jobCgroup(cg, j), true);
      });
    } catch (err) {
      throw this.fail('continue-jobs', domain, err);
    }
  }

  onVanished(listener: (domain: string) => void): void {
    this.vanished = listener;
  }

  private file(domain: string, ext: string): string {
    return path.join(this.opts.runDir, `${domain}.${ext}`);
  }

  private vmConfig(domain: string): QemuVmConfig {
    const c = this.opts.vms[domain];
    if (!c) throw new DriverError(this.kind, 'boot', domain, 'no vm configured for this domain');
    return c;
  }

  private mode(domain: string): PreemptionMode {
    return this.opts.modes[domain] ?? 'throttle';
  }

  private cgroupDir(domain: string): string | null {
    const cg = this.opts.cgroup;
    return cg ? path.join(cg.mount, 'cpu', cg.root, domain) : null;
  }

  private setShares(domain: string, shares: number): void {
    const dir = this.cgroupDir(domain);
    if (dir) fs.writeFileSync(path.join(dir, 'cpu.shares'), String(shares));
  }

  setCpuCap(domain: string, cpus: number | null): Promise<void> {
    const dir = this.cgroupDir(domain);
    if (!dir) return Promise.reject(new DriverError(this.kind, 'cap-cpus', domain, 'no driver.qemu.cgroup to cap'));
    try {
      writeCpuCap(dir, cpus);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(this.fail('cap-cpus', domain, err));
    }
  }

  private cpuCap(domain: string): number {
    const dir = this.cgroupDir(domain);
    if (!dir) return 0;
    try {
      return readCpuCap(dir);
    } catch {
      return 0;
    }
  }

  private shares(domain: string): number {
    const dir = this.cgroupDir(domain);
    if (!dir) return 0;
    try {
      return Number(fs.readFileSync(path.join(dir, 'cpu.shares'), 'utf8').trim());
    } catch {
      return 0;
    }
  }

  private fail(op: string, domain: string, err: unknown): DriverError {
    return DriverError.wrap(this.kind, op, domain, err);
  }

  private live(domain: string, op: string): Vm & { qmp: QmpClient } {
    const vm = this.vms.get(domain);
    if (!vm || vm.exited || !vm.qmp || vm.qmp.closed)
      throw new DriverError(this.kind, op, domain, 'the VM is not running (no QEMU process or QMP connection)');
    return vm as Vm & { qmp: QmpClient };
  }

  private qmp<T>(vm: Vm & { qmp: QmpClient }, cmd: string, args?: Record<string, unknown>): Promise<T> {
    return vm.qmp.execute<T>(cmd, args, this.opts.qmpTimeoutMs);
  }

  // ---- lifecycle -------------------------------------------------------------------------

  async start(domains: readonly AdoptedDomain[]): Promise<void> {
    fs.mkdirSync(this.opts.runDir, { recursive: true, mode: 0o700 });
    for (const d of domains) {
      const pid = this.readPid(d.name);
      if (pid === null || !alive(pid)) continue;
      // A VM that outlived the daemon: re-attach through its QMP socket.
      const vm: Vm = { pid, qmp: null, child: null, exited: false, expectExit: false, exitWaiters: [] };
      this.vms.set(d.name, vm);
      await this.imageDisks(d.name, 'adopt', 'start').catch(() => undefined);
      try {
        await this.attachQmp(d.name, vm, Date.now() + this.opts.qmpTimeoutMs);
      } catch {
        // Observed as `unknown` with the reason; reconciliation reports it.
      }
    }
  }

  stop(): Promise<void> {
    // VMs keep running when the daemon stops, like domains under a hypervisor.
    for (const vm of this.vms.values()) {
      vm.qmp?.removeAllListeners('close');
      vm.qmp?.close();
      vm.child?.removeAllListeners('exit');
      vm.child?.unref();
    }
    this.vms.clear();
    return Promise.resolve();
  }

  private readPid(domain: string): number | null {
    try {
      const pid = Number(fs.readFileSync(this.file(domain, 'pid'), 'utf8').trim());
      return Number.isInteger(pid) && pid > 1 ? pid : null;
    } catch {
      return null;
    }
  }

  private markExited(domain: string, vm: Vm): void {
    if (vm.exited) return;
    vm.exited = true;
    vm.qmp?.close();
    for (const w of vm.exitWaiters.splice(0)) w();
    if (this.vms.get(domain) === vm) this.vms.delete(domain);
    if (!vm.expectExit) {
      this.opts.disks?.release(domain);
      this.vanished?.(domain);
    }
  }

  /** QEMU arguments of the domain's image disks (none for a domain without a catalogue image). */
  private async imageDisks(domain: string, use: DiskUse, op: string): Promise<string[]> {
    const disks = this.opts.disks;
    if (!disks?.has(domain)) return [];
    try {
      const p = await disks.prepare(domain, use);
      return diskArgs(p.disks, p.nic);
    } catch (err) {
      throw new DriverError(this.kind, op, domain, `its image: ${(err as Error).message}`);
    }
  }

  private async attachQmp(domain: string, vm: Vm, deadline: number): Promise<void> {
    let last: Error = new Error('no attempt');
    while (Date.now() < deadline && !vm.exited) {
      try {
        const client = await QmpClient.connect(this.file(domain, 'qmp'), Math.max(50, deadline - Date.now()));
        vm.qmp = client;
        // Without a child to watch (adopted VM), the socket closing is the exit signal.
        client.on('close', () => {
          if (vm.child === null && !alive(vm.pid)) this.markExited(domain, vm);
        });
        return;
      } catch (err) {
        last = err as Error;
        await sleep(20);
      }
    }
    throw vm.exited ? new Error('QEMU exited before its QMP socket answered') : last;
  }

  private waitExit(vm: Vm, ms: number): Promise<boolean> {
    if (vm.exited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(vm.exited), ms);
      vm.exitWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
      if (vm.child === null) {
        // Adopted: poll /proc.
        const poll = setInterval(() => {
          if (!alive(vm.pid)) {
            clearInterval(poll);
            vm.exited = true;
            clearTimeout(timer);
            resolve(true);
          }
        }, 20);
        setTimeout(() => clearInterval(poll), ms);
      }
    });
  }

  /** Spawns QEMU (optionally restoring from `incoming`) and waits until QMP answers. */
  private async spawnVm(domain: string, op: string, incoming: string | null): Promise<Vm & { qmp: QmpClient }> {
    const c = this.vmConfig(domain);
    for (const f of [c.kernel, c.initrd, c.disk]) {
      if (f !== null && !fs.existsSync(f)) throw new DriverError(this.kind, op, domain, `${f} does not exist`);
    }
    fs.mkdirSync(this.opts.runDir, { recursive: true, mode: 0o700 });
    const imageArgs = await this.imageDisks(domain, incoming ? 'restore' : 'boot', op);
    for (const ext of ['qmp', 'pid']) fs.rmSync(this.file(domain, ext), { force: true });
    const args = [
      '-name',
      domain,
      '-accel',
      this.opts.accel.accel,
      '-m',
      String(c.memoryMiB),
      '-smp',
      String(c.cpus),
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-chardev',
      `file,id=serial0,path=${this.file(domain, 'serial.log')},append=on`,
      '-serial',
      'chardev:serial0',
      '-kernel',
      c.kernel,
      ...(c.initrd ? ['-initrd', c.initrd] : []),
      '-append',
      c.append,
      '-qmp',
      `unix:${this.file(domain, 'qmp')},server=on,wait=off`,
      '-pidfile',
      this.file(domain, 'pid'),
      '-device',
      // reclaim: a guest short of memory takes pages back from the balloon instead of killing a job.
      this.mode(domain) === 'reclaim'
        ? 'virtio-balloon-pci,id=balloon0,deflate-on-oom=on'
        : 'virtio-balloon-pci,id=balloon0',
      ...(c.disk ? ['-drive', `file=${c.disk},if=virtio,format=qcow2`] : []),
      ...imageArgs,
      ...this.agentArgs(domain),
      ...this.swapArgs(domain, incoming === null),
      ...c.extraArgs,
      ...(incoming ? ['-incoming', `exec:cat ${shellQuote(incoming)}`] : []),
    ];
    const cgDir = this.cgroupDir(domain);
    if (cgDir) {
      try {
        fs.mkdirSync(cgDir, { recursive: true });
      } catch (err) {
        throw new DriverError(
          this.kind,
          op,
          domain,
          `cannot create the CPU cgroup ${cgDir}: ${(err as Error).message}`,
        );
      }
    }
    const stderrPath = this.file(domain, 'stderr.log');
    const errFd = fs.openSync(stderrPath, 'w');
    // Through a wrapper that waits until it has been moved into the cgroup, then execs QEMU
    // (same pid): every QEMU thread starts inside the group.
    const child = cgDir
      ? spawn('/bin/sh', ['-c', 'read _ && exec "$@"', 'magrathea-vm', this.opts.binary, ...args], {
          detached: true,
          stdio: ['pipe', 'ignore', errFd],
        })
      : spawn(this.opts.binary, args, { detached: true, stdio: ['ignore', 'ignore', errFd] });
    fs.closeSync(errFd);
    const spawnErr = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (e) => resolve(e));
    });
    if (spawnErr || child.pid === undefined)
      throw new DriverError(
        this.kind,
        op,
        domain,
        `cannot start ${this.opts.binary}: ${spawnErr?.message ?? 'spawn failed'}`,
      );
    const vm: Vm = { pid: child.pid, qmp: null, child, exited: false, expectExit: false, exitWaiters: [] };
    child.once('exit', () => this.markExited(domain, vm));
    child.unref();
    this.vms.set(domain, vm);
    if (cgDir) {
      try {
        fs.writeFileSync(path.join(cgDir, 'cgroup.procs'), String(child.pid));
        this.setShares(domain, this.opts.idleShares);
      } catch (err) {
        vm.expectExit = true;
        child.kill('SIGKILL');
        throw new DriverError(this.kind, op, domain, `cannot use the CPU cgroup ${cgDir}: ${(err as Error).message}`);
      }
      child.stdin?.end('go\n');
    }
    try {
      await this.attachQmp(domain, vm, Date.now() + this.opts.bootTimeoutMs);
    } catch (err) {
      await this.kill(vm);
      const why = this.stderrTail(domain) || (err as Error).message;
      throw new DriverError(this.kind, op, domain, `QEMU did not start: ${why}`);
    }
    return vm as Vm & { qmp: QmpClient };
  }

  private agentEnabled(domain: string): boolean {
    return this.vmConfig(domain).guestAgent ?? this.mode(domain) === 'reclaim';
  }

  /** The guest agent's virtio-serial port (org.qemu.guest_agent.0), a Unix socket QEMU listens on. */
  private agentArgs(domain: string): string[] {
    if (!this.agentEnabled(domain)) return [];
    fs.rmSync(this.file(domain, 'ga'), { force: true });
    return [
      '-chardev',
      `socket,id=ga0,path=${this.file(domain, 'ga')},server=on,wait=off`,
      '-device',
      'virtio-serial-pci,id=vser0',
      '-device',
      'virtserialport,bus=vser0.0,chardev=ga0,name=org.qemu.guest_agent.0',
    ];
  }

  /**
   * The per-domain swap disk: a sparse raw file, new at every boot (kept for a restore), opened
   * with O_DIRECT (cache=none) so the guest's swap does not become the host's page cache.
   */
  private swapArgs(domain: string, fresh: boolean): string[] {
    const mib = this.vmConfig(domain).swapMiB;
    if (mib <= 0) return [];
    const f = this.file(domain, 'swap');
    if (fresh || !fs.existsSync(f)) {
      fs.rmSync(f, { force: true });
      const fd = fs.openSync(f, 'w', 0o600);
      try {
        fs.ftruncateSync(fd, mib * MiB);
      } finally {
        fs.closeSync(fd);
      }
    }
    return [
      '-drive',
      `file=${f},if=none,id=swap0,format=raw,cache=none,aio=threads`,
      '-device',
      `virtio-blk-pci,drive=swap0,serial=${SWAP_SERIAL}`,
    ];
  }

  private reclaimSettings(domain: string): ReclaimSettings {
    const c = this.vmConfig(domain);
    return {
      ramBytes: c.memoryMiB * MiB,
      requestedBytes: c.preemptedMemoryMiB * MiB,
      marginBytes: this.opts.balloonMarginMiB * MiB,
      stepBytes: this.opts.reclaimStepMiB * MiB,
      deadlineMs: c.reclaimDeadlineMs ?? this.opts.reclaimDeadlineMs,
      stallMs: this.opts.reclaimStallMs,
      agentTimeoutMs: this.opts.agentTimeoutMs,
      swapOffTimeoutMs: this.opts.swapOffTimeoutMs,
      onShortfall: c.onShortfall ?? this.opts.onShortfall,
      jobs: { cgroup: c.jobsCgroup },
      swap: c.swapMiB > 0,
    };
  }

  private reclaimContext(domain: string, vm: Vm & { qmp: QmpClient }): ReclaimContext {
    return {
      qmp: <T>(cmd: string, args?: Record<string, unknown>) => this.qmp<T>(vm, cmd, args),
      rss: () => rssBytes(vm.pid),
      save: () => this.saveToFile(domain, vm),
      agentSocket: this.file(domain, 'ga'),
      recordFile: this.file(domain, 'reclaim'),
    };
  }

  private stderrTail(domain: string): string {
    try {
      return fs.readFileSync(this.file(domain, 'stderr.log'), 'utf8').trim().split('\n').slice(-3).join(' | ');
    } catch {
      return '';
    }
  }

  private async kill(vm: Vm): Promise<void> {
    vm.expectExit = true;
    if (vm.exited) return;
    vm.qmp?.close();
    try {
      this.signaller(vm.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await this.waitExit(vm, 3000);
  }

  private async waitReady(domain: string, vm: Vm, fromByte: number, deadline: number): Promise<void> {
    const line = this.vmConfig(domain).readyLine;
    if (line === null) return;
    const log = this.file(domain, 'serial.log');
    while (Date.now() < deadline) {
      if (vm.exited) throw new Error(`QEMU exited during boot: ${this.stderrTail(domain) || 'no message'}`);
      try {
        const fd = fs.openSync(log, 'r');
        try {
          const size = fs.fstatSync(fd).size;
          if (size > fromByte) {
            const buf = Buffer.alloc(size - fromByte);
            fs.readSync(fd, buf, 0, buf.length, fromByte);
            if (buf.toString('utf8').includes(line)) return;
          }
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        // not created yet
      }
      await sleep(50);
    }
    throw new Error(`the guest did not print "${line}" within ${this.opts.bootTimeoutMs} ms`);
  }

  /** The steps of each domain's last boot (revert domains: new-overlay, restore or boot, golden). */
  private readonly bootSteps = new Map<string, readonly DriverStep[]>();

  lastBootSteps(domain: string): readonly DriverStep[] {
    return this.bootSteps.get(domain) ?? [];
  }

  async boot(domain: string): Promise<void> {
    this.bootSteps.delete(domain);
    if (this.opts.lifecycles?.[domain] === 'revert') {
      const steps: DriverStep[] = [];
      this.bootSteps.set(domain, steps);
      // A VM found running while booting was left by a daemon that died in the middle (maybe
      // paused while its golden state was saved): a revert domain starts clean again instead.
      try {
        await this.stopNow(domain);
        await this.bootRevert(domain, steps);
      } catch (err) {
        throw this.fail('boot', domain, err);
      }
      return;
    }
    if (this.vms.get(domain)?.exited === false) return; // already running (adopted)
    await this.coldBoot(domain);
  }

  private async coldBoot(domain: string): Promise<void> {
    const deadline = Date.now() + this.opts.bootTimeoutMs;
    let from = 0;
    try {
      from = fs.statSync(this.file(domain, 'serial.log')).size;
    } catch {
      from = 0;
    }
    fs.rmSync(this.file(domain, 'state'), { force: true });
    fs.rmSync(this.file(domain, 'reclaim'), { force: true });
    this.reclaimProblems.delete(domain);
    let vm: Vm & { qmp: QmpClient };
    try {
      vm = await this.spawnVm(domain, 'boot', null);
    } catch (err) {
      this.opts.disks?.release(domain);
      throw err;
    }
    try {
      await this.waitReady(domain, vm, from, deadline);
      await this.enableGuestStats(vm);
      await this.setBalloonMiB(vm, this.vmConfig(domain).idleMemoryMiB ?? this.vmConfig(domain).memoryMiB, domain);
    } catch (err) {
      await this.kill(vm);
      this.opts.disks?.release(domain);
      throw this.fail('boot', domain, err);
    }
  }

  // ---- per-job lifecycles ----------------------------------------------------------------

  /** What the golden state was taken for: restoring it into another VM or image would fail or lie. */
  private goldenStamp(domain: string): string {
    const disks = this.opts.disks;
    return JSON.stringify({
      vm: this.vmConfig(domain),
      image: disks?.has(domain) ? (disks.imageOf?.(domain) ?? '') : '',
      binary: this.opts.binary,
      accel: this.opts.accel.accel,
      mode: this.mode(domain),
    });
  }

  /** The golden state (memory, and for an image-based domain its overlay) is there and current. */
  private hasGolden(domain: string): boolean {
    if (!fs.existsSync(this.file(domain, 'golden'))) return false;
    const stamp = this.goldenStamp(domain);
    const ld = this.opts.lifecycleDisks;
    if (this.opts.disks?.has(domain)) return ld?.hasGolden(domain, stamp) ?? false;
    try {
      return fs.readFileSync(this.file(domain, 'golden.stamp'), 'utf8') === stamp;
    } catch {
      return false;
    }
  }

  private async dropGolden(domain: string): Promise<void> {
    fs.rmSync(this.file(domain, 'golden'), { force: true });
    fs.rmSync(this.file(domain, 'golden.stamp'), { force: true });
    await this.opts.lifecycleDisks?.dropGolden(domain);
  }

  private async step(steps: DriverStep[], name: string, run: () => Promise<void>): Promise<void> {
    const t0 = performance.now();
    await run();
    steps.push({ name, millis: performance.now() - t0 });
  }

  /**
   * Boots a revert domain: from its golden state when there is a current one, else cold, then
   * the golden state is taken (saved, the overlay copied) and restored at once.
   */
  private async bootRevert(domain: string, steps: DriverStep[], overlayReady = false): Promise<void> {
    const ld = this.opts.disks?.has(domain) ? this.opts.lifecycleDisks : null;
    // A boot (not a reset, which renewed it already) starts from a clean disk too: the golden
    // copy for a restore, none (a new one on the base) for a cold boot.
    if (!overlayReady && ld)
      await this.step(steps, 'new-overlay', async () => {
        await ld.renew(domain, '', this.hasGolden(domain));
      });
    if (this.hasGolden(domain)) {
      try {
        await this.step(steps, 'restore', async () => {
          await this.restoreFromFile(domain, 'boot', this.file(domain, 'golden'), true);
          await this.idleAllowance(domain);
        });
        return;
      } catch {
        // A golden state that no longer restores (QEMU changed, say): taken again below.
        await this.step(steps, 'stop', () => this.stopNow(domain));
        await this.dropGolden(domain);
        if (ld) await ld.renew(domain, '', false);
      }
    }
    await this.step(steps, 'boot', () => this.coldBoot(domain));
    await this.step(steps, 'golden', () => this.captureGolden(domain));
  }

  /** Saves the freshly booted domain as its golden state and restores it at once. */
  private async captureGolden(domain: string): Promise<void> {
    await this.dropGolden(domain);
    const golden = this.file(domain, 'golden');
    await this.saveToFile(domain, this.live(domain, 'golden'), golden);
    const stamp = this.goldenStamp(domain);
    if (this.opts.disks?.has(domain)) await this.opts.lifecycleDisks?.captureGolden(domain, stamp);
    else fs.writeFileSync(this.file(domain, 'golden.stamp'), stamp);
    await this.restoreFromFile(domain, 'boot', golden, true);
    await this.idleAllowance(domain);
  }

  /** A restored domain starts idle, as a booted one does. */
  private async idleAllowance(domain: string): Promise<void> {
    this.setShares(domain, this.opts.idleShares);
    const c = this.vmConfig(domain);
    await this.setBalloonMiB(this.live(domain, 'boot'), c.idleMemoryMiB ?? c.memoryMiB, domain);
  }

  /** Ends the VM at once, whoever started it (this daemon, or one that crashed): its state is thrown away. */
  private async stopNow(domain: string): Promise<void> {
    const vm = this.vms.get(domain);
    if (vm && !vm.exited) {
      vm.expectExit = true;
      if (vm.qmp && !vm.qmp.closed) await this.qmp(vm as Vm & { qmp: QmpClient }, 'quit').catch(() => undefined);
      if (!(await this.waitExit(vm, 2000))) await this.kill(vm);
    }
    const pid = this.readPid(domain);
    if (pid !== null && alive(pid) && pid !== vm?.pid) {
      try {
        this.signaller(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      for (let i = 0; i < 150 && alive(pid); i++) await sleep(20);
    }
    this.vms.delete(domain);
    for (const ext of ['state', 'state.tmp', 'golden.tmp', 'qmp', 'pid', 'ga', 'reclaim'])
      fs.rmSync(this.file(domain, ext), { force: true });
    this.reclaimProblems.delete(domain);
  }

  async reset(domain: string, r: ResetRecord): Promise<readonly DriverStep[]> {
    const steps: DriverStep[] = [];
    try {
      await this.step(steps, 'stop', () => this.stopNow(domain));
      const revert = r.policy === 'revert' && this.hasGolden(domain);
      if (this.opts.disks?.has(domain)) {
        const ld = this.opts.lifecycleDisks;
        if (!ld) throw new Error('no lifecycle disks for an image-based domain');
        const t0 = performance.now();
        const kept = await ld.renew(domain, r.keepFor, revert);
        steps.push({ name: kept ? 'keep-overlay' : 'new-overlay', millis: performance.now() - t0 });
      }
      if (r.policy === 'revert') await this.bootRevert(domain, steps, true);
      else await this.step(steps, 'boot', () => this.coldBoot(domain));
      return steps;
    } catch (err) {
      throw this.fail('reset', domain, err);
    }
  }

  private async enableGuestStats(vm: Vm & { qmp: QmpClient }): Promise<void> {
    await this.qmp(vm, 'qom-set', {
      path: '/machine/peripheral/balloon0',
      property: 'guest-stats-polling-interval',
      value: 1,
    });
  }

  /**
   * The lowest balloon target that is safe: the guest keeps what it uses plus a margin. The
   * guest's "available" memory is what can be taken away; without statistics nothing is.
   */
  /** The balloon's guest statistics (polled by QEMU every second; `last-update` in seconds, 0 before the first). */
  private guestStats(vm: Vm & { qmp: QmpClient }): Promise<GuestStats> {
    return this.qmp<GuestStats>(vm, 'qom-get', { path: '/machine/peripheral/balloon0', property: 'guest-stats' });
  }

  private async floorBytes(vm: Vm & { qmp: QmpClient }, domain: string): Promise<number> {
    const ram = this.vmConfig(domain).memoryMiB * MiB;
    try {
      const r = await this.guestStats(vm);
      const available = r.stats?.['stat-available-memory'] ?? -1;
      const actual = await this.balloonActual(vm);
      if (!r['last-update'] || available < 0) return actual; // no statistics yet: take nothing
      return Math.min(ram, Math.max(0, actual - available) + this.opts.balloonMarginMiB * MiB);
    } catch {
      return ram;
    }
  }

  /**
   * Waits until the balloon is within a MiB of `target`, has made no new low for `stallMs` (the
   * guest gave what it could), or `deadlineMs` is up.
   */
  private async settleBalloon(vm: Vm & { qmp: QmpClient }, target: number, stallMs: number, deadlineMs: number) {
    const until = Date.now() + deadlineMs;
    let last = await this.balloonActual(vm);
    let lastMove = Date.now();
    while (Date.now() < until && last > target + MiB && Date.now() - lastMove < stallMs) {
      await sleep(20);
      const now = await this.balloonActual(vm);
      if (now < last) {
        lastMove = Date.now();
        last = now;
      }
    }
  }

  /** Waits (at most `ms`) for a balloon statistics sample taken after `sinceMs`. */
  private async freshGuestStats(vm: Vm & { qmp: QmpClient }, sinceMs: number, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const r = await this.guestStats(vm).catch((): GuestStats => ({}));
      // last-update is in whole seconds: a later second than the request is a later sample.
      if (typeof r['last-update'] === 'number' && r['last-update'] * 1000 > sinceMs) return;
      await sleep(100);
    }
  }

  private async balloonActual(vm: Vm & { qmp: QmpClient }): Promise<number> {
    const r = await this.qmp<{ actual: number }>(vm, 'query-balloon');
    return r.actual;
  }

  private async setBalloonMiB(vm: Vm & { qmp: QmpClient }, mib: number, domain: string): Promise<number> {
    const want = Math.min(mib, this.vmConfig(domain).memoryMiB) * MiB;
    const target =
      want >= this.vmConfig(domain).memoryMiB * MiB ? want : Math.max(want, await this.floorBytes(vm, domain));
    await this.qmp(vm, 'balloon', { value: target });
    return target;
  }

  async shutdown(domain: string): Promise<void> {
    const vm = this.vms.get(domain);
    try {
      if (vm && !vm.exited) {
        vm.expectExit = true;
        if (vm.qmp && !vm.qmp.closed) {
          // A paused guest cannot handle the ACPI request.
          await this.qmp(vm as Vm & { qmp: QmpClient }, 'cont').catch(() => undefined);
          await this.qmp(vm as Vm & { qmp: QmpClient }, 'system_powerdown').catch(() => undefined);
        }
        if (!(await this.waitExit(vm, this.opts.powerdownTimeoutMs))) {
          if (vm.qmp && !vm.qmp.closed) await this.qmp(vm as Vm & { qmp: QmpClient }, 'quit').catch(() => undefined);
          if (!(await this.waitExit(vm, 2000))) await this.kill(vm);
        }
      }
      for (const ext of ['state', 'qmp', 'pid', 'ga', 'swap', 'reclaim'])
        fs.rmSync(this.file(domain, ext), { force: true });
      this.vms.delete(domain);
      this.opts.disks?.release(domain);
    } catch (err) {
      throw this.fail('shutdown', domain, err);
    }
  }

  // ---- preemption ------------------------------------------------------------------------

  async preempt(domain: string): Promise<ReleaseMeasurement> {
    const mode = this.mode(domain);
    try {
      const vm = this.live(domain, 'preempt');
      const before = rssBytes(vm.pid);
      const sharesBefore = this.shares(domain);
      if (mode === 'save') {
        await this.saveToFile(domain, vm);
        return { mode, memoryReleasedBytes: before, cpuWeightBefore: sharesBefore, cpuWeightAfter: 0 };
      }
      if (mode === 'reclaim') {
        // The guest keeps its CPU weight while it swaps and gives pages to the balloon (its jobs
        // are stopped first, so that CPU goes to the reclaim): at 2 shares on a busy host it
        // would take several times longer. The weight drops once the memory is back.
        const m = await reclaim(this.reclaimContext(domain, vm), this.reclaimSettings(domain));
        const saved = m.outcome === 'saved';
        if (!saved) this.setShares(domain, this.opts.preemptedShares);
        return {
          ...m,
          cpuWeightBefore: sharesBefore,
          cpuWeightAfter: saved ? 0 : this.cgroupDir(domain) ? this.opts.preemptedShares : 0,
        };
      }
      if (mode === 'pause') await this.qmp(vm, 'stop');
      this.setShares(domain, this.opts.preemptedShares);
      if (mode === 'throttle') {
        const target = await this.setBalloonMiB(vm, this.vmConfig(domain).preemptedMemoryMiB, domain);
        // Waits until the balloon reaches its target, stops moving (the guest gave what it
        // could), or the settle time is up.
        await this.settleBalloon(vm, target, 200, this.opts.balloonSettleMs);
      }
      return {
        mode,
        memoryReleasedBytes: Math.max(0, before - rssBytes(vm.pid)),
        cpuWeightBefore: sharesBefore,
        cpuWeightAfter: this.cgroupDir(domain) ? this.opts.preemptedShares : 0,
      };
    } catch (err) {
      throw this.fail('preempt', domain, err);
    }
  }

  async resume(domain: string): Promise<void> {
    try {
      if (this.mode(domain) === 'reclaim') {
        await this.resumeReclaimed(domain);
        return;
      }
      if (this.mode(domain) === 'save' && !this.vms.has(domain)) {
        await this.restoreFromFile(domain, 'resume');
        return;
      }
      const vm = this.live(domain, 'resume');
      this.setShares(domain, this.opts.activeShares);
      await this.setBalloonMiB(vm, this.vmConfig(domain).memoryMiB, domain);
      const st = await this.qmp<{ status: string }>(vm, 'query-status');
      if (st.status !== 'running') await this.qmp(vm, 'cont');
    } catch (err) {
      throw this.fail('resume', domain, err);
    }
  }

  /** Restores the domain when the reclaim escalated to saving it, then undoes what was done in the guest. */
  private async resumeReclaimed(domain: string): Promise<void> {
    const record = readRecord(this.file(domain, 'reclaim'));
    if (!this.vms.has(domain) && fs.existsSync(this.file(domain, 'state')))
      await this.restoreFromFile(domain, 'resume');
    const vm = this.live(domain, 'resume');
    this.setShares(domain, this.opts.activeShares);
    const st = await this.qmp<{ status: string }>(vm, 'query-status');
    if (st.status !== 'running') await this.qmp(vm, 'cont');
    if (record) {
      const r = await unreclaim(this.reclaimContext(domain, vm), this.reclaimSettings(domain), record);
      if (r.problem) this.reclaimProblems.set(domain, r.problem);
      else this.reclaimProblems.delete(domain);
    } else {
      await this.setBalloonMiB(vm, this.vmConfig(domain).memoryMiB, domain);
    }
  }

  async grow(domain: string): Promise<void> {
    try {
      const vm = this.live(domain, 'grow');
      this.setShares(domain, this.opts.activeShares);
      await this.setBalloonMiB(vm, this.vmConfig(domain).memoryMiB, domain);
    } catch (err) {
      throw this.fail('grow', domain, err);
    }
  }

  async shrink(domain: string): Promise<void> {
    try {
      const vm = this.live(domain, 'shrink');
      this.setShares(domain, this.opts.idleShares);
      const idle = this.vmConfig(domain).idleMemoryMiB;
      if (idle === null) return;
      // A shrink comes before the batch domain is resumed (release first, then take): the
      // memory must be given back, not only asked for, or the resumed guest's swap-in meets the
      // priority guest's pages still resident. The floor is computed from a statistics sample
      // taken after the job ended (they are polled once a second), else the pages its job
      // just freed would still count as used.
      await this.freshGuestStats(vm, Date.now(), 2500);
      const target = await this.setBalloonMiB(vm, idle, domain);
      await this.settleBalloon(vm, target, this.opts.balloonSettleMs, SHRINK_DEADLINE_MS);
    } catch (err) {
      throw this.fail('shrink', domain, err);
    }
  }

  async save(domain: string): Promise<void> {
    try {
      await this.saveToFile(domain, this.live(domain, 'save'));
    } catch (err) {
      throw this.fail('save', domain, err);
    }
  }

  async restore(domain: string): Promise<void> {
    try {
      await this.restoreFromFile(domain, 'restore');
    } catch (err) {
      throw this.fail('restore', domain, err);
    }
  }

  /** stop → migrate into FILE.tmp → rename when complete → quit. A failure leaves the VM paused and running. */
  private async saveToFile(
    domain: string,
    vm: Vm & { qmp: QmpClient },
    file = this.file(domain, 'state'),
  ): Promise<void> {
    const tmp = `${file}.tmp`;
    fs.rmSync(tmp, { force: true });
    fs.rmSync(file, { force: true });
    await this.qmp(vm, 'stop');
    await this.qmp(vm, 'migrate-set-parameters', { 'max-bandwidth': 10_000_000_000 });
    await this.qmp(vm, 'migrate', {
      uri: `exec:cat > ${shellQuote(tmp)} && mv ${shellQuote(tmp)} ${shellQuote(file)}`,
    });
    const until = Date.now() + this.opts.saveTimeoutMs;
    for (;;) {
      const m = await this.qmp<{ status?: string; 'error-desc'?: string }>(vm, 'query-migrate');
      if (m.status === 'failed' || m.status === 'cancelled')
        throw new Error(`saving failed: ${m['error-desc'] ?? m.status}`);
      if (m.status === 'completed' && fs.existsSync(file)) break;
      if (Date.now() > until) {
        await this.qmp(vm, 'migrate_cancel').catch(() => undefined);
        throw new Error(`saving did not complete within ${this.opts.saveTimeoutMs} ms`);
      }
      await sleep(10);
    }
    vm.expectExit = true;
    await this.qmp(vm, 'quit').catch((err: unknown) => {
      if (!(err instanceof QmpError && err.qmpClass === 'closed')) throw err;
    });
    if (!(await this.waitExit(vm, 2000))) await this.kill(vm);
    this.vms.delete(domain);
  }

  private async restoreFromFile(
    domain: string,
    op: string,
    file = this.file(domain, 'state'),
    keep = false,
  ): Promise<void> {
    if (!fs.existsSync(file)) throw new DriverError(this.kind, op, domain, `no saved state at ${file}`);
    const vm = await this.spawnVm(domain, op, file);
    try {
      const until = Date.now() + this.opts.saveTimeoutMs;
      for (;;) {
        const st = await this.qmp<{ status: string }>(vm, 'query-status');
        if (st.status !== 'inmigrate') break;
        if (Date.now() > until) throw new Error(`restoring did not complete within ${this.opts.saveTimeoutMs} ms`);
        await sleep(10);
      }
      await this.qmp(vm, 'cont');
      this.setShares(domain, this.opts.activeShares);
      await this.enableGuestStats(vm);
      await this.qmp(vm, 'balloon', { value: this.vmConfig(domain).memoryMiB * MiB });
      if (!keep) fs.rmSync(file, { force: true });
    } catch (err) {
      await this.kill(vm);
      this.vms.delete(domain);
      throw err;
    }
  }

  // ---- observation -----------------------------------------------------------------------

  async observe(domain: string): Promise<Observation> {
    const vm = this.vms.get(domain);
    const accel = this.opts.accel.accel;
    if (!vm || vm.exited || !alive(vm.pid)) {
      if (fs.existsSync(this.file(domain, 'state')))
        return { power: 'saved', memoryBytes: 0, cpuWeight: 0, detail: `saved to ${this.file(domain, 'state')}` };
      return { power: 'shut-off', memoryBytes: 0, cpuWeight: 0, detail: 'no QEMU process' };
    }
    const memoryBytes = rssBytes(vm.pid);
    const cpuWeight = this.shares(domain);
    if (!vm.qmp || vm.qmp.closed) {
      // Try to re-attach once (for example after QEMU restarted its QMP server).
      try {
        await this.attachQmp(domain, vm, Date.now() + this.opts.qmpTimeoutMs);
      } catch (err) {
        return { power: 'unknown', memoryBytes, cpuWeight, detail: `no QMP connection: ${(err as Error).message}` };
      }
    }
    try {
      const st = await this.qmp<{ status: string }>(vm as Vm & { qmp: QmpClient }, 'query-status');
      const running = st.status === 'running';
      const paused = ['paused', 'postmigrate', 'finish-migrate', 'inmigrate', 'prelaunch', 'suspended'].includes(
        st.status,
      );
      return {
        power: running
          ? cpuWeight > 0 && cpuWeight <= this.opts.preemptedShares
            ? 'throttled'
            : 'running'
          : paused
            ? 'paused'
            : 'unknown',
        memoryBytes,
        cpuWeight,
        cpuCap: this.cpuCap(domain),
        detail: `pid ${vm.pid}, ${accel}, QEMU status ${st.status}${
          this.reclaimProblems.has(domain) ? `; ${this.reclaimProblems.get(domain)}` : ''
        }`,
      };
    } catch (err) {
      return { power: 'unknown', memoryBytes, cpuWeight, detail: `QMP: ${(err as Error).message}` };
    }
  }

  /** QEMU's pid (tests and the runbook use it). */
  pidOf(domain: string): number | null {
    const vm = this.vms.get(domain);
    return vm && !vm.exited ? vm.pid : null;
  }
}
