/**
 * CPU-counting mode and partial preemption, pure: victim selection against a brute force, and
 * long random command sequences on many-core nodes (CPUs in use never exceed the node's, every
 * suspended job is resumed or ended, no job is suspended while a cheaper choice existed).
 */
import fc from 'fast-check';
import type { Command, CpuCounting, NodeState, VictimUnit } from '../../src/domain';
import {
  checkInvariants,
  chooseVictims,
  compareCost,
  costOf,
  draftOf,
  cpuCapOf,
  IDLE_CPU_CAP,
  initialNodeState,
  inverseOp,
  planDriverOps,
  runningCpus,
  transition,
  victimUnits,
} from '../../src/domain';
import { apply, end, stamp, start, states } from './core-helpers';

const unitArb = fc.record({
  domain: fc.constantFrom('a', 'b', 'c'),
  cpus: fc.integer({ min: 1, max: 12 }),
  rank: fc.integer({ min: 0, max: 4 }),
});
const unitsArb = fc
  .array(unitArb, { maxLength: 10 })
  .map((us) => us.map((u, i): VictimUnit => ({ domain: u.domain, jobs: [`j${i}`], cpus: u.cpus, rank: u.rank })));

/** The cheapest covering set by trying every subset. */
function bruteForce(units: readonly VictimUnit[], need: number) {
  let best: ReturnType<typeof costOf> = null;
  for (let mask = 0; mask < 1 << units.length; mask++) {
    const c = costOf(
      units.filter((_, i) => (mask >> i) & 1),
      need,
    );
    if (c && (!best || compareCost(c, best) < 0)) best = c;
  }
  return best;
}

describe('victim selection', () => {
  test('covers the need at the least cost (waste, then anti-starvation rank, then count) of all subsets', () => {
    fc.assert(
      fc.property(unitsArb, fc.integer({ min: 1, max: 60 }), (units, need) => {
        const choice = chooseVictims(units, need);
        const best = bruteForce(units, need);
        if (best === null) {
          expect(choice).toBeNull();
          return;
        }
        expect(choice).not.toBeNull();
        const chosen = choice!.units;
        expect(new Set(chosen.map((u) => u.jobs[0])).size).toBe(chosen.length);
        for (const u of chosen) expect(units).toContain(u);
        expect(costOf(chosen, need)).toEqual(best);
        expect(choice!.cost).toEqual(best);
      }),
      { numRuns: 2000 },
    );
  });

  test('the least-preempted of equally wasteful victims is chosen', () => {
    const units: VictimUnit[] = [
      { domain: 'a', jobs: ['often'], cpus: 4, rank: 3 },
      { domain: 'a', jobs: ['never'], cpus: 4, rank: 0 },
      { domain: 'b', jobs: ['big'], cpus: 8, rank: 0 },
    ];
    expect(chooseVictims(units, 3)!.units.map((u) => u.jobs[0])).toEqual(['never']);
    expect(chooseVictims(units, 8)!.units.map((u) => u.jobs[0])).toEqual(['big']);
    expect(chooseVictims(units, 17)).toBeNull();
    expect(chooseVictims(units, 0)!.units).toEqual([]);
  });
});

const BATCH1 = { name: 'batch1', class: 'normal' as const };
const BATCH2 = { name: 'batch2', class: 'normal' as const };
const WHOLE = { name: 'whole', class: 'normal' as const };
const URGENT = { name: 'urgent', class: 'priority' as const };
const URGENT2 = { name: 'urgent2', class: 'priority' as const };
const DOMAINS = [BATCH1, BATCH2, WHOLE, URGENT, URGENT2];

function bootedCpuNode(m: CpuCounting, domains = DOMAINS): NodeState {
  let s = initialNodeState(domains, 0, m);
  for (const d of domains) {
    s = apply(s, { kind: 'action', action: 'boot', domain: d.name, reason: '', atMs: 0 });
    s = apply(s, { kind: 'boot-complete', domain: d.name, atMs: 0 });
  }
  return s;
}

const names = DOMAINS.map((d) => d.name);
const jobIds = Array.from({ length: 16 }, (_, i) => `j${i}`);
const commandArb: fc.Arbitrary<Omit<Command, 'atMs'>> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('start-job' as const),
      domain: fc.constantFrom(...names),
      jobId: fc.constantFrom(...jobIds),
      preemptible: fc.constantFrom(true, true, true, false),
      cpus: fc.integer({ min: 1, max: 12 }),
      expectedGeneration: fc.constant(0),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('end-job' as const),
      domain: fc.constantFrom(...names),
      jobId: fc.constantFrom(...jobIds),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('action' as const),
      domain: fc.constantFrom(...names),
      action: fc.constantFrom('boot', 'down', 'freeze', 'defrost', 'offline', 'online'),
      reason: fc.constant('p'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('boot-complete' as const), domain: fc.constantFrom(...names) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('observed-down' as const),
      domain: fc.constantFrom(...names),
      reason: fc.constant('gone'),
    }),
  },
);
const modeArb = fc.record({
  cpus: fc.integer({ min: 2, max: 48 }),
  perJob: fc.subarray(['batch1', 'batch2']),
});
const sequences = fc.array(fc.tuple(commandArb, fc.integer({ min: 0, max: 5000 })), { minLength: 60, maxLength: 200 });

/** Ends every priority job and defrosts nothing: what is suspended must then all come back. */
function endPriorityWork(s: NodeState, atMs: number): NodeState {
  for (const d of s.domains.filter((x) => x.class === 'priority'))
    for (const j of d.jobs) s = apply(s, end(d.name, j.id, atMs));
  return s;
}

describe('CPU-counting mode over long random command sequences', () => {
  test('invariants after every command: running CPUs ≤ the node’s, batch CPUs (suspended included) ≤ the node’s', () => {
    fc.assert(
      fc.property(modeArb, sequences, (m, raw) => {
        let s = bootedCpuNode(m);
        for (const c of stamp(raw)) {
          const r = transition(s, c);
          if (!r.ok) {
            expect(r.message.length).toBeGreaterThan(0);
            continue;
          }
          s = r.next;
          expect(s.cpuCounting).toEqual(m);
          expect(checkInvariants(s)).toEqual([]);
          expect(runningCpus(s.domains.map(draftOf))).toBeLessThanOrEqual(m.cpus);
        }
      }),
      { numRuns: 150 },
    );
  });

  test('every suspended job is resumed or ended: once the priority work ends nothing stays suspended', () => {
    fc.assert(
      fc.property(modeArb, sequences, (m, raw) => {
        let s = bootedCpuNode(m);
        const everSuspended = new Set<string>();
        let t = 0;
        for (const c of stamp(raw)) {
          t = c.atMs;
          const r = transition(s, c);
          if (!r.ok) continue;
          for (const j of r.suspendedJobs) everSuspended.add(j.jobId);
          s = r.next;
        }
        s = endPriorityWork(s, t + 1);
        const jobs = s.domains.flatMap((d) => d.jobs);
        expect(jobs.filter((j) => j.suspendedSinceMs !== null)).toEqual([]);
        expect(s.domains.filter((d) => d.state === 'preempted')).toEqual([]);
        for (const id of everSuspended) {
          const j = jobs.find((x) => x.id === id);
          // Either ended (gone) or running with its preemption time settled.
          if (j) expect(j.suspendedSinceMs).toBeNull();
        }
      }),
      { numRuns: 300 },
    );
  });

  test('no job is suspended while a cheaper choice existed, and a start that does not fit is refused with its reason', () => {
    let partial = 0;
    let preemptions = 0;
    let refusedNoCpus = 0;
    fc.assert(
      fc.property(modeArb, sequences, (m, raw) => {
        let s = bootedCpuNode(m);
        for (const c of stamp(raw)) {
          const r = transition(s, c);
          if (c.kind === 'start-job' && !r.ok && r.reason === 'no-free-cpus') {
            expect(r.message).toMatch(/needs \d+ CPU\(s\)/);
            refusedNoCpus++;
          }
          if (!r.ok) continue;
          const isPriorityStart =
            c.kind === 'start-job' && s.domains.find((d) => d.name === c.domain)?.class === 'priority';
          if (isPriorityStart && !r.noop) {
            const free = m.cpus - runningCpus(s.domains.map(draftOf));
            const need = c.cpus - free;
            const candidates = victimUnits(s.domains.map(draftOf), m);
            const suspended = new Set(r.suspendedJobs.map((j) => j.jobId));
            // The units the transition suspended: each exactly one candidate, taken whole.
            const chosen = candidates.filter((u) => u.jobs.some((j) => suspended.has(j)));
            expect(chosen.flatMap((u) => u.jobs).sort()).toEqual([...suspended].sort());
            if (chosen.length > 0) preemptions++;
            if (chosen.length > 0 && chosen.flatMap((u) => u.jobs).length < candidates.flatMap((u) => u.jobs).length)
              partial++;
            if (need <= 0) expect(chosen).toEqual([]);
            else if (candidates.length <= 14) expect(costOf(chosen, need)).toEqual(bruteForce(candidates, need));
          } else if (c.kind === 'start-job') {
            expect(r.suspendedJobs).toEqual([]);
          }
          s = r.next;
        }
      }),
      { numRuns: 300 },
    );
    // The sequences really exercise it: many partial preemptions, many refusals for CPUs.
    expect(preemptions).toBeGreaterThan(100);
    expect(partial).toBeGreaterThan(30);
    expect(refusedNoCpus).toBeGreaterThan(100);
  });

  test('the driver stops exactly the suspended jobs of a per-job domain, and the whole of any other', () => {
    fc.assert(
      fc.property(modeArb, sequences, (m, raw) => {
        let s = bootedCpuNode(m);
        for (const c of stamp(raw)) {
          const r = transition(s, c);
          if (!r.ok || r.noop) continue;
          const ops = planDriverOps(s, r.next);
          const stopped = ops
            .filter((o) => o.op === 'stop-jobs')
            .flatMap((o) => o.jobs!.map((j) => `${o.domain}/${j}`));
          const expected = r.suspendedJobs
            .filter((j) => m.perJob.includes(j.domain))
            .map((j) => `${j.domain}/${j.jobId}`);
          expect(stopped.sort()).toEqual(expected.sort());
          for (const o of ops) if (o.op === 'preempt' || o.op === 'resume') expect(m.perJob).not.toContain(o.domain);
          s = r.next;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('CPU caps', () => {
  test('each up domain is capped at the CPUs of its running jobs (at least the idle floor); a cap goes down only after the stops and up only before the continues', () => {
    fc.assert(
      fc.property(modeArb, sequences, (m, raw) => {
        let s = bootedCpuNode(m);
        const caps = new Map(s.domains.map((d) => [d.name, cpuCapOf(s, d)]));
        for (const c of stamp(raw)) {
          const r = transition(s, c);
          if (!r.ok || r.noop) continue;
          const ops = planDriverOps(s, r.next);
          for (const [i, o] of ops.entries()) {
            if (o.op !== 'cap-cpus') continue;
            expect(o.fromCpus).toBe(caps.get(o.domain));
            // Undone, the cap is the one before.
            expect(inverseOp(o)).toEqual({ op: 'cap-cpus', domain: o.domain, cpus: o.fromCpus, fromCpus: o.cpus });
            caps.set(o.domain, o.cpus ?? null);
            const down = o.fromCpus !== null && o.fromCpus !== undefined && (o.cpus as number) < o.fromCpus;
            const before = ops.slice(0, i).map((x) => x.op);
            const after = ops.slice(i + 1).map((x) => x.op);
            if (down) expect(after).not.toContain('stop-jobs');
            else expect(before).not.toContain('continue-jobs');
          }
          for (const d of r.next.domains) {
            const want = cpuCapOf(r.next, d);
            if (want === null) continue;
            expect(caps.get(d.name)).toBe(want);
            const running = d.jobs.filter((j) => j.suspendedSinceMs === null).reduce((t, j) => t + j.cpus, 0);
            expect(want).toBe(Math.max(IDLE_CPU_CAP, running));
          }
          for (const d of r.next.domains) if (cpuCapOf(r.next, d) === null) caps.set(d.name, null);
          s = r.next;
        }
      }),
      { numRuns: 300 },
    );
  });

  test('exclusive mode caps nothing', () => {
    const s = initialNodeState([BATCH1], 0);
    expect(s.domains.map((d) => cpuCapOf(s, d))).toEqual([null]);
  });
});

describe('CPU-counting mode, worked examples', () => {
  const m: CpuCounting = { cpus: 40, perJob: ['batch1', 'batch2'] };

  test('several batch domains run at once; a priority job takes only the CPUs it needs', () => {
    let s = bootedCpuNode(m);
    s = apply(s, start('batch1', 'b1', true, 1000, 16));
    s = apply(s, start('batch1', 'b2', true, 1000, 8));
    s = apply(s, start('batch2', 'b3', true, 1000, 12));
    expect(states(s)).toMatchObject({ batch1: 'running-preemptible', batch2: 'running-preemptible', urgent: 'free' });
    // 4 CPUs free; a 12-CPU priority job needs 8 more: b2 (8, no waste) is the one.
    const r = transition(s, start('urgent', 'u1', false, 2000, 12));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.suspendedJobs).toEqual([{ domain: 'batch1', jobId: 'b2' }]);
    expect(r.preempted).toEqual([]);
    expect(states(r.next)).toMatchObject({
      batch1: 'running-preemptible',
      batch2: 'running-preemptible',
      urgent: 'running',
    });
    expect(planDriverOps(s, r.next)).toEqual([
      { op: 'stop-jobs', domain: 'batch1', jobs: ['b2'] },
      { op: 'cap-cpus', domain: 'batch1', cpus: 16, fromCpus: 24 },
      { op: 'grow', domain: 'urgent' },
      { op: 'cap-cpus', domain: 'urgent', cpus: 12, fromCpus: 1 },
    ]);
    // A batch start may not take the suspended job's CPUs.
    const refused = transition(r.next, start('batch2', 'b4', true, 2500, 1));
    expect(refused).toMatchObject({ ok: false, reason: 'no-free-cpus' });
    expect(!refused.ok && refused.message).toMatch(/8 are held for suspended jobs/);
    const back = transition(r.next, end('urgent', 'u1', 3000));
    expect(back.ok && back.resumedJobs).toEqual([{ domain: 'batch1', jobId: 'b2' }]);
    const b2 = back.ok ? back.next.domains[0]!.jobs.find((j) => j.id === 'b2')! : null;
    expect(b2).toMatchObject({ suspendedSinceMs: null, preemptedMs: 1000, preemptions: 1 });
  });

  test('a domain whose driver stops only whole domains is suspended whole, and preempted', () => {
    let s = bootedCpuNode(m);
    s = apply(s, start('whole', 'w1', true, 1000, 20));
    s = apply(s, start('whole', 'w2', true, 1000, 20));
    const r = transition(s, start('urgent', 'u1', false, 2000, 1));
    expect(r.ok && r.suspendedJobs.map((j) => j.jobId)).toEqual(['w1', 'w2']);
    expect(r.ok && r.preempted).toEqual(['whole']);
    expect(r.ok && planDriverOps(s, r.next)).toEqual([
      { op: 'preempt', domain: 'whole' },
      { op: 'cap-cpus', domain: 'whole', cpus: 1, fromCpus: 40 },
      { op: 'grow', domain: 'urgent' },
    ]);
  });

  test('a priority job that preemptible work cannot cover is refused and nothing changes', () => {
    let s = bootedCpuNode(m);
    s = apply(s, start('batch1', 'b1', false, 1000, 30));
    s = apply(s, start('batch2', 'b2', true, 1000, 6));
    const r = transition(s, start('urgent', 'u1', false, 2000, 12));
    expect(r).toMatchObject({ ok: false, reason: 'no-free-cpus' });
    expect(!r.ok && r.message).toBe(
      "priority job u1 needs 12 CPU(s); 4 of the node's 40 are free and the preemptible batch jobs cannot cover the rest",
    );
  });
});
