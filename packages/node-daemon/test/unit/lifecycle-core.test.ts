/**
 * The pure core of per-job lifecycles: an end-job carrying `reset` makes the domain `booting`
 * with a journalled reset record once its last job has ended, a failed job is remembered for the
 * reset to keep its overlay, and the reset plans no synchronous driver operation (the background
 * boot does it all). Properties over random sequences: the invariants hold, and a domain never
 * runs a job while a reset of it is recorded.
 */
import fc from 'fast-check';
import type { Command, NodeState } from '../../src/domain';
import { checkInvariants, planDriverOps, transition } from '../../src/domain';
import { apply, baseCommandArbs, bootedNode, EGEE, META, PRIV, start } from './core-helpers';

const endWith = (
  domain: string,
  jobId: string,
  extra: Partial<Extract<Command, { kind: 'end-job' }>> = {},
): Command => ({ kind: 'end-job', domain, jobId, atMs: 3000, ...extra });
const dom = (s: NodeState, name: string) => s.domains.find((d) => d.name === name)!;

describe('per-job lifecycle in the core', () => {
  test('the last job ending with reset: booting, a reset record, only a background boot planned', () => {
    let s = apply(bootedNode(), start('meta', 'j1'));
    s = apply(s, start('meta', 'j2'));
    s = apply(s, endWith('meta', 'j1', { reset: 'revert' }));
    expect(dom(s, 'meta').state).toBe('running-preemptible'); // j2 still runs: no reset yet
    expect(dom(s, 'meta').resetting).toBeUndefined();
    const before = s;
    s = apply(s, endWith('meta', 'j2', { reset: 'revert' }));
    expect(dom(s, 'meta')).toEqual(
      expect.objectContaining({ state: 'booting', resetting: { policy: 'revert', afterJob: 'j2', keepFor: '' } }),
    );
    expect(planDriverOps(before, s)).toEqual([{ op: 'boot', domain: 'meta' }]);
    // Nothing starts on the host while it resets (the original's booting rule).
    const r = transition(s, start('egee', 'j3'));
    expect(r.ok ? 'accepted' : r.reason).toBe('booting');
    s = apply(s, { kind: 'boot-complete', domain: 'meta', atMs: 4000 });
    expect(dom(s, 'meta').state).toBe('free');
    expect(dom(s, 'meta').resetting).toBeUndefined();
  });

  test('a failed job (non-zero exit) is the one whose overlay the reset keeps, also when a later job succeeded', () => {
    let s = apply(bootedNode(), start('meta', 'a'));
    s = apply(s, start('meta', 'b'));
    s = apply(s, endWith('meta', 'a', { reset: 'reboot', exitStatus: 2 }));
    expect(dom(s, 'meta').failedJob).toBe('a');
    s = apply(s, endWith('meta', 'b', { reset: 'reboot', exitStatus: 0 }));
    expect(dom(s, 'meta').resetting).toEqual({ policy: 'reboot', afterJob: 'b', keepFor: 'a' });
    expect(dom(s, 'meta').failedJob).toBeUndefined();
  });

  test('without reset (persistent) an end leaves the domain free; a boot failure of a reset puts it down', () => {
    let s = apply(bootedNode(), start('meta', 'a'));
    expect(dom(apply(s, endWith('meta', 'a', { exitStatus: 1 })), 'meta').state).toBe('free');
    s = apply(s, endWith('meta', 'a', { reset: 'revert' }));
    s = apply(s, { kind: 'boot-failed', domain: 'meta', reason: 'reset failed: x', atMs: 4000 });
    expect(dom(s, 'meta')).toEqual(expect.objectContaining({ state: 'down-bootable', downReason: 'reset failed: x' }));
    expect(dom(s, 'meta').resetting).toBeUndefined();
  });

  test('a priority job ending with reset: the batch domain it preempted is resumed, the priority domain resets', () => {
    let s = apply(bootedNode(), start('meta', 'm1'));
    s = apply(s, start('priv', 'p1', false));
    expect(dom(s, 'meta').state).toBe('preempted');
    const before = s;
    s = apply(s, endWith('priv', 'p1', { reset: 'revert' }));
    expect(dom(s, 'priv').state).toBe('booting');
    const ops = planDriverOps(before, s);
    expect(ops).toContainEqual({ op: 'boot', domain: 'priv' });
    expect(ops.filter((o) => o.domain === 'priv').map((o) => o.op)).toEqual(['boot']);
  });

  test('property: invariants hold and a domain with a recorded reset has no job', () => {
    const names = [META, EGEE, PRIV].map((d) => d.name);
    const cmd = fc.oneof(
      ...baseCommandArbs(names),
      fc.record({
        kind: fc.constant('end-job' as const),
        domain: fc.constantFrom(...names),
        jobId: fc.constantFrom('j1', 'j2', 'j3', 'j4'),
        exitStatus: fc.constantFrom(0, 1),
        reset: fc.constantFrom('revert' as const, 'reboot' as const),
      }),
    );
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 40 }), (cmds) => {
        let s = bootedNode();
        let t = 2000;
        for (const c of cmds) {
          const r = transition(s, { ...c, atMs: (t += 10) });
          if (!r.ok) continue;
          s = r.next;
          expect(checkInvariants(s)).toEqual([]);
          for (const d of s.domains) {
            if (d.resetting) {
              expect(d.jobs).toEqual([]);
              expect(d.state).toBe('booting');
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
