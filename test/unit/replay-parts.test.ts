/** The trace replay's pure parts (bench/sim): the event heap and the PBS stand-in's placement rules. */
import { Heap } from '../../bench/sim/event-heap';
import { parseClusters } from '../../bench/sim/swf';
import { candidatesFor, chunksFor, domainFor, pick, room } from '../../bench/sim/placement';
import type { SimNode } from '../../bench/sim/placement';

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
