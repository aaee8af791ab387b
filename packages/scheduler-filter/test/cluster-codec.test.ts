/** The node-view codec writes exactly what proto-loader's serializer writes, and its kept domain bytes follow the message objects. */
import fc from 'fast-check';
import { loadPackageDefinition } from '@magrathea/common';
import { ClusterViewCodec } from '../src/service/cluster-codec';

type Serializer = (v: unknown) => Buffer;
const def = loadPackageDefinition() as unknown as Record<
  string,
  Record<string, { responseSerialize: Serializer; responseDeserialize: (b: Buffer) => unknown }>
>;
const cluster = def['magrathea.v1.ClusterService'] as (typeof def)[string];
const watch = cluster.WatchCluster!;
const list = cluster.ListNodes!;

const int64 = fc.oneof(fc.nat(), fc.maxSafeNat(), fc.nat().map(String));
const text = fc.string({ unit: 'grapheme', maxLength: 12 });
const job = fc.record({
  id: text,
  preemptible: fc.boolean(),
  cpus: fc.nat(64),
  started_at_ms: int64,
  preempted_seconds: fc.double({ noNaN: true, noDefaultInfinity: true }),
  suspended: fc.boolean(),
  preemptions: fc.nat(),
});
const domain = fc.record(
  {
    name: text,
    domain_class: fc.constantFrom('normal', 'priority'),
    state: fc.constantFrom('free', 'running', 'occupied', 'preempted', 'down', 'down-bootable', 'frozen'),
    stored_state: fc.constantFrom('free', 'running', 'preempted', 'down'),
    generation: int64,
    since_ms: int64,
    jobs: fc.array(job, { maxLength: 4 }),
    offline: fc.boolean(),
    offline_reason: text,
    preempted_cpu_seconds: fc.double({ noNaN: true, noDefaultInfinity: true }),
    observed: fc.option(
      fc.record({
        power: fc.constantFrom('running', 'paused'),
        memory_bytes: int64,
        cpu_weight: fc.nat(),
        detail: text,
      }),
    ),
    down_reason: text,
    last_release: fc.option(
      fc.record({ at_ms: int64, mode: fc.constantFrom('throttle', 'pause', 'save'), memory_released_bytes: int64 }),
    ),
    held_for_ms: int64,
    job_count: fc.nat(),
    image: text,
    cpus_free: fc.nat(128),
    kept_overlays: fc.array(fc.record({ job_id: text, file: text, bytes: int64, kept_at_ms: int64 }), { maxLength: 2 }),
  },
  { requiredKeys: ['name', 'state'] },
);
const vnode = fc.record(
  {
    vnode: text,
    domain: text,
    magrathea: fc.constantFrom('normal', 'priority', 'none'),
    rank: fc.double({ noNaN: true, noDefaultInfinity: true }),
    reason: text,
    detail: fc.option(domain),
  },
  { requiredKeys: ['vnode'] },
);
const nodeView = fc.record({
  name: text,
  address: text,
  reachable: fc.boolean(),
  last_seen_ms: int64,
  generation: int64,
  error: text,
  since_ms: int64,
  vnodes: fc.array(vnode, { maxLength: 4 }),
});

describe('ClusterViewCodec', () => {
  const codec = new ClusterViewCodec();

  test('a single node, a snapshot and a ListNodes answer are byte-for-byte what proto-loader writes', () => {
    fc.assert(
      fc.property(nodeView, fc.array(nodeView, { maxLength: 5 }), (node, nodes) => {
        expect(codec.clusterEvent({ node })).toEqual(watch.responseSerialize({ node }));
        expect(codec.clusterEvent({ snapshot: { nodes } })).toEqual(watch.responseSerialize({ snapshot: { nodes } }));
        expect(codec.listNodes({ nodes })).toEqual(list.responseSerialize({ nodes }));
      }),
      { numRuns: 150 },
    );
  });

  test('a domain message encoded once is reused; another message object is encoded afresh', () => {
    fc.assert(
      fc.property(nodeView, domain, (node, other) => {
        const first = codec.clusterEvent({ node });
        expect(codec.clusterEvent({ node })).toEqual(first);
        // A new version of each domain is a new object: the answer follows it.
        const changed = { ...node, vnodes: node.vnodes.map((v) => ({ ...v, detail: { ...other } })) };
        expect(codec.clusterEvent({ node: changed })).toEqual(watch.responseSerialize({ node: changed }));
      }),
      { numRuns: 100 },
    );
  });

  test('what a reader decodes is the node view that was encoded', () => {
    const node = {
      name: 'skirit1',
      address: '127.0.0.1:4000',
      reachable: true,
      generation: 7,
      vnodes: [
        {
          vnode: 'skirit1',
          domain: 'meta',
          magrathea: 'normal',
          rank: 3.5,
          reason: 'free',
          detail: { name: 'meta', state: 'free', generation: 7 },
        },
        { vnode: 'skirit1-prio', domain: 'prio', magrathea: 'none', rank: 0, reason: 'occupied', detail: null },
      ],
    };
    const back = watch.responseDeserialize(codec.clusterEvent({ node })) as {
      node: {
        name: string;
        generation: number;
        vnodes: { vnode: string; detail: { state: string; generation: number } | null }[];
      };
    };
    expect(back.node.name).toBe('skirit1');
    expect(Number(back.node.generation)).toBe(7);
    expect(back.node.vnodes.map((v) => v.vnode)).toEqual(['skirit1', 'skirit1-prio']);
    expect(back.node.vnodes[0]?.detail).toMatchObject({ state: 'free', generation: '7' });
    expect(back.node.vnodes[1]?.detail).toBeNull();
  });
});
