/** The status page's parts without a browser: its config, the bounded history, and the coalescing feed. */
import * as http from 'node:http';
import fc from 'fast-check';
import pino from 'pino';
import type { NodeEventMessage } from '@magrathea/common';
import { ClusterView } from '../src/service/cluster-view';
import { compileFilterConfig, FilterConfigError } from '../src/service/config';
import { Metrics } from '../src/service/metrics';
import type { FeedOutput } from '../src/service/status-feed';
import { StatusFeed } from '../src/service/status-feed';
import { StatusHistory } from '../src/service/status-history';
import { createStatusServer } from '../src/service/status-server';
import { domainMessage } from './domain-message';

const NODES = [
  { name: 'n1', address: '127.0.0.1:1' },
  { name: 'n2', address: '127.0.0.1:2' },
];

function problems(doc: unknown): string[] {
  try {
    compileFilterConfig(doc);
  } catch (err) {
    if (err instanceof FilterConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('web: configuration', () => {
  test('off unless enabled; loopback by default', () => {
    expect(compileFilterConfig({ nodes: NODES }).web).toBeNull();
    expect(compileFilterConfig({ nodes: NODES, web: { enabled: false, listen: '127.0.0.1:80' } }).web).toBeNull();
    expect(compileFilterConfig({ nodes: NODES, web: { enabled: true } }).web).toEqual({
      host: '127.0.0.1',
      port: 5682,
      tls: null,
      updateIntervalMs: 150,
      historyPerDomain: 32,
      historyTotal: 200_000,
      maxClients: 32,
    });
  });

  test('beyond loopback only with TLS and client identities; every problem at once', () => {
    expect(problems({ nodes: NODES, web: { enabled: true, listen: '0.0.0.0:5682' } })).toEqual([
      'web.listen: 0.0.0.0 is not a loopback address; serving the page beyond loopback needs web.tls',
    ]);
    expect(
      problems({
        nodes: NODES,
        web: {
          enabled: 'yes',
          listen: 'unix:/x',
          updateIntervalMs: 5,
          tls: { ca: 'ca.pem', cert: 'c.pem', clients: [{ identity: 'a', role: 'root' }] },
          colour: 'red',
        },
      }),
    ).toEqual([
      'web.colour: unknown key (allowed: enabled, listen, tls, updateIntervalMs, historyPerDomain, historyTotal, maxClients)',
      'web.enabled: must be true or false, got "yes"',
      'web.listen: must be HOST:PORT',
      'web.tls.key: is required (a PEM file)',
      'web.tls.clients.0.role: "root" is not one of reader, operator, filter',
      'web.updateIntervalMs: must be an integer from 20 to 10000, got 5',
    ]);
    const cfg = compileFilterConfig(
      {
        nodes: NODES,
        web: {
          enabled: true,
          listen: '0.0.0.0:8443',
          tls: { ca: 'ca.pem', cert: 'c.pem', key: 'c.key', clients: [{ identity: 'ops', role: 'reader' }] },
        },
      },
      '/etc/magrathea',
    );
    expect(cfg.web?.tls).toEqual({
      ca: '/etc/magrathea/ca.pem',
      cert: '/etc/magrathea/c.pem',
      key: '/etc/magrathea/c.key',
      clients: [{ identity: 'ops', role: 'reader' }],
    });
  });
});

function domain(name: string, state: string, gen: number, extra: Record<string, unknown> = {}) {
  return domainMessage(name, state, gen, name === 'priv' ? 'priority' : 'normal', {
    stored_state: state === 'running-priority' ? 'running' : state,
    since_ms: String(1000 + gen),
    ...extra,
  });
}
const snapshot = (node: string, gen: number, domains: object[]): NodeEventMessage =>
  ({
    generation: String(gen),
    snapshot: { name: node, generation: String(gen), domains },
  }) as unknown as NodeEventMessage;
const change = (gen: number, atMs: number, domains: object[], cause = 'start-job', job = ''): NodeEventMessage =>
  ({
    generation: String(gen),
    change: { cause, domain: 'meta', job_id: job, at_ms: String(atMs), domains },
  }) as unknown as NodeEventMessage;

function setup(limits = { perDomain: 32, total: 1000 }) {
  const cfg = compileFilterConfig({ nodes: NODES });
  const clock = { now: 10_000 };
  const view = new ClusterView(cfg, {
    logger: pino({ level: 'silent' }),
    metrics: new Metrics(),
    now: () => clock.now,
  });
  const history = new StatusHistory(limits, () => clock.now);
  view.subscribe(history.onView);
  return { view, history, clock, cfg };
}

describe('StatusHistory', () => {
  test('a start, a preemption with its phases, a resume and an end; uptime exact once the filter saw the boot', () => {
    const { view, history } = setup();
    view.apply('n1', snapshot('n1', 1, [domain('meta', 'down-bootable', 1), domain('priv', 'free', 1)]));
    view.apply('n1', change(2, 2000, [domain('meta', 'free', 2)], 'boot-complete'));
    expect(history.upSince('n1', 'meta')).toEqual({ ms: 1002, exact: true });
    expect(history.upSince('n1', 'priv')).toEqual({ ms: 1001, exact: false });
    const job = {
      id: '1.pbs',
      preemptible: true,
      cpus: 2,
      started_at_ms: '3000',
      preempted_seconds: 0,
      suspended: false,
    };
    view.apply(
      'n1',
      change(3, 3000, [domain('meta', 'running-preemptible', 3, { jobs: [job] })], 'start-job', '1.pbs'),
    );
    const release = {
      at_ms: '4000',
      mode: 'pause',
      memory_released_bytes: '1048576',
      cpu_weight_before: 1024,
      cpu_weight_after: 2,
      phases: [
        { name: 'preempt:meta', millis: 2.5 },
        { name: 'grow:priv', millis: 0.1 },
      ],
    };
    view.apply(
      'n1',
      change(4, 4000, [
        domain('meta', 'preempted', 4, {
          jobs: [{ ...job, suspended: true }],
          last_release: release,
          since_ms: '4000',
        }),
        domain('priv', 'running-priority', 4),
      ]),
    );
    view.apply(
      'n1',
      change(5, 9000, [domain('meta', 'running-preemptible', 5, { jobs: [job], last_release: release })]),
    );
    view.apply('n1', change(6, 9500, [domain('meta', 'free', 6, { last_release: release })], 'end-job', '1.pbs'));
    const t = history.timeline('n1', 'meta');
    expect(t.map((e) => [e.atMs, e.from, e.to, e.cause])).toEqual([
      [10_000, '', 'down-bootable', ''],
      [2000, 'down-bootable', 'free', 'boot-complete'],
      [3000, 'free', 'running-preemptible', 'start-job'],
      [4000, 'running-preemptible', 'preempted', 'start-job'],
      [9000, 'preempted', 'running-preemptible', 'start-job'],
      [9500, 'running-preemptible', 'free', 'end-job'],
    ]);
    expect(t[0]!.notes).toContain('first seen by this filter');
    expect(t[2]!.jobsStarted).toEqual(['1.pbs']);
    expect(t[3]!.release).toEqual({
      atMs: 4000,
      mode: 'pause',
      memoryReleasedBytes: 1048576,
      cpuWeightBefore: 1024,
      cpuWeightAfter: 2,
      phases: [
        { name: 'preempt:meta', millis: 2.5 },
        { name: 'grow:priv', millis: 0.1 },
      ],
    });
    expect(t[4]!.resumedAfterMs).toBe(5000);
    expect(t[4]!.release).toBeNull(); // the same release as before: not a new preemption
    expect(t[5]!.jobsEnded).toEqual(['1.pbs']);
    expect(t[5]!.jobId).toBe('1.pbs');
  });

  test('reachability is noted once per flip, with the filter’s time', () => {
    const { view, history, clock } = setup();
    view.apply('n1', snapshot('n1', 1, [domain('meta', 'free', 1)]));
    clock.now = 20_000;
    view.markUnreachable('n1', 'connection refused');
    view.markUnreachable('n1', 'still refused');
    clock.now = 30_000;
    view.markReachable('n1');
    const t = history.timeline('n1', 'meta').slice(1);
    expect(t.map((e) => [e.atMs, e.committed, e.notes])).toEqual([
      [20_000, false, ['node daemon unreachable: connection refused']],
      [30_000, false, ['node daemon reachable again']],
    ]);
  });

  test('bounded per domain and in all, whatever happens (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 100, max: 140 }),
        fc.array(fc.tuple(fc.constantFrom('n1', 'n2'), fc.constantFrom('meta', 'egee', 'priv'), fc.boolean()), {
          maxLength: 300,
        }),
        (perDomain, total, steps) => {
          const { view, history } = setup({ perDomain, total });
          const gens: Record<string, number> = { n1: 1, n2: 1 };
          for (const n of ['n1', 'n2']) view.apply(n, snapshot(n, 1, [domain('meta', 'free', 1)]));
          let at = 0;
          for (const [n, d, busy] of steps) {
            const g = ++gens[n]!;
            view.apply(n, change(g, ++at, [domain(d, busy ? 'running' : 'free', g)]));
          }
          let sum = 0;
          for (const n of ['n1', 'n2'])
            for (const d of ['meta', 'egee', 'priv']) {
              const t = history.timeline(n, d);
              expect(t.length).toBeLessThanOrEqual(perDomain);
              for (let i = 1; i < t.length; i++) expect(t[i]!.generation).toBeGreaterThan(t[i - 1]!.generation);
              sum += t.length;
            }
          expect(history.size).toBe(sum);
          expect(history.size).toBeLessThanOrEqual(total);
        },
      ),
    );
  });
});

/** A page's connection, recorded; `full` makes writes report a full buffer. */
function recorder() {
  const events: { name: string; data: { seq: number; nodes: { name: string; domains: { state: string }[] }[] } }[] = [];
  let drain: (() => void) | null = null;
  const out: FeedOutput & { full: boolean; destroyed: boolean; ended: boolean } = {
    full: false,
    destroyed: false,
    ended: false,
    write(chunk) {
      const m = /^event: (\w+)\ndata: (.*)\n\n$/s.exec(chunk);
      if (m) events.push({ name: m[1]!, data: JSON.parse(m[2]!) as (typeof events)[number]['data'] });
      return !this.full;
    },
    onDrain(cb) {
      drain = cb;
    },
    end() {
      this.ended = true;
    },
    destroy() {
      this.destroyed = true;
    },
  };
  return { out, events, drain: () => drain?.() };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('StatusFeed', () => {
  const feedOf = (intervalMs: number, stuckAfterMs = 60_000) => {
    const s = setup();
    s.clock.now = Date.now();
    for (const n of ['n1', 'n2']) s.view.apply(n, snapshot(n, 1, [domain('meta', 'free', 1)]));
    const feed = new StatusFeed(
      s.view,
      s.history,
      { intervalMs, heartbeatMs: 60_000, stuckAfterMs },
      { logger: pino({ level: 'silent' }), now: () => Date.now() },
    );
    return { ...s, feed };
  };

  test('a snapshot first; a thousand changes of one node in a burst go out as one update with its last state', async () => {
    const { view, feed } = feedOf(50);
    const page = recorder();
    feed.add(page.out);
    expect(page.events.map((e) => e.name)).toEqual(['snapshot']);
    expect(page.events[0]!.data.nodes.map((n) => n.name)).toEqual(['n1', 'n2']);
    for (let g = 2; g < 1002; g++) view.apply('n1', change(g, g, [domain('meta', g % 2 ? 'running' : 'free', g)]));
    await wait(120);
    const deltas = page.events.filter((e) => e.name === 'delta');
    expect(deltas).toHaveLength(1);
    expect(deltas[0]!.data.nodes.map((n) => [n.name, n.domains[0]!.state])).toEqual([['n1', 'running']]);
    feed.close();
    expect(page.out.ended).toBe(true);
  });

  test('changes spread over time are sent at most once per interval', async () => {
    const { view, feed } = feedOf(100);
    const page = recorder();
    feed.add(page.out);
    const t0 = Date.now();
    let g = 1;
    while (Date.now() - t0 < 650) {
      view.apply('n2', change(++g, g, [domain('meta', g % 2 ? 'running' : 'free', g)]));
      await wait(5);
    }
    await wait(150);
    const deltas = page.events.filter((e) => e.name === 'delta').length;
    const elapsed = Date.now() - t0;
    expect(deltas).toBeGreaterThanOrEqual(3);
    expect(deltas).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 1);
    feed.close();
  });

  test('a page that does not keep up gets what it missed when it drains, and is cut off when it stays stuck', async () => {
    const { view, feed } = feedOf(20, 200);
    const slow = recorder();
    const fast = recorder();
    feed.add(slow.out);
    feed.add(fast.out);
    slow.out.full = true;
    view.apply('n1', change(2, 2, [domain('meta', 'running', 2)]));
    await wait(60); // written, but the buffer is full now
    view.apply('n2', change(2, 2, [domain('meta', 'running', 2)]));
    await wait(60);
    expect(fast.events.filter((e) => e.name === 'delta')).toHaveLength(2);
    expect(slow.events.filter((e) => e.name === 'delta')).toHaveLength(1);
    slow.out.full = false;
    slow.drain();
    const last = slow.events.at(-1)!;
    expect(last.data.nodes.map((n) => [n.name, n.domains[0]!.state])).toEqual([['n2', 'running']]);
    slow.out.full = true;
    view.apply('n1', change(3, 3, [domain('meta', 'free', 3)]));
    await wait(60);
    view.apply('n1', change(4, 4, [domain('meta', 'running', 4)]));
    await wait(250);
    view.apply('n1', change(5, 5, [domain('meta', 'free', 5)]));
    await wait(60);
    expect(slow.out.destroyed).toBe(true);
    expect(feed.size).toBe(1);
    expect(fast.out.destroyed).toBe(false);
    feed.close();
  });
});

describe('status page listener', () => {
  test('serves the page and its files with a strict policy, 404 for the rest, 405 for writes, the cap on feeds', async () => {
    const s = setup();
    const cfg = compileFilterConfig({ nodes: NODES, web: { enabled: true, listen: '127.0.0.1:0', maxClients: 1 } });
    const feed = new StatusFeed(
      s.view,
      s.history,
      { intervalMs: 50, heartbeatMs: 60_000, stuckAfterMs: 60_000 },
      { logger: pino({ level: 'silent' }), now: Date.now },
    );
    const server = createStatusServer({
      cfg: cfg.web!,
      view: s.view,
      history: s.history,
      feed,
      logger: pino({ level: 'silent' }),
      now: Date.now,
    });
    const port = await server.listen();
    const url = (p: string) => `http://127.0.0.1:${port}${p}`;
    try {
      const index = await fetch(url('/'));
      expect(index.status).toBe(200);
      expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(index.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(await index.text()).toContain('<script type="module" src="/assets/app.js"></script>');
      const js = await fetch(url('/assets/model.js'));
      expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      const again = await fetch(url('/assets/model.js'), { headers: { 'if-none-match': js.headers.get('etag')! } });
      expect(again.status).toBe(304);
      expect((await fetch(url('/assets/../config.ts'))).status).toBe(404);
      expect((await fetch(url('/assets/nope.js'))).status).toBe(404);
      expect((await fetch(url('/'), { method: 'DELETE' })).status).toBe(405);
      // One feed allowed: a second page gets 503 while the first is connected.
      const first = await new Promise<http.IncomingMessage>((resolve) => http.get(url('/api/events'), resolve));
      expect(first.headers['content-type']).toBe('text/event-stream; charset=utf-8');
      expect((await fetch(url('/api/events'))).status).toBe(503);
      first.destroy();
    } finally {
      await server.close(500);
    }
  });
});
