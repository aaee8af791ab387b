/**
 * CPU-counting mode (opt-in per node), pure: CPUs are counted per job, several domains run at
 * once while their jobs fit the node, and a priority job suspends only the batch CPUs it needs
 * (victims.ts chooses which). The domain states stay the original's: a normal domain is
 * `preempted` when every job in it is suspended, and `running(-preemptible)` while any runs.
 *
 * Batch starts leave room for the suspended jobs (their CPUs are spoken for), so once no
 * priority work needs the CPUs, every suspended job fits again and is resumed.
 */
import type { CpuCounting, JobRecord } from './types';
import type { Draft } from './draft';
import { holdsMachine, isDown, isIdle, runningStateOf, settleJobs } from './draft';
import type { VictimUnit } from './victims';
import { chooseVictims } from './victims';

const cpusOf = (jobs: readonly JobRecord[]): number => jobs.reduce((s, j) => s + j.cpus, 0);

/** CPUs of the jobs running now (not suspended, in a domain that holds the machine). */
export function runningCpus(ds: readonly Draft[]): number {
  return ds
    .filter((d) => holdsMachine(d.state))
    .reduce((s, d) => s + cpusOf(d.jobs.filter((j) => j.suspendedSinceMs === null)), 0);
}

/** CPUs of the suspended jobs (spoken for: they come back when priority work leaves). */
export function suspendedCpus(ds: readonly Draft[]): number {
  return ds.reduce((s, d) => s + cpusOf(d.jobs.filter((j) => j.suspendedSinceMs !== null)), 0);
}

/** CPUs a batch job may take now. */
export function freeForNormal(ds: readonly Draft[], m: CpuCounting): number {
  return m.cpus - runningCpus(ds) - suspendedCpus(ds);
}

/** CPUs a priority job may take now without suspending anything. */
export function freeForPriority(ds: readonly Draft[], m: CpuCounting): number {
  return m.cpus - runningCpus(ds);
}

function perJob(m: CpuCounting, d: Draft): boolean {
  return d.class === 'normal' && m.perJob.includes(d.name);
}

/** What a priority job may suspend: running preemptible jobs, or whole domains whose driver stops only domains. */
export function victimUnits(ds: readonly Draft[], m: CpuCounting): VictimUnit[] {
  const units: VictimUnit[] = [];
  for (const d of ds) {
    if (d.class !== 'normal') continue;
    const rankOf = (js: readonly JobRecord[]) => js.reduce((s, j) => s + (j.preemptions ?? 0), 0);
    if (perJob(m, d)) {
      if (!holdsMachine(d.state)) continue;
      for (const j of d.jobs)
        if (j.preemptible && j.suspendedSinceMs === null)
          units.push({ domain: d.name, jobs: [j.id], cpus: j.cpus, rank: rankOf([j]) });
    } else if (d.state === 'running-preemptible') {
      units.push({ domain: d.name, jobs: d.jobs.map((j) => j.id), cpus: cpusOf(d.jobs), rank: rankOf(d.jobs) });
    }
  }
  return units;
}

/**
 * Suspends the cheapest victims covering `need` CPUs. Returns the domains that became
 * `preempted`, or null (nothing changed) when the preemptible work cannot cover the need.
 */
export function preemptPartially(ds: Draft[], m: CpuCounting, need: number, atMs: number): string[] | null {
  const choice = chooseVictims(victimUnits(ds, m), need);
  if (!choice) return null;
  const preempted: string[] = [];
  const chosen = new Map<string, Set<string>>();
  for (const u of choice.units) {
    const ids = chosen.get(u.domain) ?? new Set<string>();
    for (const j of u.jobs) ids.add(j);
    chosen.set(u.domain, ids);
  }
  for (const [name, ids] of chosen) {
    const d = ds.find((x) => x.name === name) as Draft;
    d.jobs = d.jobs.map((j) =>
      ids.has(j.id) ? { ...j, suspendedSinceMs: atMs, preemptions: (j.preemptions ?? 0) + 1 } : j,
    );
  }
  for (const d of ds) {
    if (holdsMachine(d.state) && d.jobs.length > 0 && d.jobs.every((j) => j.suspendedSinceMs !== null)) {
      d.state = 'preempted';
      preempted.push(d.name);
    }
  }
  return preempted;
}

/**
 * Resumes suspended work that fits the free CPUs, longest suspended first (a domain suspended
 * whole comes back whole). Pushes the domains that stop being `preempted` onto `resumed`, and
 * makes a domain whose running jobs have all ended while others are suspended `preempted`.
 */
export function resumeFitting(ds: Draft[], m: CpuCounting, atMs: number, resumed: string[]): void {
  let free = freeForPriority(ds, m);
  type Cand = { d: Draft; jobs: JobRecord[]; since: number; order: number };
  const cands: Cand[] = [];
  ds.forEach((d, di) => {
    if (perJob(m, d)) {
      d.jobs.forEach((j, ji) => {
        if (j.suspendedSinceMs !== null) cands.push({ d, jobs: [j], since: j.suspendedSinceMs, order: di * 1e6 + ji });
      });
    } else if (d.state === 'preempted') {
      cands.push({
        d,
        jobs: d.jobs,
        since: Math.min(...d.jobs.map((j) => j.suspendedSinceMs ?? atMs)),
        order: di * 1e6,
      });
    }
  });
  cands.sort((a, b) => a.since - b.since || a.order - b.order);
  const back = new Map<Draft, Set<string>>();
  for (const c of cands) {
    const need = cpusOf(c.jobs);
    if (need > free) continue;
    free -= need;
    const ids = back.get(c.d) ?? new Set<string>();
    for (const j of c.jobs) ids.add(j.id);
    back.set(c.d, ids);
  }
  for (const [d, ids] of back)
    d.jobs = d.jobs.map((j) => (ids.has(j.id) ? (settleJobs(d, atMs, [j])[0] as JobRecord) : j));
  for (const d of ds) {
    if (d.class !== 'normal') continue;
    const anyRuns = d.jobs.some((j) => j.suspendedSinceMs === null);
    if (d.state === 'preempted' && anyRuns) {
      d.state = runningStateOf(d);
      resumed.push(d.name);
    } else if (holdsMachine(d.state) && d.jobs.length > 0 && !anyRuns) d.state = 'preempted';
  }
}

/**
 * The recompute rule of CPU-counting mode: an idle normal domain is `free` while a batch CPU
 * is free, an idle priority domain `free` while a CPU is free, `occupied-would-preempt` while it
 * could take one by suspending batch work, else `occupied`. Down domains as in exclusive mode.
 */
export function recomputeCpu(ds: Draft[], m: CpuCounting, exclusiveWorkRuns: boolean): void {
  const forNormal = freeForNormal(ds, m);
  const forPriority = freeForPriority(ds, m);
  const canPreempt = victimUnits(ds, m).length > 0;
  for (const d of ds) {
    if (isIdle(d.state)) {
      if (d.class === 'normal') d.state = forNormal >= 1 ? 'free' : 'occupied';
      else d.state = forPriority >= 1 ? 'free' : canPreempt ? 'occupied-would-preempt' : 'occupied';
    } else if (isDown(d.state)) {
      d.state = exclusiveWorkRuns ? 'down' : 'down-bootable';
    }
  }
}

/** Problems with the CPU accounting of a state (checkInvariants adds them). */
export function cpuProblems(ds: readonly Draft[], m: CpuCounting): string[] {
  const errors: string[] = [];
  const running = runningCpus(ds);
  if (running > m.cpus) errors.push(`running jobs hold ${running} CPUs; the node has ${m.cpus}`);
  const batch = ds.filter((d) => d.class === 'normal').reduce((s, d) => s + cpusOf(d.jobs), 0);
  if (batch > m.cpus) errors.push(`batch jobs (running and suspended) hold ${batch} CPUs; the node has ${m.cpus}`);
  return errors;
}
