/** Property tests over random command sequences: the invariants of ARCHITECTURE §3 hold after every command. */
import fc from 'fast-check';
import type { Command, NodeState } from '../../src/domain';
import {
  checkInvariants,
  flapCount,
  initialNodeState,
  isDrop,
  NO_FLAPS,
  planDriverOps,
  recordDrop,
  transition,
} from '../../src/domain';
import { EGEE, META, PRIV, stamp } from './core-helpers';

const PRIV2 = { name: 'priv2', class: 'priority' as const };
const DOMAINS = [META, EGEE, PRIV, PRIV2];
const names = DOMAINS.map((d) => d.name);

const commandArb: fc.Arbitrary<Omit<Command, 'atMs'>> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('start-job' as const),
      domain: fc.constantFrom(...names),
      jobId: fc.constantFrom('j1', 'j2', 'j3', 'j4', 'j5', 'j6'),
      preemptible: fc.boolean(),
      cpus: fc.integer({ min: 1, max: 8 }),
      expectedGeneration: fc.constant(0),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('end-job' as const),
      domain: fc.constantFrom(...names),
      jobId: fc.constantFrom('j1', 'j2', 'j3', 'j4', 'j5', 'j6'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('action' as const),
      domain: fc.constantFrom(...names),
      action: fc.constantFrom('boot', 'down', 'reboot', 'freeze', 'defrost', 'offline', 'online', 'remove'),
      reason: fc.constant('p'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('boot-complete' as const), domain: fc.constantFrom(...names) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('boot-failed' as const),
      domain: fc.constantFrom(...names),
      reason: fc.constant('failed'),
    }),
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

/** A booted node, so sequences spend their time in the interesting states. */
function booted(): NodeState {
  let s = initialNodeState(DOMAINS, 0);
  for (const d of DOMAINS) {
    for (const c of [
      { kind: 'action', action: 'boot', domain: d.name, reason: '', atMs: 0 },
      { kind: 'boot-complete', domain: d.name, atMs: 0 },
    ] as Command[]) {
      const r = transition(s, c);
      if (r.ok) s = r.next;
    }
  }
  return s;
}

const sequences = fc.array(fc.tuple(commandArb, fc.integer({ min: 0, max: 5000 })), { minLength: 1, maxLength: 120 });

describe('state machine properties', () => {
  test('invariants hold after every command; refusals change nothing; generations only grow', () => {
    fc.assert(
      fc.property(sequences, (raw) => {
        let s = booted();
        for (const c of stamp(raw)) {
          const r = transition(s, c);
          if (!r.ok) {
            expect(r.message.length).toBeGreaterThan(0);
            continue;
          }
          expect(r.next.generation).toBeGreaterThanOrEqual(s.generation);
          if (!r.noop) expect(r.next.generation).toBe(s.generation + 1);
          else expect(r.next).toBe(s);
          for (const d of r.next.domains) {
            const before = s.domains.find((x) => x.name === d.name)!;
            expect(d.generation).toBeGreaterThanOrEqual(before.generation);
          }
          s = r.next;
          expect(checkInvariants(s)).toEqual([]);
        }
      }),
      { numRuns: 400 },
    );
  });

  test('no job is lost: every accepted start is present until its end (or its VM vanishes)', () => {
    fc.assert(
      fc.property(sequences, (raw) => {
        let s = booted();
        const live = new Map<string, string>();
        for (const c of stamp(raw)) {
          const r = transition(s, c);
          if (!r.ok) continue;
          if (c.kind === 'start-job') live.set(c.jobId, c.domain);
          if (c.kind === 'end-job' && live.get(c.jobId) === c.domain) live.delete(c.jobId);
          for (const j of r.lostJobs) live.delete(j.id);
          s = r.next;
          const present = new Map(s.domains.flatMap((d) => d.jobs.map((j) => [j.id, d.name] as const)));
          expect(present).toEqual(live);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('replay is deterministic: folding the accepted commands again gives the same state', () => {
    fc.assert(
      fc.property(sequences, (raw) => {
        let s = booted();
        const accepted: Command[] = [];
        for (const c of stamp(raw)) {
          const r = transition(s, c);
          if (r.ok && !r.noop) {
            accepted.push(c);
            s = r.next;
          }
        }
        let t = booted();
        for (const c of accepted) {
          const r = transition(t, c);
          expect(r.ok).toBe(true);
          if (r.ok) t = r.next;
        }
        expect(t).toEqual(s);
      }),
      { numRuns: 200 },
    );
  });

  test('StartJob and EndJob are idempotent', () => {
    fc.assert(
      fc.property(sequences, (raw) => {
        let s = booted();
        for (const c of stamp(raw)) {
          const r = transition(s, c);
          if (!r.ok) continue;
          s = r.next;
          if (c.kind === 'start-job' || c.kind === 'end-job') {
            const again = transition(s, { ...c, atMs: c.atMs + 1 });
            expect(again.ok && again.noop).toBe(true);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  test('driver plan: victims are released before any winner is grown or resumed', () => {
    fc.assert(
      fc.property(sequences, (raw) => {
        let s = booted();
        for (const c of stamp(raw)) {
          const r = transition(s, c);
          if (!r.ok) continue;
          const ops = planDriverOps(s, r.next).map((o) => o.op);
          const firstTake = ops.findIndex((o) => ['resume', 'restore', 'grow', 'boot'].includes(o));
          const lastRelease = ops.map((o) => ['preempt', 'save', 'shrink', 'shutdown'].includes(o)).lastIndexOf(true);
          if (firstTake >= 0 && lastRelease >= 0) expect(lastRelease).toBeLessThan(firstTake);
          if (c.kind === 'start-job' && r.preempted.length > 0) expect(ops).toContain('preempt');
          s = r.next;
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('flap damping (pure)', () => {
  const policy = { maxFlaps: 3, windowMs: 10_000, holdMs: 5_000 };
  test('held exactly when more than maxFlaps drops fall in the window (or a hold is running), and the hold only grows', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 6_000 }), { maxLength: 40 }), (gaps) => {
        let t = 1_000_000;
        let r = NO_FLAPS;
        const times: number[] = [];
        for (const g of gaps) {
          t += g;
          const wasHeld = r.heldUntilMs > t;
          const prevUntil = r.heldUntilMs;
          r = recordDrop(r, t, policy);
          times.push(t);
          const recent = times.filter((x) => t - x < policy.windowMs).length;
          expect(flapCount(r, t, policy)).toBe(recent);
          expect(r.heldUntilMs > t).toBe(recent > policy.maxFlaps || wasHeld);
          expect(r.heldUntilMs).toBeGreaterThanOrEqual(prevUntil);
        }
      }),
    );
  });
  test('drops: into down, or offline switched on; not job traffic', () => {
    expect(isDrop({ state: 'free', offline: false }, { state: 'down', offline: false })).toBe(true);
    expect(isDrop({ state: 'booting', offline: false }, { state: 'down-bootable', offline: false })).toBe(true);
    expect(isDrop({ state: 'free', offline: false }, { state: 'free', offline: true })).toBe(true);
    expect(isDrop({ state: 'running', offline: false }, { state: 'preempted', offline: false })).toBe(false);
    expect(isDrop({ state: 'down', offline: false }, { state: 'down-bootable', offline: false })).toBe(false);
  });
});
