/** The trace replay's pure parts (bench/sim): the event heap and the PBS stand-in's placement rules. */
import { Heap } from '../../bench/sim/event-heap';
import { parseAleaMachines, parseClusters, parseMachines, parseSwf } from '../../bench/sim/swf';
import { queueClassifier } from '../../bench/sim/logs';
import fc from 'fast-check';
import {
  FreeIndex,
  RankOrder,
  candidatesFor,
  chunksFor,
  couldFitOnceSettled,
  domainFor,
  pick,
  room,
  preempts,
  roomAtMost,
} from '../../bench/sim/placement';
import type { SimNode } from '../../bench/sim/placement';
import type { Job } from '../../bench/sim/swf';

function node(name: string, over: Partial<SimNode> = {}): SimNode {
  return {
    name,
    cpus: 8,
    used: { batch: 0, prio: 0 },
    tok: { batch: 'normal', prio: 'priority' },
    rank: { batch: 200, prio: 200 },
    gen: 1,
    ackGen: 1,
    hookPort: 0,
    tokens: { batch: '', prio: '' },
    reservedForPriority: false,
    running: { batch: new Set(), prio: new Set() },
    inflight: 0,
    inflightPrio: 0,
    pendingCpus: { batch: 0, prio: 0 },
    chain: Promise.resolve(),
    settled: null,
    ...over,
  };
}

test('events come out by time, then in the order they were pushed', () => {
  const h = new Heap<string>();
  for (const [t, e] of [
    [5, 'a'],
    [1, 'b'],
    [5, 'c'],
    [0, 'd'],
    [1, 'e'],
  ] as const)
    h.push(t, e);
  const out: string[] = [];
  while (h.size > 0) out.push(h.pop().ev);
  expect(out).toEqual(['d', 'b', 'e', 'a', 'c']);
});

test('chunks, domains, candidates best rank first, and a pick that needs room on distinct nodes', () => {
  expect(chunksFor(6, 8)).toEqual({ count: 1, cpus: 6 });
  expect(chunksFor(20, 8)).toEqual({ count: 3, cpus: 8 });
  const job = { id: 1, line: 1, submit: 0, run: 10, procs: 4, queue: 0, class: 'priority' as const };
  expect(domainFor('magrathea', job)).toBe('prio');
  expect(domainFor('nopriority', job)).toBe('batch');
  const nodes = [
    node('a', { rank: { batch: 350, prio: 100 } }),
    node('b', { rank: { batch: 200, prio: 150 }, reservedForPriority: true }),
    node('c', { gen: 1, ackGen: 2 }), // its last answer is not published yet
    node('d', { tok: { batch: 'none', prio: 'none' } }),
  ];
  expect(candidatesFor(nodes, 'magrathea', 'batch', 'normal', false).map((n) => n.name)).toEqual(['a', 'b']);
  expect(candidatesFor(nodes, 'static', 'prio', 'priority', true).map((n) => n.name)).toEqual(['b']);
  const cands = candidatesFor(nodes, 'magrathea', 'batch', 'normal', false);
  expect(pick(cands, 'batch', { count: 2, cpus: 8 })?.map((n) => n.name)).toEqual(['a', 'b']);
  nodes[0]!.used.batch = 4;
  expect(pick(cands, 'batch', { count: 2, cpus: 8 })).toBeNull();
});

test('the indexed placement finds room exactly when the scan does, in the same rank order', () => {
  const arbNode = fc.record({
    cpus: fc.integer({ min: 1, max: 32 }),
    usedFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    prioFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    rank: fc.integer({ min: -5, max: 5 }),
    tok: fc.constantFrom('normal', 'none'),
    behind: fc.boolean(),
    reserved: fc.boolean(),
  });
  const arbChunk = fc.record({ count: fc.integer({ min: 1, max: 6 }), cpus: fc.integer({ min: 1, max: 40 }) });
  fc.assert(
    fc.property(
      fc.array(arbNode, { minLength: 0, maxLength: 30 }),
      fc.array(arbChunk, { minLength: 1, maxLength: 40 }),
      fc.constantFrom('magrathea' as const, 'static' as const, 'partial' as const),
      (specs, chunks, policy) => {
        const nodes = specs.map((x, i) =>
          node(`n${i}`, {
            cpus: x.cpus,
            used: { batch: Math.floor(x.usedFrac * x.cpus), prio: Math.floor(x.prioFrac * x.cpus) },
            rank: { batch: x.rank, prio: 0 },
            tok: { batch: x.tok, prio: 'priority' },
            ackGen: x.behind ? 2 : 1,
            reservedForPriority: x.reserved,
          }),
        );
        const scan = candidatesFor(nodes, policy, 'batch', 'normal', false);
        const cands = new RankOrder(nodes).candidates(0, policy, 'batch', 'normal', false);
        expect(cands).toEqual(scan);
        const free = new FreeIndex(cands, 'batch', policy);
        // Each chunk that fits is taken as the cycle does (node marked in flight, CPUs used).
        for (const ch of chunks) {
          const chosen = pick(cands, 'batch', ch, policy);
          expect(free.fits(ch)).toBe(chosen !== null);
          for (const n of chosen ?? []) {
            free.take(n);
            n.inflight++;
            n.used.batch += ch.cpus;
          }
        }
        expect(free.total).toBe(cands.filter((n) => n.inflight === 0).length);
      },
    ),
  );
});

test('the rank order is kept until the rank version moves', () => {
  const nodes = [node('a', { rank: { batch: 1, prio: 0 } }), node('b', { rank: { batch: 2, prio: 0 } })];
  const order = new RankOrder(nodes);
  expect(order.sorted('batch', 0).map((n) => n.name)).toEqual(['b', 'a']);
  nodes[0]!.rank.batch = 3;
  expect(order.sorted('batch', 0).map((n) => n.name)).toEqual(['b', 'a']);
  expect(order.sorted('batch', 1).map((n) => n.name)).toEqual(['a', 'b']);
});

test('room for a chunk: per domain with whole-domain preemption; counted over the node under partial', () => {
  const n = node('a', { used: { batch: 5, prio: 2 } });
  expect(room(n, 'batch', 'magrathea')).toBe(3);
  expect(room(n, 'prio', 'magrathea')).toBe(6);
  // Partial: a batch chunk needs CPUs no job holds or is owed; a priority chunk may displace batch work.
  expect(room(n, 'batch', 'partial')).toBe(1);
  expect(room(n, 'prio', 'partial')).toBe(6);
  expect(pick([n], 'batch', { count: 1, cpus: 2 }, 'partial')).toBeNull();
  expect(pick([n], 'batch', { count: 1, cpus: 2 }, 'magrathea')?.map((x) => x.name)).toEqual(['a']);
});

describe('the MetaCentrum cluster table', () => {
  test('a row listing more per-node counts than nodes is corrected, and the warning names the row and its cluster', () => {
    const row = (id: number, nodes: number, cpus: number, perNode: string) =>
      [id, `cluster_${id}`, 3000, 1000, 'Xeon', 'linux', 'p1', nodes, cpus, perNode, '1'].join('\t');
    const { nodes, warnings } = parseClusters([row(0, 2, 16, '8,8'), row(1, 2, 16, '8,8,8')].join('\n'));
    expect(nodes.length).toBe(4);
    expect(nodes.reduce((s, n) => s + n.cpus, 0)).toBe(32);
    expect(warnings).toEqual([
      {
        line: 2,
        message:
          'the row of cluster_1 lists 3 per-node CPU counts for its 2 nodes; the first 2 are used (16 CPUs; the row says 16)',
      },
    ]);
  });
});

describe('SWF from other tools and machine tables', () => {
  const line = (fields: (string | number)[]) => fields.join(' ');
  const std: (string | number)[] = [7, 100, 3, 50, 4, -1, -1, 4, -1, -1, 1, 12, 3, -1, 2, -1, -1, -1];

  test('extra fields are ignored, names are taken in the text fields, numbers are still required elsewhere', () => {
    const withNames = [...std];
    withNames[0] = 8;
    withNames[11] = 'alice';
    withNames[12] = 'physics';
    withNames[13] = './sim';
    withNames[14] = 'short';
    withNames[15] = 'partA';
    const text = [
      '; Queue: 2 interactive',
      line([...std, 'x', 42]),
      line(withNames),
      line(std.slice(0, 17)),
      line(std.map((v, k) => (k === 4 ? 'four' : v))),
      line(std.map((v, k) => (k === 16 ? 'prev' : v))),
    ].join('\n');
    const r = parseSwf(text, { classify: queueClassifier(['interactive', 'short']) });
    expect(r.jobs.map((j) => [j.line, j.queue, j.class, j.procs])).toEqual([
      [2, 2, 'priority', 4],
      [3, 'short', 'priority', 4],
    ]);
    expect(r.bad).toEqual([
      { line: 4, message: 'expected at least 18 fields, found 17' },
      { line: 5, message: 'field 5 is not a number: "four"' },
      { line: 6, message: 'field 17 is not a number: "prev"' },
    ]);
    expect(parseSwf(text, { classify: queueClassifier(['9']) }).jobs.every((j) => j.class === 'normal')).toBe(true);
  });

  test('job numbers are unique and processor counts whole, else the line is bad; times may have fractions', () => {
    const at = (over: Record<number, string | number>) => line(std.map((v, k) => over[k] ?? v));
    const text = [
      at({ 1: '100.25', 3: '50.5' }),
      at({ 4: '4.5' }),
      at({ 0: 8, 4: -1, 7: '2.5' }),
      at({ 0: '9.5' }),
      at({ 2: 0 }),
      at({ 0: 8 }),
    ].join('\n');
    const r = parseSwf(text);
    expect(r.jobs.map((j) => [j.id, j.submit, j.run, j.procs])).toEqual([
      [7, 100.25, 50.5, 4],
      [8, 100, 50, 4],
    ]);
    expect(r.bad).toEqual([
      { line: 2, message: 'field 5 is not a whole number: "4.5"' },
      { line: 3, message: 'field 8 is not a whole number: "2.5"' },
      { line: 4, message: 'field 1 is not a whole number: "9.5"' },
      { line: 5, message: 'job number 7 is used twice (first on line 1)' },
    ]);
  });

  test('an Alea .machines table: nodes per cluster, bad rows reported; the format is told by name or shape', () => {
    const alea = '# id name nodes cpus\n0 zewura 2 80 2100 64000\n1 bad-row 3\n2 minos 1 8\n3 minos 2 8\n4 x 0 8\n';
    const r = parseAleaMachines(alea);
    expect(r.nodes).toEqual([
      { name: 'zewuran0', cpus: 80 },
      { name: 'zewuran1', cpus: 80 },
      { name: 'minosn0', cpus: 8 },
    ]);
    expect(r.bad.map((b) => b.line)).toEqual([3, 5, 6]);
    expect(parseMachines(alea, 'site.txt').format).toBe('alea');
    const mwf = '0\tc0\t1500\t48000000\tItanium2\tlinux\tp1\t2\t8\t4,4\t1,2\n';
    expect(parseMachines(mwf, 'clusters.txt')).toMatchObject({
      format: 'metacentrum',
      nodes: [{ cpus: 4 }, { cpus: 4 }],
    });
    expect(parseMachines(mwf, 'x.machines').format).toBe('alea');
  });
});

test('waiting for busy nodes is worth it only when their most room could place a queued job', () => {
  const job = (procs: number): Job => ({ procs }) as Job;
  // a: usable, full; b: busy (an answer outstanding), 2 CPUs free now and a 4-CPU start in flight.
  const a = node('a', { used: { batch: 8, prio: 0 } });
  const b = node('b', { used: { batch: 6, prio: 0 }, inflight: 1, pendingCpus: { batch: 4, prio: 0 } });
  const usable = (n: SimNode): boolean => n.inflight === 0 && n.gen >= n.ackGen;
  expect(roomAtMost(b, 'batch', 'magrathea')).toBe(6);
  const fits = (jobs: Job[], nodes = [a, b], policy: 'magrathea' | 'static' = 'magrathea'): boolean =>
    couldFitOnceSettled(nodes, usable, policy, 'batch', 'normal', false, jobs, 8);
  expect(fits([job(6)])).toBe(true); // if b's start is refused
  expect(fits([job(7)])).toBe(false); // no answer can free 7 CPUs anywhere
  expect(fits([job(7), job(2)])).toBe(true); // a later queued job may fit
  expect(fits([job(12)])).toBe(false); // two whole nodes: a is full
  // Nothing busy: waiting cannot help (the cycle saw every node).
  expect(fits([job(1)], [a])).toBe(false);
  // A usable node publishing another token does not count; a busy one may publish the right one.
  const c = node('c', { tok: { batch: 'none', prio: 'priority' } });
  expect(fits([job(1)], [a, c])).toBe(false);
  c.ackGen = 2;
  expect(fits([job(8)], [a, c])).toBe(true);
  // Static partitioning: a node reserved for priority work never takes a batch job.
  c.reservedForPriority = true;
  expect(fits([job(1)], [a, c], 'static')).toBe(false);
  // Partial: a batch chunk counts every CPU held on the node; a refused priority start gives them back too.
  const d = node('d', { used: { batch: 2, prio: 4 }, inflight: 1, pendingCpus: { batch: 0, prio: 4 } });
  expect(roomAtMost(d, 'batch', 'partial')).toBe(6);
  expect(roomAtMost(d, 'prio', 'partial')).toBe(8);
});

test('a priority chunk preempts where batch work runs (whole domain) or where it needs batch CPUs (partial)', () => {
  const n = node('a', { used: { batch: 3, prio: 2 } });
  expect(preempts(n, 'prio', 1, 'magrathea')).toBe(true);
  expect(preempts(node('b'), 'prio', 8, 'magrathea')).toBe(false);
  expect(preempts(n, 'prio', 3, 'partial')).toBe(false); // 3 + 2 + 3 = 8 CPUs: fits beside the batch jobs
  expect(preempts(n, 'prio', 4, 'partial')).toBe(true);
  expect(preempts(n, 'batch', 8, 'magrathea')).toBe(false);
  for (const policy of ['static', 'nopriority'] as const) expect(preempts(n, 'prio', 8, policy)).toBe(false);
});
