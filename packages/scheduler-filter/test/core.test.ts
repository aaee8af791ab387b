/** Property tests of the filter's pure core: eligibility, publication values, admission, ranking. */
import fc from 'fast-check';
import { admit, candidates, eligibility, KNOWN_STATES, vnodeValues } from '../src/core';
import type { NodeSnapshot } from '../src/core';

const STATES = [...KNOWN_STATES, 'teleporting'];
const ACCEPTING = ['free', 'occupied-would-preempt', 'running-preemptible', 'running', 'running-priority'];

const domainArb = fc.record({
  name: fc.constantFrom('meta', 'egee', 'priv'),
  class: fc.constantFrom('normal' as const, 'priority' as const),
  state: fc.constantFrom(...STATES),
  offline: fc.boolean(),
  preemptedCpuSeconds: fc.double({ min: 0, max: 1e7, noNaN: true }),
  generation: fc.nat(),
  // magrathea domain set-image in progress: the domain accepts nothing until it is up on it.
  pendingImage: fc.constantFrom('', '', 'beta'),
});
const nodeArb = fc.record({
  name: fc.constantFrom('n1', 'n2', 'n3', 'n4'),
  reachable: fc.boolean(),
  generation: fc.nat(),
  domains: fc.array(domainArb, { maxLength: 4 }),
});

describe('eligibility', () => {
  test('a domain accepts exactly its own class, only when reachable, online, not switching image and in an accepting state', () => {
    fc.assert(
      fc.property(nodeArb, (n: NodeSnapshot) => {
        for (const d of n.domains) {
          const v = vnodeValues(n, d);
          const should = n.reachable && !d.offline && !d.pendingImage && ACCEPTING.includes(d.state);
          expect(v.magrathea).toBe(should ? d.class : 'none');
          expect(v.rank > 0).toBe(should);
          if (!n.reachable) expect(v.state).toBe('unreachable');
          if (n.reachable && !KNOWN_STATES.has(d.state)) expect(v.state).toBe('unknown');
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('a domain switching image says so', () => {
    const e = eligibility({
      class: 'normal',
      state: 'running',
      offline: false,
      preemptedCpuSeconds: 0,
      reachable: true,
      pendingImage: 'beta',
    });
    expect(e).toEqual({ accepts: [], token: 'none', rank: 0, reason: 'switching image to beta' });
  });

  test('rank order: running (pack) > free > would-preempt; less suffering is preempted first', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e8, noNaN: true }),
        fc.double({ min: 0, max: 1e8, noNaN: true }),
        (a, b) => {
          const f = (state: string, s = 0) =>
            eligibility({ class: 'priority', state, offline: false, preemptedCpuSeconds: s, reachable: true }).rank;
          expect(f('running-priority')).toBeGreaterThan(f('free'));
          expect(f('free')).toBeGreaterThan(f('occupied-would-preempt', 0));
          const [ra, rb] = [f('occupied-would-preempt', a), f('occupied-would-preempt', b)];
          expect(ra).toBeGreaterThan(100);
          expect(ra).toBeLessThanOrEqual(199);
          if (a < b - 1) expect(ra).toBeGreaterThanOrEqual(rb);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('admission and candidates', () => {
  const placedArb = fc
    .array(nodeArb, { maxLength: 6 })
    .map((nodes) =>
      nodes.flatMap((node, i) => node.domains.map((domain, j) => ({ node, domain: domain, vnode: `v${i}-${j}` }))),
    );

  test('admit iff every vnode accepts the class; every refusal names its vnode', () => {
    fc.assert(
      fc.property(placedArb, fc.constantFrom('normal' as const, 'priority' as const), (placed, cls) => {
        const r = admit(cls, placed);
        const ok = placed.every((p) => vnodeValues(p.node, p.domain).magrathea === cls);
        expect(r.admit).toBe(ok);
        expect(r.reasons.length).toBe(placed.filter((p) => vnodeValues(p.node, p.domain).magrathea !== cls).length);
      }),
      { numRuns: 1000 },
    );
    expect(admit('normal', [{ vnode: 'ghost', missing: true }])).toEqual({
      admit: false,
      reasons: ['ghost: not a Magrathea vnode known to this filter'],
    });
  });

  test('candidates: only accepting vnodes, sorted by rank, never an unreachable node', () => {
    fc.assert(
      fc.property(placedArb, fc.constantFrom('normal' as const, 'priority' as const), (placed, cls) => {
        const c = candidates(cls, placed);
        for (const x of c) {
          expect(x.node.reachable).toBe(true);
          expect(x.eligibility.accepts).toEqual([cls]);
        }
        for (let i = 1; i < c.length; i++)
          expect(c[i - 1]!.eligibility.rank).toBeGreaterThanOrEqual(c[i]!.eligibility.rank);
        expect(c.length).toBe(placed.filter((p) => vnodeValues(p.node, p.domain).magrathea === cls).length);
      }),
      { numRuns: 1000 },
    );
  });
});
