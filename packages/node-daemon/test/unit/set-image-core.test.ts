/**
 * The pure core of `set-image`: a domain without jobs starts switching at once (`booting`, the
 * pending image recorded, only a background boot planned); one with jobs drains (no job starts,
 * the switch starts when its last job ends) unless `now` ends its jobs as lost; the boot's end
 * makes the pending image the domain's image. Properties over random sequences: the invariants
 * hold, no job starts on a draining domain, and a pending image is cleared only by a boot's end,
 * an administrator's down or the VM vanishing.
 */
import fc from 'fast-check';
import type { Command, NodeState } from '../../src/domain';
import { checkInvariants, planDriverOps, transition } from '../../src/domain';
import { apply, baseCommandArbs, bootedNode, EGEE, META, PRIV, start } from './core-helpers';

const setImage = (domain: string, image: string, now = false): Command => ({
  kind: 'set-image',
  domain,
  image,
  now,
  atMs: 3000,
});
const dom = (s: NodeState, name: string) => s.domains.find((d) => d.name === name)!;
const refusal = (s: NodeState, c: Command): string => {
  const r = transition(s, c);
  return r.ok ? (r.noop ? 'noop' : 'accepted') : r.reason;
};

describe('set-image in the core', () => {
  test('an idle domain switches at once: booting, pending image, only a background boot; the boot end sets the image', () => {
    const before = bootedNode();
    let s = apply(before, setImage('meta', 'beta'));
    expect(dom(s, 'meta')).toEqual(expect.objectContaining({ state: 'booting', pendingImage: 'beta' }));
    expect(planDriverOps(before, s)).toEqual([{ op: 'boot', domain: 'meta' }]);
    expect(refusal(s, setImage('meta', 'beta'))).toBe('noop'); // a repeat changes nothing
    expect(refusal(s, setImage('meta', 'gamma'))).toBe('switching-image');
    s = apply(s, { kind: 'boot-complete', domain: 'meta', atMs: 4000 });
    expect(dom(s, 'meta').state).toBe('free');
    expect(dom(s, 'meta').image).toBe('beta');
    expect(dom(s, 'meta').pendingImage).toBeUndefined();
  });

  test('a domain with a job drains: no start, the last end starts the switch (no reset)', () => {
    let s = apply(bootedNode(), start('meta', 'j1'));
    const drained = transition(s, setImage('meta', 'beta'));
    expect(drained.ok && drained.lostJobs).toEqual([]);
    s = apply(s, setImage('meta', 'beta'));
    expect(dom(s, 'meta')).toEqual(expect.objectContaining({ state: 'running-preemptible', pendingImage: 'beta' }));
    expect(refusal(s, start('meta', 'j2'))).toBe('switching-image');
    const before = s;
    s = apply(s, { kind: 'end-job', domain: 'meta', jobId: 'j1', atMs: 3500, reset: 'revert' });
    expect(dom(s, 'meta')).toEqual(expect.objectContaining({ state: 'booting', pendingImage: 'beta' }));
    expect(dom(s, 'meta').resetting).toBeUndefined();
    expect(planDriverOps(before, s)).toEqual([{ op: 'boot', domain: 'meta' }]);
  });

  test('now ends the jobs as lost and switches; a failed boot still records the new image, down with the reason', () => {
    let s = apply(bootedNode(), start('meta', 'j1'));
    const r = transition(s, setImage('meta', 'beta', true));
    expect(r.ok && r.lostJobs.map((j) => j.id)).toEqual(['j1']);
    s = apply(s, setImage('meta', 'beta', true));
    expect(dom(s, 'meta')).toEqual(expect.objectContaining({ state: 'booting', jobs: [] }));
    s = apply(s, { kind: 'boot-failed', domain: 'meta', reason: 'switch failed: x', atMs: 4000 });
    expect(dom(s, 'meta')).toEqual(expect.objectContaining({ image: 'beta', downReason: 'switch failed: x' }));
    expect(dom(s, 'meta').pendingImage).toBeUndefined();
  });

  test('states that cannot switch are refused and change nothing', () => {
    const booting = apply(bootedNode(), { kind: 'action', domain: 'meta', action: 'reboot', reason: '', atMs: 2500 });
    expect(refusal(booting, setImage('meta', 'beta'))).toBe('booting');
    const preempted = apply(apply(bootedNode(), start('meta', 'j1')), start('priv', 'p1', false));
    expect(refusal(preempted, setImage('meta', 'beta', true))).toBe('preempted');
    // The priority domain's non-preemptible work holds the host: the other domain cannot boot.
    expect(refusal(preempted, setImage('egee', 'beta'))).toBe('occupied');
    const removed = apply(
      apply(bootedNode(), { kind: 'action', domain: 'egee', action: 'down', reason: '', atMs: 2500 }),
      {
        kind: 'action',
        domain: 'egee',
        action: 'remove',
        reason: '',
        atMs: 2600,
      },
    );
    expect(refusal(removed, setImage('egee', 'beta'))).toBe('removed');
  });

  test('a down domain switches by booting on the new image', () => {
    const before = apply(bootedNode(), { kind: 'action', domain: 'egee', action: 'down', reason: 'x', atMs: 2500 });
    const s = apply(before, setImage('egee', 'beta'));
    expect(dom(s, 'egee')).toEqual(expect.objectContaining({ state: 'booting', rebooting: false, downReason: '' }));
    expect(planDriverOps(before, s)).toEqual([{ op: 'boot', domain: 'egee' }]);
  });

  test('property: invariants hold, a draining domain takes no new job, a switching one has no job', () => {
    const names = [META, EGEE, PRIV].map((d) => d.name);
    const cmd = fc.oneof(
      ...baseCommandArbs(names),
      fc.record({
        kind: fc.constant('end-job' as const),
        domain: fc.constantFrom(...names),
        jobId: fc.constantFrom('j1', 'j2', 'j3', 'j4'),
      }),
      fc.record({
        kind: fc.constant('set-image' as const),
        domain: fc.constantFrom(...names),
        image: fc.constantFrom('alpha', 'beta'),
        now: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('observed-down' as const),
        domain: fc.constantFrom(...names),
        reason: fc.constant('gone'),
      }),
    );
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 40 }), (cmds) => {
        let s = bootedNode();
        let t = 2000;
        for (const c of cmds) {
          const r = transition(s, { ...c, atMs: (t += 10) });
          if (!r.ok) continue;
          const prev = s;
          s = r.next;
          expect(checkInvariants(s)).toEqual([]);
          for (const d of s.domains) {
            const was = prev.domains.find((x) => x.name === d.name)!;
            if (d.pendingImage !== undefined && d.state === 'booting') expect(d.jobs).toEqual([]);
            // A draining domain's job list only shrinks.
            if (was.pendingImage !== undefined && d.pendingImage !== undefined)
              expect(d.jobs.every((j) => was.jobs.some((k) => k.id === j.id))).toBe(true);
            // A pending image goes only with a boot's end (then it is the image), a down or a vanished VM.
            if (was.pendingImage !== undefined && d.pendingImage === undefined) {
              if (c.kind === 'boot-complete' || c.kind === 'boot-failed') expect(d.image).toBe(was.pendingImage);
              else expect(['observed-down', 'action']).toContain(c.kind);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
