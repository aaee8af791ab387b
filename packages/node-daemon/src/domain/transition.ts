/**
 * The Magrathea state machine: `transition(state, command)` with no I/O.
 *
 * Follows the original's sequence for every command (reference §1.4): do the action, then
 * optimize (resume preempted domains once no priority domain runs), then recompute the
 * idle domains from what else runs on the host.
 */
import type {
  Accepted,
  ActionCommand,
  Command,
  CpuCounting,
  DomainRecord,
  EndJobCommand,
  JobRecord,
  JobRef,
  NodeState,
  Refusal,
  SetImageCommand,
  StartJobCommand,
  TransitionResult,
} from './types';
import type { Draft } from './draft';
import { draftOf, holdsMachine, isDown, isIdle, runningStateOf, settleJobs } from './draft';
import {
  freeForNormal,
  freeForPriority,
  preemptPartially,
  recomputeCpu,
  resumeFitting,
  suspendedCpus,
} from './cpu-counting';

export { holdsMachine, isDown, isIdle };

function refuse(reason: Refusal['reason'], message: string): Refusal {
  return { ok: false, reason, message };
}

/** Something non-preemptible (a `running` normal domain, or any running priority domain) holds the machine. */
function exclusiveWorkRuns(ds: readonly Pick<DomainRecord, 'state'>[]): boolean {
  return ds.some((d) => d.state === 'running');
}

function suspendJobs(d: Draft, atMs: number): void {
  d.jobs = d.jobs.map((j) => (j.suspendedSinceMs === null ? { ...j, suspendedSinceMs: atMs } : j));
}

/** Resume preempted domains once no priority domain is running (the original's `domains_optimize`). */
function optimize(ds: Draft[], atMs: number, resumed: string[], m?: CpuCounting): void {
  if (m) {
    resumeFitting(ds, m, atMs, resumed);
    return;
  }
  const priorityRuns = ds.some((d) => d.class === 'priority' && d.state === 'running');
  if (priorityRuns) return;
  for (const d of ds) {
    if (d.state !== 'preempted') continue;
    d.jobs = settleJobs(d, atMs, d.jobs);
    d.state = d.jobs.length > 0 ? runningStateOf(d) : 'free';
    resumed.push(d.name);
  }
}

/** The recompute rule (ARCHITECTURE §3) over idle and down domains. */
function recompute(ds: Draft[], m?: CpuCounting): void {
  if (m) {
    recomputeCpu(ds, m, exclusiveWorkRuns(ds));
    return;
  }
  const running = ds.filter((d) => holdsMachine(d.state));
  const exclusive = exclusiveWorkRuns(running);
  for (const d of ds) {
    if (isIdle(d.state)) {
      if (running.length === 0) d.state = 'free';
      else if (exclusive) d.state = 'occupied';
      else d.state = d.class === 'priority' ? 'occupied-would-preempt' : 'occupied';
    } else if (isDown(d.state)) {
      d.state = exclusive ? 'down' : 'down-bootable';
    }
  }
}

function preemptAll(ds: Draft[], except: string, atMs: number): string[] {
  const preempted: string[] = [];
  for (const d of ds) {
    if (d.name !== except && d.state === 'running-preemptible') {
      d.state = 'preempted';
      suspendJobs(d, atMs);
      preempted.push(d.name);
    }
  }
  return preempted;
}

function sameRecord(a: DomainRecord, b: DomainRecord): boolean {
  if (
    a.state !== b.state ||
    a.offline !== b.offline ||
    a.offlineReason !== b.offlineReason ||
    a.preemptedCpuMsTotal !== b.preemptedCpuMsTotal ||
    a.downReason !== b.downReason ||
    a.rebooting !== b.rebooting ||
    a.resetting !== b.resetting ||
    a.failedJob !== b.failedJob ||
    a.image !== b.image ||
    a.pendingImage !== b.pendingImage ||
    a.class !== b.class ||
    a.jobs.length !== b.jobs.length
  ) {
    return false;
  }
  return a.jobs.every((j, i) => {
    const k = b.jobs[i];
    // Job records are immutable: the same object is the same job (the common case, and cheap).
    if (j === k) return true;
    return (
      k !== undefined &&
      j.id === k.id &&
      j.preemptible === k.preemptible &&
      j.cpus === k.cpus &&
      j.startedMs === k.startedMs &&
      j.preemptedMs === k.preemptedMs &&
      j.suspendedSinceMs === k.suspendedSinceMs &&
      (j.preemptions ?? 0) === (k.preemptions ?? 0)
    );
  });
}

/** Stamps changed domains with the next generation and `since`, and builds the result. */
function finish(
  prev: NodeState,
  ds: Draft[],
  atMs: number,
  extra: Partial<Pick<Accepted, 'preempted' | 'resumed' | 'lostJobs' | 'warning'>> = {},
): Accepted {
  const gen = prev.generation + 1;
  const suspendedJobs: JobRef[] = [];
  const resumedJobs: JobRef[] = [];
  const changed: string[] = [];
  const domains = ds.map((d, i) => {
    const before = prev.domains[i] as DomainRecord;
    if (sameRecord(before, d)) return before;
    changed.push(d.name);
    // Job lists keep their order (starts append, ends cut out, suspensions replace in place):
    // one walk pairs each job with its record before; only a record that is not the same object can differ.
    // In exclusive mode jobs are suspended or resumed only with their domain's state: no walk otherwise.
    let k = 0;
    if (prev.cpuCounting || d.state !== before.state)
      for (const j of d.jobs) {
        while (k < before.jobs.length && (before.jobs[k] as JobRecord).id !== j.id) k++;
        const was = before.jobs[k];
        if (!was) break; // a new job (appended), and nothing after it was there before
        k++;
        if (was === j) continue;
        if (was.suspendedSinceMs === null && j.suspendedSinceMs !== null)
          suspendedJobs.push({ domain: d.name, jobId: j.id });
        if (was.suspendedSinceMs !== null && j.suspendedSinceMs === null)
          resumedJobs.push({ domain: d.name, jobId: j.id });
      }
    return { ...d, generation: gen, sinceMs: d.state === before.state ? before.sinceMs : atMs };
  });
  const noop = changed.length === 0;
  return {
    ok: true,
    next: noop ? prev : withMode(prev, { generation: gen, domains }),
    noop,
    changed,
    preempted: extra.preempted ?? [],
    resumed: extra.resumed ?? [],
    lostJobs: extra.lostJobs ?? [],
    warning: extra.warning ?? '',
    suspendedJobs,
    resumedJobs,
  };
}

/** `s` with the CPU-counting mode of `like` (absent in exclusive mode, so records stay as they were). */
function withMode(like: NodeState, s: NodeState): NodeState {
  return like.cpuCounting ? { ...s, cpuCounting: like.cpuCounting } : s;
}

function unchanged(prev: NodeState, warning = ''): Accepted {
  return {
    ok: true,
    next: prev,
    noop: true,
    changed: [],
    preempted: [],
    resumed: [],
    lostJobs: [],
    warning,
    suspendedJobs: [],
    resumedJobs: [],
  };
}

/** CPU-counting mode: suspends what a priority start or defrost of `cpus` CPUs needs, or refuses. */
function makeRoom(ds: Draft[], m: CpuCounting, cpus: number, atMs: number, what: string): string[] | Refusal {
  const free = freeForPriority(ds, m);
  const preempted = preemptPartially(ds, m, cpus - free, atMs);
  if (preempted) return preempted;
  return refuse(
    'no-free-cpus',
    `${what} needs ${cpus} CPU(s); ${Math.max(0, free)} of the node's ${m.cpus} are free and the preemptible batch jobs cannot cover the rest`,
  );
}

function startJob(prev: NodeState, ds: Draft[], d: Draft, c: StartJobCommand): TransitionResult {
  const holder = ds.find((x) => x.jobs.some((j) => j.id === c.jobId));
  if (holder === d) return unchanged(prev);
  if (holder) return refuse('job-elsewhere', `job ${c.jobId} is already running in domain ${holder.name}`);
  if (d.state === 'removed') return refuse('removed', `domain ${d.name} is removed`);
  if (d.offline) return refuse('offline', `domain ${d.name} is offline: ${d.offlineReason || 'no reason given'}`);
  if (d.pendingImage !== undefined)
    return refuse(
      'switching-image',
      `domain ${d.name} is switching to image ${d.pendingImage}; no job starts until it is up on it`,
    );
  if (c.expectedGeneration > 0 && d.generation !== c.expectedGeneration) {
    return refuse(
      'stale-generation',
      `domain ${d.name} is at generation ${d.generation}, the request expected ${c.expectedGeneration}`,
    );
  }
  const booting = ds.find((x) => x.state === 'booting');
  if (booting)
    return refuse('booting', `domain ${booting.name} on this host is booting; no job may start until it is up`);
  switch (d.state) {
    case 'down':
    case 'down-bootable':
      return refuse('down', `domain ${d.name} is down`);
    case 'frozen':
      return refuse('frozen', `domain ${d.name} is frozen`);
    case 'preempted':
      return refuse('preempted', `domain ${d.name} is preempted by a priority domain`);
    case 'occupied': {
      if (prev.cpuCounting) break; // counted below, with the CPUs as the reason
      const by = ds.find((x) => holdsMachine(x.state));
      return refuse('occupied', `domain ${d.name} is occupied${by ? ` (domain ${by.name} holds the machine)` : ''}`);
    }
    default:
      break;
  }
  const preemptible = d.class === 'normal' && c.preemptible;
  const frozen = ds.find((x) => x.state === 'frozen');
  if (!preemptible && frozen) {
    return refuse(
      'frozen-exists',
      `domain ${frozen.name} is frozen; only preemptible jobs may start until it is defrosted`,
    );
  }
  const m = prev.cpuCounting;
  let preempted: string[] = [];
  if (m && d.class === 'normal') {
    const free = freeForNormal(ds, m);
    if (c.cpus > free) {
      const held = suspendedCpus(ds);
      return refuse(
        'no-free-cpus',
        `job ${c.jobId} needs ${c.cpus} CPU(s); ${Math.max(0, free)} of the node's ${m.cpus} are free for batch work` +
          (held > 0 ? ` (${held} are held for suspended jobs)` : ''),
      );
    }
  } else if (m) {
    const room = makeRoom(ds, m, c.cpus, c.atMs, `priority job ${c.jobId}`);
    if (!Array.isArray(room)) return room;
    preempted = room;
  } else if (d.class === 'priority') preempted = preemptAll(ds, d.name, c.atMs);
  d.jobs.push({
    id: c.jobId,
    preemptible,
    cpus: c.cpus,
    startedMs: c.atMs,
    preemptedMs: 0,
    suspendedSinceMs: null,
  });
  d.state = runningStateOf(d);
  recompute(ds, m);
  return finish(prev, ds, c.atMs, { preempted });
}

function endJob(prev: NodeState, ds: Draft[], d: Draft, c: EndJobCommand): TransitionResult {
  const { jobId, atMs } = c;
  const idx = d.jobs.findIndex((j) => j.id === jobId);
  if (idx < 0) {
    const holder = ds.find((x) => x.jobs.some((j) => j.id === jobId));
    if (holder) return refuse('job-elsewhere', `job ${jobId} runs in domain ${holder.name}, not ${d.name}`);
    return unchanged(prev, `job ${jobId} is not known in domain ${d.name}; nothing to end`);
  }
  const job = d.jobs[idx] as JobRecord;
  settleJobs(d, atMs, [job]);
  d.jobs.splice(idx, 1);
  if (holdsMachine(d.state) || d.state === 'preempted') {
    if (d.jobs.length === 0) d.state = 'free';
    else if (holdsMachine(d.state)) d.state = runningStateOf(d);
  }
  if (c.exitStatus !== undefined && c.exitStatus !== 0) d.failedJob = jobId;
  if (d.pendingImage !== undefined && d.jobs.length === 0 && d.state === 'free') {
    // The last job of a draining domain ended: the image switch starts (a fresh overlay, so no reset).
    d.state = 'booting';
    d.rebooting = true;
    delete d.failedJob;
  } else if (c.reset && d.jobs.length === 0 && d.state === 'free') {
    // lifecycle revert/reboot: the domain takes no job until it is clean again.
    d.state = 'booting';
    d.rebooting = true;
    d.resetting = { policy: c.reset, afterJob: jobId, keepFor: d.failedJob ?? '' };
    delete d.failedJob;
  }
  const resumed: string[] = [];
  optimize(ds, atMs, resumed, prev.cpuCounting);
  recompute(ds, prev.cpuCounting);
  return finish(prev, ds, atMs, { resumed });
}

function action(prev: NodeState, ds: Draft[], d: Draft, c: ActionCommand): TransitionResult {
  const resumed: string[] = [];
  if (d.state === 'removed') return refuse('removed', `domain ${d.name} is removed`);
  switch (c.action) {
    case 'offline':
      d.offline = true;
      // Offline again without a reason keeps the reason given before (an admin re-running the command).
      d.offlineReason = c.reason || d.offlineReason;
      return finish(prev, ds, c.atMs);
    case 'online':
      d.offline = false;
      d.offlineReason = '';
      return finish(prev, ds, c.atMs);
    case 'boot':
    case 'reboot': {
      if (c.action === 'boot' && !isDown(d.state))
        return refuse('not-down', `domain ${d.name} is ${d.state}, not down`);
      if (c.action === 'reboot') {
        if (d.jobs.length > 0) return refuse('has-jobs', `domain ${d.name} runs ${d.jobs.length} job(s)`);
        if (!isIdle(d.state))
          return refuse('not-running', `domain ${d.name} is ${d.state}; only an up, idle domain can be rebooted`);
      }
      if (exclusiveWorkRuns(ds)) {
        return refuse('occupied', `non-preemptible or priority work runs on this host; ${d.name} cannot boot now`);
      }
      d.state = 'booting';
      d.rebooting = c.action === 'reboot';
      d.downReason = '';
      recompute(ds, prev.cpuCounting);
      return finish(prev, ds, c.atMs);
    }
    case 'down': {
      if (d.jobs.length > 0) return refuse('has-jobs', `domain ${d.name} runs ${d.jobs.length} job(s); end them first`);
      if (isDown(d.state)) return unchanged(prev);
      d.state = 'down';
      d.rebooting = false;
      delete d.resetting;
      // A switch cut short by an administrator: the domain keeps its recorded image.
      delete d.pendingImage;
      d.downReason = `admin: ${c.reason || 'taken down by an administrator'}`;
      optimize(ds, c.atMs, resumed, prev.cpuCounting);
      recompute(ds, prev.cpuCounting);
      return finish(prev, ds, c.atMs, { resumed });
    }
    case 'freeze': {
      if (d.class !== 'priority')
        return refuse('not-priority', `only priority domains can be frozen; ${d.name} is normal`);
      if (d.state !== 'running') return refuse('not-running', `domain ${d.name} is ${d.state}, not running`);
      d.state = 'frozen';
      optimize(ds, c.atMs, resumed, prev.cpuCounting);
      recompute(ds, prev.cpuCounting);
      return finish(prev, ds, c.atMs, { resumed });
    }
    case 'defrost': {
      if (d.state !== 'frozen') return refuse('not-frozen', `domain ${d.name} is ${d.state}, not frozen`);
      const m = prev.cpuCounting;
      if (!m && exclusiveWorkRuns(ds)) {
        return refuse(
          'occupied',
          `non-preemptible or priority work runs on this host; ${d.name} cannot be defrosted now`,
        );
      }
      let preempted: string[] = [];
      if (d.jobs.length > 0 && m) {
        const room = makeRoom(
          ds,
          m,
          d.jobs.reduce((sum, j) => sum + j.cpus, 0),
          c.atMs,
          `defrosting ${d.name}`,
        );
        if (!Array.isArray(room)) return room;
        preempted = room;
        d.state = 'running';
      } else if (d.jobs.length > 0) {
        preempted = preemptAll(ds, d.name, c.atMs);
        d.state = 'running';
      } else {
        d.state = 'free';
      }
      recompute(ds, prev.cpuCounting);
      return finish(prev, ds, c.atMs, { preempted });
    }
    case 'remove': {
      if (!isDown(d.state))
        return refuse('not-down', `domain ${d.name} is ${d.state}; take it down before removing it`);
      d.state = 'removed';
      return finish(prev, ds, c.atMs);
    }
  }
}

/**
 * set-image: a domain without jobs (up or down) starts switching at once (`booting`: the
 * manager shuts it down, makes the new overlay and boots it); one with jobs drains (no job
 * starts, the switch starts when its last job ends), or with `now` its jobs are ended as lost.
 */
function setImage(prev: NodeState, ds: Draft[], d: Draft, c: SetImageCommand): TransitionResult {
  if (d.state === 'removed') return refuse('removed', `domain ${d.name} is removed`);
  if (d.pendingImage !== undefined && d.pendingImage !== c.image)
    return refuse(
      'switching-image',
      `domain ${d.name} is switching to image ${d.pendingImage} already; wait until it is up on it`,
    );
  if (d.pendingImage === c.image && (d.state === 'booting' || !c.now)) return unchanged(prev);
  if (d.state === 'booting') return refuse('booting', `domain ${d.name} is booting; set its image once it is up`);
  if (d.state === 'frozen')
    return refuse('frozen', `domain ${d.name} is frozen; defrost it (or end its jobs) before setting its image`);
  if (d.state === 'preempted')
    return refuse(
      'preempted',
      `domain ${d.name} is preempted (its jobs are suspended); set its image once they have resumed or ended`,
    );
  if (d.jobs.length > 0 && !c.now) {
    d.pendingImage = c.image;
    return finish(prev, ds, c.atMs);
  }
  const m = prev.cpuCounting;
  const others = ds.filter((x) => x !== d);
  if (exclusiveWorkRuns(others))
    return refuse('occupied', `non-preemptible or priority work runs on this host; ${d.name} cannot boot now`);
  const lostJobs = settleJobs(d, c.atMs, d.jobs);
  d.jobs = [];
  d.rebooting = !isDown(d.state);
  d.state = 'booting';
  d.downReason = '';
  d.pendingImage = c.image;
  delete d.resetting;
  delete d.failedJob;
  const resumed: string[] = [];
  optimize(ds, c.atMs, resumed, m);
  recompute(ds, m);
  return finish(prev, ds, c.atMs, { lostJobs, resumed });
}

/** A boot ended: a switch in progress is over, and the domain runs (or ran, for a failed boot) its new image. */
function endSwitch(d: Draft): void {
  if (d.pendingImage === undefined) return;
  d.image = d.pendingImage;
  delete d.pendingImage;
}

/** States in which a domain without jobs may be taken down for idleness. */
const IDLE_WITHOUT_JOB: ReadonlySet<string> = new Set(['free', 'occupied', 'occupied-would-preempt']);

/** Applies one command. Pure: the same state and command always give the same result. */
export function transition(prev: NodeState, c: Command): TransitionResult {
  const ds = prev.domains.map(draftOf);
  const d = ds.find((x) => x.name === c.domain);
  if (!d) return refuse('unknown-domain', `no domain named ${c.domain} on this node`);
  switch (c.kind) {
    case 'start-job':
      return startJob(prev, ds, d, c);
    case 'end-job':
      return endJob(prev, ds, d, c);
    case 'action':
      return action(prev, ds, d, c);
    case 'set-image':
      return setImage(prev, ds, d, c);
    case 'boot-complete': {
      if (d.state !== 'booting') return unchanged(prev, `domain ${d.name} is not booting`);
      endSwitch(d);
      d.state = 'free';
      d.rebooting = false;
      delete d.resetting;
      recompute(ds, prev.cpuCounting);
      return finish(prev, ds, c.atMs);
    }
    case 'boot-failed': {
      if (d.state !== 'booting') return unchanged(prev, `domain ${d.name} is not booting`);
      endSwitch(d);
      d.state = 'down';
      d.rebooting = false;
      delete d.resetting;
      d.downReason = c.reason;
      recompute(ds, prev.cpuCounting);
      return finish(prev, ds, c.atMs);
    }
    case 'idle-down': {
      if (d.jobs.length > 0 || d.offline || !IDLE_WITHOUT_JOB.has(d.state)) return unchanged(prev);
      d.state = 'down';
      d.rebooting = false;
      d.downReason = `idle: ${c.reason}`;
      recompute(ds, prev.cpuCounting);
      return finish(prev, ds, c.atMs);
    }
    case 'observed-down': {
      if (isDown(d.state) || d.state === 'removed') return unchanged(prev);
      const lostJobs = settleJobs(d, c.atMs, d.jobs);
      d.jobs = [];
      d.state = 'down';
      d.rebooting = false;
      delete d.resetting;
      // A drain for set-image is given up: the VM is gone (set the image again once it is down).
      delete d.pendingImage;
      d.downReason = c.reason;
      const resumed: string[] = [];
      optimize(ds, c.atMs, resumed, prev.cpuCounting);
      recompute(ds, prev.cpuCounting);
      return finish(prev, ds, c.atMs, { lostJobs, resumed });
    }
  }
}

/** A node whose domains are all `down` (before their first boot), in the given order. */
export function initialNodeState(
  domains: readonly { name: string; class: DomainRecord['class'] }[],
  atMs: number,
  cpuCounting?: CpuCounting,
): NodeState {
  const recs: Draft[] = domains.map((d) => ({
    name: d.name,
    class: d.class,
    state: 'down',
    generation: 0,
    sinceMs: atMs,
    jobs: [],
    offline: false,
    offlineReason: '',
    preemptedCpuMsTotal: 0,
    downReason: 'not booted yet',
    rebooting: false,
  }));
  recompute(recs, cpuCounting);
  return cpuCounting ? { generation: 0, domains: recs, cpuCounting } : { generation: 0, domains: recs };
}

/** The state with the recompute rule applied (used after the configured domain list changes). */
export function recomputed(s: NodeState): NodeState {
  const ds = s.domains.map(draftOf);
  recompute(ds, s.cpuCounting);
  return withMode(s, { generation: s.generation, domains: ds });
}
