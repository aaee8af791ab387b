/** ClusterView and Publisher with a recording qmgr (no node daemons). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import type { NodeEventMessage } from '@magrathea/common';
import type { NodeChange } from '../src/service/cluster-view';
import { ClusterView } from '../src/service/cluster-view';
import { admitJob } from '../src/service/admission';
import { compileFilterConfig } from '../src/service/config';
import { Metrics } from '../src/service/metrics';
import { Publisher } from '../src/service/publisher';
import { jobMsg } from '../../../test/helpers/messages';
import { domainMessage } from './domain-message';

const QMGR = path.resolve(__dirname, '../../../test/fixtures/fake-qmgr.js');

const domain = domainMessage;
const snapshot = (gen: number, states: Record<string, string>, name = 'n1'): NodeEventMessage =>
  ({
    generation: String(gen),
    snapshot: {
      name,
      generation: String(gen),
      domains: Object.entries(states).map(([d, s]) => domain(d, s, gen, d === 'priv' ? 'priority' : 'normal')),
    },
  }) as unknown as NodeEventMessage;
const change = (gen: number, states: Record<string, string>): NodeEventMessage => ({
  generation: String(gen),
  change: {
    cause: 't',
    domain: 'meta',
    job_id: '',
    at_ms: String(Date.now()),
    domains: Object.entries(states).map(([d, s]) => domain(d, s, gen, d === 'priv' ? 'priority' : 'normal')),
    job_changes: [],
  },
});

function setup(pbs: Record<string, unknown> = {}, nodes = [{ name: 'n1', address: '127.0.0.1:1' }]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-pub-'));
  const log = path.join(dir, 'q.log');
  // Jest sandboxes process.env, so the recording qmgr gets its log path from a wrapper.
  const qmgr = path.join(dir, 'qmgr');
  fs.writeFileSync(qmgr, `#!/bin/sh\nFAKE_QMGR_LOG='${log}' exec '${process.execPath}' '${QMGR}' "$@"\n`, {
    mode: 0o755,
  });
  const cfg = compileFilterConfig({
    nodes,
    pbs: { qmgr, batchDelayMs: 5, ...pbs },
  });
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  const metrics = new Metrics();
  const view = new ClusterView(cfg, { logger, metrics, now: () => Date.now() });
  const publisher = new Publisher(cfg.pbs!, { logger, metrics, now: () => Date.now() });
  view.subscribe(publisher.onView);
  const batches = () =>
    fs.existsSync(log)
      ? fs
          .readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { t: number; lines: string[] })
      : [];
  return { dir, view, publisher, metrics, lines, batches };
}

describe('ClusterView', () => {
  test('a change out of order asks for a snapshot; an unknown state is counted and published as accepting nothing', async () => {
    const { view, metrics, publisher, batches, dir } = setup();
    expect(view.apply('n1', change(5, { meta: 'free' }))).toBe(false); // no snapshot yet
    expect(view.apply('n1', snapshot(5, { meta: 'free', priv: 'free' }))).toBe(true);
    expect(view.apply('n1', change(5, { meta: 'occupied' }))).toBe(false); // not after 5
    expect(view.apply('n1', change(4, { meta: 'occupied' }))).toBe(false);
    expect((await metrics.generationBackwards.get()).values[0]?.value).toBe(3);
    expect(view.apply('n1', change(6, { meta: 'teleporting' }))).toBe(true);
    expect((await metrics.unknownStates.get()).values[0]?.value).toBe(1);
    await publisher.idle();
    expect(publisher.publishedValues('n1-meta')).toMatchObject({ magrathea: 'none', state: 'unknown' });
    expect(
      batches()
        .flatMap((b) => b.lines)
        .some((l) => l.startsWith('set node n1-meta resources_available.magrathea = none')),
    ).toBe(true);
    publisher.stop();
    fs.rmSync(dir, { recursive: true });
  });

  test('an unreachable node accepts nothing; a resumed watch makes it accept again without a snapshot', async () => {
    const { view, publisher, dir } = setup();
    view.apply('n1', snapshot(3, { meta: 'free', priv: 'free' }));
    view.markUnreachable('n1', 'connection refused');
    await publisher.idle();
    expect(publisher.publishedValues('n1-priv')).toMatchObject({ magrathea: 'none', state: 'unreachable' });
    view.markReachable('n1');
    await publisher.idle();
    expect(publisher.publishedValues('n1-priv')).toMatchObject({ magrathea: 'priority', state: 'free' });
    publisher.stop();
    fs.rmSync(dir, { recursive: true });
  });
});

describe('ClusterView: a daemon that names another node', () => {
  test("another configured node's daemon at this node's address is not taken; another host name is, with one warning", async () => {
    const nodes = [
      { name: 'n1', address: '127.0.0.1:1' },
      { name: 'n2', address: '127.0.0.1:2' },
    ];
    const { view, metrics, publisher, lines, dir } = setup({}, nodes);
    try {
      const refusedLines = () =>
        lines.filter((l) => l.msg === 'node daemon is another configured node; its reports are not taken');
      // Never synced: n2's daemon answers at n1's address.
      expect(view.apply('n1', snapshot(4, { meta: 'free', priv: 'free' }, 'n2'))).toBe(true);
      expect(view.nodes.get('n1')).toMatchObject({ synced: false, reachable: false });
      expect(view.nodes.get('n1')?.error).toContain('says it is node n2');
      expect(view.apply('n1', change(5, { meta: 'occupied' }))).toBe(true); // not taken either
      expect(view.nodes.get('n1')).toMatchObject({ synced: false, reachable: false });
      expect(view.apply('n1', snapshot(5, { meta: 'free', priv: 'free' }, 'n2'))).toBe(true);
      expect(refusedLines()).toHaveLength(1); // once per name, not per snapshot
      expect((await metrics.wrongNode.get()).values[0]?.value).toBe(2);
      await publisher.idle();
      expect(publisher.publishedValues('n1-meta')).toBeUndefined();
      // Its own daemon: taken.
      expect(view.apply('n1', snapshot(7, { meta: 'free', priv: 'free' }))).toBe(true);
      await publisher.idle();
      expect(publisher.publishedValues('n1-meta')).toMatchObject({ magrathea: 'normal', state: 'free' });
      // Synced, then the address leads to n2's daemon: n1 accepts nothing, its last view kept.
      expect(view.apply('n1', snapshot(8, { meta: 'occupied', priv: 'free' }, 'n2'))).toBe(true);
      await publisher.idle();
      expect(publisher.publishedValues('n1-meta')).toMatchObject({ magrathea: 'none', state: 'unreachable' });
      expect(refusedLines()).toHaveLength(2);
      // A name no node is configured with (a daemon's default FQDN host name): taken, warned once.
      expect(view.apply('n1', snapshot(9, { meta: 'free', priv: 'free' }, 'n1.example.org'))).toBe(true);
      expect(view.apply('n1', snapshot(10, { meta: 'free', priv: 'free' }, 'n1.example.org'))).toBe(true);
      await publisher.idle();
      expect(publisher.publishedValues('n1-meta')).toMatchObject({ magrathea: 'normal', state: 'free' });
      expect(
        lines.filter((l) => l.msg === 'node daemon reports another node name; taken as the configured node'),
      ).toHaveLength(1);
    } finally {
      publisher.stop();
      fs.rmSync(dir, { recursive: true });
    }
  });
});

describe('ClusterView: converted once, before/after to subscribers, a vnode index for Admit', () => {
  const event = (gen: number, kind: 'snapshot' | 'change', domains: object[]): NodeEventMessage =>
    (kind === 'snapshot'
      ? { generation: String(gen), snapshot: { name: 'n1', generation: String(gen), domains } }
      : {
          generation: String(gen),
          change: { cause: 't', domain: 'meta', job_id: '', at_ms: '1000', domains },
        }) as unknown as NodeEventMessage;
  const viewAt = (now: { v: number }) => {
    const cfg = compileFilterConfig({ nodes: [{ name: 'n1', address: '127.0.0.1:1' }] });
    const view = new ClusterView(cfg, {
      logger: pino({ level: 'silent' }),
      metrics: new Metrics(),
      now: () => now.v,
      mono: () => now.v,
    });
    const seen: NodeChange[] = [];
    view.subscribe((c) => seen.push(c));
    return { view, seen };
  };

  test('subscribers get the changed domains with their converted entries before and after', () => {
    const { view, seen } = viewAt({ v: 0 });
    view.apply('n1', event(1, 'snapshot', [domain('meta', 'free', 1), domain('priv', 'free', 1, 'priority')]));
    const preempted = { jobs: [{ id: '7.pbs' }], stored_state: 'preempted' };
    view.apply('n1', event(2, 'change', [domain('meta', 'preempted', 2, 'normal', preempted)]));
    const last = seen.at(-1)!;
    expect(last.commitAtMs).toBe(1000);
    expect(last.domains).toHaveLength(1);
    expect(last.domains[0]!.before!.snapshot.state).toBe('free');
    expect(last.domains[0]!.after).toMatchObject({
      vnode: 'n1-meta',
      storedState: 'preempted',
      jobIds: ['7.pbs'],
      snapshot: { state: 'preempted' },
    });
  });

  test('Admit reads the vnode index; a flap hold counts only until it ends', () => {
    const now = { v: 1_000 };
    const { view } = viewAt(now);
    const held = { held_until_ms: '5000' };
    view.apply(
      'n1',
      event(1, 'snapshot', [domain('meta', 'free', 1, 'normal', held), domain('priv', 'free', 1, 'priority')]),
    );
    expect(admitJob(view, 'normal', ['n1-meta']).admit).toBe(false);
    expect(admitJob(view, 'priority', ['n1-priv']).admit).toBe(true);
    expect(admitJob(view, 'normal', ['n9-meta']).reasons).toEqual([
      'n9-meta: not a Magrathea vnode known to this filter',
    ]);
    now.v = 5_001;
    expect(admitJob(view, 'normal', ['n1-meta']).admit).toBe(true);
    // A snapshot without the domain drops its vnode from the index.
    view.apply('n1', event(2, 'snapshot', [domain('priv', 'free', 2, 'priority')]));
    expect(admitJob(view, 'normal', ['n1-meta']).admit).toBe(false);
    expect(view.allPlaced().map((p) => p.vnode)).toEqual(['n1-priv']);
  });
});

describe('ClusterView: job lists from slim changes', () => {
  const cfg = () => compileFilterConfig({ nodes: [{ name: 'n1', address: '127.0.0.1:1' }] });
  const job = (id: string) => jobMsg(id);
  const slim = (gen: number, name: string, jc: object[]): NodeEventMessage =>
    ({
      generation: String(gen),
      change: {
        cause: 't',
        domain: name,
        job_id: '',
        at_ms: '0',
        domains: [domain(name, 'running-preemptible', gen, 'normal', { jobs_omitted: true })],
        job_changes: jc,
      },
    }) as unknown as NodeEventMessage;

  test('added, removed and cleared are applied onto the snapshot; the detail carries the whole list', () => {
    const view = new ClusterView(cfg(), { logger: pino({ level: 'silent' }), metrics: new Metrics(), now: () => 0 });
    const jobsOf = () => [...view.nodes.get('n1')!.domains.get('meta')!.jobIds];
    view.apply('n1', {
      generation: '1',
      snapshot: {
        name: 'n1',
        generation: '1',
        domains: [domain('meta', 'running-preemptible', 1, 'normal', { jobs: [job('1.s')] })],
      },
    } as unknown as NodeEventMessage);
    view.apply(
      'n1',
      slim(2, 'meta', [{ domain: 'meta', added: [job('2.s'), job('3.s')], removed: [], cleared: false }]),
    );
    expect(jobsOf()).toEqual(['1.s', '2.s', '3.s']);
    view.apply('n1', slim(3, 'meta', [{ domain: 'meta', added: [], removed: ['2.s'], cleared: false }]));
    expect(jobsOf()).toEqual(['1.s', '3.s']);
    expect(
      view.nodes
        .get('n1')!
        .domains.get('meta')!
        .message.jobs.map((j) => j.id),
    ).toEqual(['1.s', '3.s']);
    view.apply('n1', slim(4, 'meta', [{ domain: 'meta', added: [], removed: [], cleared: true }]));
    expect(jobsOf()).toEqual([]);
    // A slim record without job changes keeps the list it had.
    view.apply('n1', slim(5, 'meta', [{ domain: 'meta', added: [job('9.s')], removed: [], cleared: false }]));
    view.apply('n1', slim(6, 'meta', []));
    expect(jobsOf()).toEqual(['9.s']);
  });
});

describe('ClusterView: what a daemon says is untrusted', () => {
  test('bad names, a vnode of another node, more than 64 domains, non-finite numbers and odd job ids are not taken', () => {
    const c = compileFilterConfig({
      nodes: [
        { name: 'a', address: '127.0.0.1:1', vnodes: { meta: 'pbs-a1' } },
        { name: 'b', address: '127.0.0.1:2' },
      ],
      vnodeTemplate: '{domain}',
    });
    const metrics = new Metrics();
    const view = new ClusterView(c, { logger: pino({ level: 'silent' }), metrics, now: () => 0 });
    const snap = (node: string, domains: object[]) =>
      view.apply(node, {
        generation: '1',
        snapshot: { name: node, generation: '1', domains },
      } as unknown as NodeEventMessage);
    snap('a', [domain('meta', 'free', 1), domain('shared', 'free', 1)]);
    snap('b', [
      domain('pbs-a1', 'free', 1), // a's configured vnode
      domain('shared', 'free', 1), // a's reported vnode
      domain('x\nset server scheduling = false', 'free', 1),
      domain('nan', 'occupied-would-preempt', 1, 'priority', { preempted_cpu_seconds: NaN }),
      domain('jobs', 'running', 1, 'normal', {
        jobs: [{ id: '-x' }, { id: '5.s' }, { id: 'a b' }, { id: 'y'.repeat(300) }],
      }),
      ...Array.from({ length: 100 }, (_, i) => domain(`d${i}`, 'free', 1)),
    ]);
    const b = view.nodes.get('b')!;
    expect(b.domains.size).toBe(64);
    expect(b.domains.has('pbs-a1')).toBe(false);
    expect(b.domains.has('shared')).toBe(false);
    expect(view.placed('shared')!.node.name).toBe('a');
    expect(view.placed('pbs-a1')!.node.name).toBe('a');
    expect(b.domains.get('nan')!.snapshot.preemptedCpuSeconds).toBe(0);
    expect(b.domains.get('jobs')!.jobIds).toEqual(['-x', '5.s']);
  });
});

describe('Publisher', () => {
  test('a rate-limited scheduler kick never holds back vnode updates; the owed kick is sent later', async () => {
    // Order, not elapsed time: an update held back with the owed kick would share its batch.
    const { view, publisher, batches, dir } = setup({ kickMinIntervalMs: 5000 });
    const waitFor = async (n: number) => {
      for (let i = 0; batches().length < n; i++) {
        if (i > 600) throw new Error(`only ${batches().length} qmgr batches, waited for ${n}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      view.apply('n1', snapshot(1, { meta: 'occupied', priv: 'free' }));
      await publisher.idle();
      expect(batches()[0]!.lines.at(-1)).toBe('set server scheduling = true');
      view.apply('n1', change(2, { meta: 'free' })); // opens capacity again, kick rate-limited
      await waitFor(2);
      expect(batches()[1]!.lines).toEqual([
        expect.stringMatching(/^set node n1-meta resources_available\.magrathea = normal/),
      ]);
      // The owed kick now waits on a timer; a further update must not wait with it.
      view.apply('n1', change(3, { egee: 'free' }));
      await waitFor(3);
      expect(batches()[2]!.lines).toEqual([expect.stringMatching(/^set node n1-egee /)]);
      await publisher.idle(); // the owed kick's timer
      expect(
        batches()
          .slice(3)
          .flatMap((b) => b.lines),
      ).toEqual(['set server scheduling = true']);
    } finally {
      publisher.stop();
      fs.rmSync(dir, { recursive: true });
    }
  }, 60_000);

  test('coalescing: only the newest value of a vnode is written, and unchanged values are not rewritten', async () => {
    const { view, publisher, batches, dir } = setup({ batchDelayMs: 50 });
    view.apply('n1', snapshot(1, { meta: 'free', priv: 'free' }));
    view.apply('n1', change(2, { meta: 'running-preemptible', priv: 'occupied-would-preempt' }));
    view.apply('n1', change(3, { meta: 'free', priv: 'free' }));
    await publisher.idle();
    const lines = batches().flatMap((b) => b.lines.filter((l) => l.startsWith('set node')));
    expect(lines.filter((l) => l.includes('n1-meta'))).toHaveLength(1);
    expect(lines.find((l) => l.includes('n1-meta'))).toMatch(/magrathea_state = free, .*\(gen 3\)/);
    publisher.stop();
    fs.rmSync(dir, { recursive: true });
  });
  test('CPU-counting mode: each vnode gets resources_available.magrathea_cpus (0 where it accepts nothing); exclusive mode writes none', async () => {
    const { view, publisher, batches, dir } = setup();
    const counting = (gen: number, free: Record<string, number>, states: Record<string, string>): NodeEventMessage =>
      ({
        generation: String(gen),
        snapshot: {
          name: 'n1',
          generation: String(gen),
          cpu_counting: true,
          cpus: 40,
          domains: Object.entries(states).map(([d, st]) =>
            domainMessage(d, st, gen, d === 'priv' ? 'priority' : 'normal', { cpus_free: free[d] }),
          ),
        },
      }) as unknown as NodeEventMessage;
    const setNode = () => batches().flatMap((b) => b.lines.filter((l) => l.startsWith('set node')));
    try {
      view.apply('n1', counting(1, { meta: 24, priv: 40 }, { meta: 'running-preemptible', priv: 'free' }));
      await publisher.idle();
      expect(setNode().find((l) => l.startsWith('set node n1-meta '))).toMatch(
        /, resources_available\.magrathea_cpus = 24$/,
      );
      expect(setNode().find((l) => l.startsWith('set node n1-priv '))).toMatch(
        /, resources_available\.magrathea_cpus = 40$/,
      );
      // A new count is a new value; a vnode that accepts nothing offers no CPUs, whatever the daemon says.
      view.apply('n1', counting(2, { meta: 0, priv: 12 }, { meta: 'occupied', priv: 'down' }));
      await publisher.idle();
      expect(
        setNode()
          .filter((l) => l.startsWith('set node n1-priv '))
          .pop(),
      ).toMatch(/magrathea_cpus = 0$/);
      expect(
        setNode()
          .filter((l) => l.startsWith('set node n1-meta '))
          .pop(),
      ).toMatch(/magrathea_cpus = 0$/);
      // Restarted in exclusive mode: no CPU count at all.
      view.apply('n1', snapshot(3, { meta: 'free', priv: 'free' }));
      await publisher.idle();
      expect(
        setNode()
          .filter((l) => l.startsWith('set node n1-meta '))
          .pop(),
      ).not.toMatch(/magrathea_cpus/);
    } finally {
      publisher.stop();
      fs.rmSync(dir, { recursive: true });
    }
  });
});
