/** The relay's per-node resume bookkeeping (NodeLog, property-tested) and the relay and filter configs. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import fc from 'fast-check';
import { createLogger, parseYamlStrict } from '@magrathea/common';
import { NodeLog } from '../src/relay/node-log';
import type { LogEvent } from '../src/relay/node-log';
import { compileRelayConfig, RelayConfigError } from '../src/relay/config';
import { Relay } from '../src/relay/relay';
import { compileFilterConfig, FilterConfigError } from '../src/service/config';

/** An event is named by its kind and generation ("s5": snapshot at 5, "c6": change 6). */
type Ev = string;
const ev = (kind: LogEvent<Ev>['kind'], generation: number): LogEvent<Ev> => ({
  kind,
  generation,
  event: `${kind[0]}${generation}`,
});

/** A reader that applies events like the filter's view: a change must follow its position exactly. */
class Reader {
  constructor(public pos: number) {}
  apply(events: readonly Ev[]): void {
    for (const e of events) {
      const g = Number(e.slice(1));
      if (e[0] === 's') this.pos = g;
      else if (e[0] === 'c') {
        if (g !== this.pos + 1)
          throw new Error(`change ${g} after ${this.pos}: ${g <= this.pos ? 'duplicate' : 'lost'}`);
        this.pos = g;
      }
    }
  }
}

describe('NodeLog', () => {
  test('nothing before the first snapshot; a reader up to date gets nothing, one behind gets the changes, one before the snapshot gets it', () => {
    const log = new NodeLog<Ev>(10);
    expect(log.since(0)).toBeNull();
    expect(log.accept(ev('change', 3))).toBe('resync');
    expect(log.accept(ev('snapshot', 4))).toBe('stored');
    expect(log.accept(ev('change', 5))).toBe('stored');
    expect(log.accept(ev('change', 6))).toBe('stored');
    expect(log.generation).toBe(6);
    expect(log.since(6)).toEqual([]);
    expect(log.since(5)).toEqual(['c6']);
    expect(log.since(4)).toEqual(['c5', 'c6']);
    expect(log.since(3)).toEqual(['s4', 'c5', 'c6']);
    expect(log.since(0)).toEqual(['s4', 'c5', 'c6']);
    // Past what the relay holds (it restarted, or the daemon's state was replaced): the snapshot.
    expect(log.since(99)).toEqual(['s4', 'c5', 'c6']);
  });

  test('0 asks for a snapshot, even of a node whose snapshot is at generation 0', () => {
    const log = new NodeLog<Ev>(10);
    log.accept(ev('snapshot', 0));
    expect(log.since(0)).toEqual(['s0']);
    log.accept(ev('change', 1));
    log.accept(ev('change', 2));
    expect(log.since(0)).toEqual(['s0', 'c1', 'c2']);
    expect(log.since(1)).toEqual(['c2']);
  });

  test('out of order: a change not after the last one, a heartbeat of another generation', () => {
    const log = new NodeLog<Ev>(10);
    log.accept(ev('snapshot', 4));
    expect(log.accept(ev('change', 4))).toBe('resync');
    expect(log.accept(ev('heartbeat', 4))).toBe('alive');
    expect(log.accept(ev('heartbeat', 5))).toBe('resync');
  });

  test('past maxChanges it wants a snapshot, which replaces the changes', () => {
    const log = new NodeLog<Ev>(2);
    log.accept(ev('snapshot', 1));
    for (const g of [2, 3, 4]) log.accept(ev('change', g));
    expect(log.wantsSnapshot).toBe(true);
    log.accept(ev('snapshot', 4));
    expect(log.wantsSnapshot).toBe(false);
    expect(log.changeCount).toBe(0);
    expect(log.since(3)).toEqual(['s4']);
  });

  test('past maxChangeBytes of changes it wants a snapshot too (a daemon sending changes of megabytes)', () => {
    const log = new NodeLog<Ev>(1000, { maxChangeBytes: 10, sizeOf: (e) => e.length });
    log.accept(ev('snapshot', 1));
    for (const g of [2, 3, 4, 5]) log.accept(ev('change', g));
    expect(log.changeByteCount).toBe(8);
    expect(log.whySnapshot).toBeNull();
    log.accept(ev('change', 6));
    log.accept(ev('change', 7));
    expect(log.whySnapshot).toBe('bytes of changes since the last snapshot past maxChangeBytesPerNode');
    log.accept(ev('snapshot', 7));
    expect(log.wantsSnapshot).toBe(false);
    expect(log.changeByteCount).toBe(0);
  });

  test('property: readers that come and go, through re-reads and compaction, never lose nor repeat a change', () => {
    const op = fc.oneof(
      fc.constant({ t: 'commit' as const }),
      fc.constant({ t: 'heartbeat' as const }),
      fc.constant({ t: 'reread' as const }),
      fc.record({ t: fc.constant('leave' as const), r: fc.nat(3) }),
      fc.record({ t: fc.constant('join' as const), r: fc.nat(3) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.nat(5), fc.array(op, { maxLength: 200 }), (max, start, ops) => {
        const log = new NodeLog<Ev>(max);
        let gen = start;
        const readers = [0, 1, 2, 3].map(() => new Reader(0));
        const connected = [false, false, false, false];
        // What the relay does with every stored event: each connected reader is brought up to date.
        const fanOut = (): void =>
          readers.forEach((r, i) => {
            if (connected[i]) r.apply(log.since(r.pos) ?? []);
          });
        log.accept(ev('snapshot', gen));
        for (const o of ops) {
          if (o.t === 'commit') {
            gen++;
            expect(log.accept(ev('change', gen))).toBe('stored');
            fanOut();
            if (log.wantsSnapshot) {
              log.accept(ev('snapshot', gen));
              fanOut();
            }
          } else if (o.t === 'heartbeat') expect(log.accept(ev('heartbeat', gen))).toBe('alive');
          else if (o.t === 'reread') {
            log.accept(ev('snapshot', gen));
            fanOut();
          } else if (o.t === 'leave') connected[o.r] = false;
          else {
            connected[o.r] = true;
            readers[o.r]!.apply(log.since(readers[o.r]!.pos) ?? []);
          }
          readers.forEach((r, i) => {
            if (connected[i]) expect(r.pos).toBe(gen);
          });
          expect(log.changeCount).toBeLessThanOrEqual(max);
        }
        for (const r of readers) {
          r.apply(log.since(r.pos) ?? []);
          expect(r.pos).toBe(gen);
        }
      }),
    );
  });
});

const problems = (f: () => unknown): string[] => {
  try {
    f();
  } catch (err) {
    if (err instanceof RelayConfigError || err instanceof FilterConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('accepted');
};

describe('relay and filter configs', () => {
  test('relay: the example of docs/filter.md is accepted as written, its bounds at the least allowed', () => {
    const doc = fs.readFileSync(path.join(__dirname, '../../../docs/filter.md'), 'utf8');
    const block = /```yaml\n(listen: 127\.0\.0\.1:5690[\s\S]*?)```/.exec(doc);
    expect(block).not.toBeNull();
    const parsed = parseYamlStrict(block![1]!, 'filter.md');
    if (!parsed.ok) throw new Error(parsed.problems.join('; '));
    const c = compileRelayConfig(parsed.value, '/');
    expect(c.maxChangeBytesPerNode).toBe(16 * 2 ** 20);
    expect(c.metrics).toEqual({ host: '127.0.0.1', port: 5691 });
    expect(c.tls?.clients).toEqual([expect.objectContaining({ identity: 'filter' })]);
    const nodes = [{ name: 'n1', address: 'h:1' }];
    expect(
      compileRelayConfig({ nodes, maxChangeBytesPerNode: 16 * 2 ** 20, maxQueuedBytesPerReader: 17 * 2 ** 20 }),
    ).toMatchObject({ maxChangeBytesPerNode: 16 * 2 ** 20, maxQueuedBytesPerReader: 17 * 2 ** 20 });
    const low = problems(() =>
      compileRelayConfig({ nodes, maxChangeBytesPerNode: 16 * 2 ** 20 - 1, maxQueuedBytesPerReader: 17 * 2 ** 20 - 1 }),
    );
    expect(low).toEqual([
      expect.stringMatching(/^maxChangeBytesPerNode: .*from 16777216/),
      expect.stringMatching(/^maxQueuedBytesPerReader: .*from 17825792/),
    ]);
  });

  test('relay: a blank nodes entry is refused; 60,000 nodes are checked quickly, a duplicate among them found', () => {
    expect(problems(() => compileRelayConfig({ nodes: [{ name: 'n1', address: 'h:1' }, null] }))).toEqual([
      expect.stringMatching(/^nodes\.1: is empty/),
    ]);
    const many = Array.from({ length: 60_000 }, (_, i) => ({ name: `n${i}`, address: `h${i}:1` }));
    // Linear: the quadratic check took 40 s here; no timing assertion, the test's own limit is enough.
    expect(problems(() => compileRelayConfig({ nodes: [...many, { name: 'n7', address: 'x:1' }] }))).toEqual([
      'nodes.60000.name: duplicate node "n7"',
    ]);
  });

  test('relay: reconnect.initialMs above maxMs is refused', () => {
    expect(
      problems(() =>
        compileRelayConfig({ nodes: [{ name: 'n1', address: 'h:1' }], reconnect: { initialMs: 600_000, maxMs: 10 } }),
      ),
    ).toEqual(['reconnect: initialMs (600000) must not be above maxMs (10)']);
  });

  test('relay: defaults, and the nodes in the filter’s format', () => {
    const c = compileRelayConfig({ nodes: [{ name: 'n1', address: '10.0.0.1:5679' }] });
    expect(c).toMatchObject({
      idleConnectionMs: 120_000,
      listen: { host: '127.0.0.1', port: 5690 },
      graceMs: 10_000,
      maxChangesPerNode: 1000,
      maxChangeBytesPerNode: 16 * 2 ** 20,
      maxQueuedBytesPerReader: 64 * 2 ** 20,
      maxStreams: 64,
      maxStreamsPerClient: 16,
      tls: null,
      metrics: null,
      nodes: [{ name: 'n1', address: { kind: 'tcp', host: '10.0.0.1', port: 5679 }, relay: null }],
    });
  });

  test('relay: metrics on an address of its own; beyond loopback only with allowNonLoopback; every mistake located', () => {
    const nodes = [{ name: 'n', address: 'h:1' }];
    expect(compileRelayConfig({ nodes, metrics: { listen: '127.0.0.1:5691' } }).metrics).toEqual({
      host: '127.0.0.1',
      port: 5691,
    });
    expect(compileRelayConfig({ nodes, allowNonLoopback: true, metrics: { listen: '0.0.0.0:5691' } }).metrics).toEqual({
      host: '0.0.0.0',
      port: 5691,
    });
    expect(problems(() => compileRelayConfig({ nodes, metrics: { listen: '0.0.0.0:5691' } }))).toEqual([
      'metrics.listen: 0.0.0.0 is not a loopback address; needs allowNonLoopback: true',
    ]);
    expect(problems(() => compileRelayConfig({ nodes, metrics: {} }))).toEqual([
      'metrics.listen: give the HOST:PORT to serve /metrics on',
    ]);
    expect(problems(() => compileRelayConfig({ nodes, metrics: { listen: 'unix:/run/m.sock', port: 1 } }))).toEqual([
      'metrics.port: unknown key (allowed: listen)',
      expect.stringMatching(/^metrics\.listen: /),
    ]);
    expect(problems(() => compileRelayConfig({ nodes, metrics: '127.0.0.1:5691' }))).toEqual([
      'metrics: must be a mapping, got string',
    ]);
    // A bare `metrics:` is a mistake, not "no metrics"; the RelayService's own port is taken.
    expect(problems(() => compileRelayConfig({ nodes, metrics: null }))).toEqual([
      'metrics: give { listen: HOST:PORT }, or leave metrics out (no metrics listener)',
    ]);
    const own = "metrics.listen: port 5690 is the RelayService's own (listen); give the metrics another port";
    expect(problems(() => compileRelayConfig({ nodes, metrics: { listen: '127.0.0.1:5690' } }))).toEqual([own]);
    expect(
      problems(() => compileRelayConfig({ nodes, allowNonLoopback: true, metrics: { listen: '0.0.0.0:5690' } })),
    ).toEqual([own]);
    expect(compileRelayConfig({ nodes, metrics: { listen: '127.0.0.1:0' } }).metrics).toEqual({
      host: '127.0.0.1',
      port: 0,
    });
  });

  test('a bare tls: is a mistake in the relay, the filter and the status page, not plaintext', () => {
    const nodes = [{ name: 'n', address: '127.0.0.1:1' }];
    const empty = (at: string) => `${at}: is empty: give ca, cert and key, or leave the key out for plaintext`;
    // As YAML parses `tls:` with its children commented out.
    const doc = parseYamlStrict('tls:\n#  ca: /etc/magrathea/ca.pem\n', 't.yaml');
    expect(doc).toEqual({ ok: true, value: { tls: null } });
    const tls = (doc as { value: { tls: null } }).value.tls;
    expect(problems(() => compileRelayConfig({ nodes, tls }))).toEqual([empty('tls')]);
    expect(problems(() => compileFilterConfig({ nodes, tls }))).toEqual([empty('tls')]);
    expect(problems(() => compileFilterConfig({ nodes, web: { enabled: true, tls } }))).toEqual([empty('web.tls')]);
    expect(compileRelayConfig({ nodes }).tls).toBeNull();
    expect(compileFilterConfig({ nodes }).tls).toBeNull();
  });

  test('relay: a metrics port in use fails the start and leaves nothing listening', async () => {
    const freePort = async (): Promise<number> => {
      const s = net.createServer();
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      const port = (s.address() as net.AddressInfo).port;
      await new Promise((r) => s.close(r));
      return port;
    };
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const takenPort = (taken.address() as net.AddressInfo).port;
    const grpcPort = await freePort();
    const relay = new Relay(
      compileRelayConfig({
        listen: `127.0.0.1:${grpcPort}`,
        nodes: [{ name: 'n', address: '127.0.0.1:1' }],
        metrics: { listen: `127.0.0.1:${takenPort}` },
      }),
      { logger: createLogger({ service: 'magrathea-relay', level: 'silent' }) },
    );
    try {
      await expect(relay.start()).rejects.toThrow(`cannot listen on 127.0.0.1:${takenPort} (metrics HTTP)`);
      // The gRPC port it had bound is free again.
      const again = net.createServer();
      await new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.listen(grpcPort, '127.0.0.1', resolve);
      });
      await new Promise((r) => again.close(r));
    } finally {
      await relay.stop(0);
      await new Promise((r) => taken.close(r));
    }
  });

  test('relay: beyond loopback only with tls and allowNonLoopback; tls needs its clients', () => {
    expect(
      problems(() => compileRelayConfig({ listen: '0.0.0.0:5690', nodes: [{ name: 'n', address: 'h:1' }] })),
    ).toEqual(['listen: 0.0.0.0 is not a loopback address; serving beyond loopback needs tls']);
    expect(
      problems(() =>
        compileRelayConfig({
          listen: '0.0.0.0:5690',
          tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' },
          nodes: [{ name: 'n', address: 'h:1' }],
        }),
      ),
    ).toEqual([
      'tls.clients: must list the identities (certificate CN) allowed to read, with their roles',
      'listen: 0.0.0.0 is not a loopback address; needs allowNonLoopback: true',
    ]);
    const ok = compileRelayConfig(
      {
        listen: '0.0.0.0:5690',
        allowNonLoopback: true,
        tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem', clients: [{ identity: 'filter', role: 'filter' }] },
        nodes: [{ name: 'n', address: 'h:1' }],
      },
      '/etc/magrathea',
    );
    expect(ok.tls).toEqual({
      ca: '/etc/magrathea/ca.pem',
      cert: '/etc/magrathea/c.pem',
      key: '/etc/magrathea/k.pem',
      clients: [{ identity: 'filter', role: 'filter' }],
      client: { ca: '/etc/magrathea/ca.pem', cert: '/etc/magrathea/c.pem', key: '/etc/magrathea/k.pem' },
    });
    const two = compileRelayConfig({
      tls: {
        ca: 'ca',
        cert: 'c',
        key: 'k',
        clientCert: 'cc',
        clientKey: 'ck',
        clients: [{ identity: 'f', role: 'filter' }],
      },
      nodes: [{ name: 'n', address: 'h:1' }],
    });
    expect(two.tls?.client).toEqual({
      ca: expect.stringMatching(/\/ca$/),
      cert: expect.stringMatching(/\/cc$/),
      key: expect.stringMatching(/\/ck$/),
    });
    expect(
      problems(() =>
        compileRelayConfig({
          tls: { ca: 'ca', cert: 'c', key: 'k', clientCert: 'cc', clients: [{ identity: 'f', role: 'filter' }] },
          nodes: [{ name: 'n', address: 'h:1' }],
        }),
      ),
    ).toEqual(['tls: give clientCert and clientKey together (or neither: cert and key serve both ways)']);
  });

  test('filter: nodes through a relay or direct; every mistake located', () => {
    const c = compileFilterConfig({
      relays: [{ name: 'rack1', address: '10.0.1.1:5690' }],
      nodes: [
        { name: 'n1', relay: 'rack1' },
        { name: 'n2', address: '10.0.0.2:5679' },
      ],
    });
    expect(c.nodes.map((n) => [n.name, n.relay])).toEqual([
      ['n1', 'rack1'],
      ['n2', null],
    ]);
    expect(c.nodes[0]!.address).toEqual({ kind: 'tcp', host: '10.0.1.1', port: 5690 });
    expect(
      problems(() =>
        compileFilterConfig({
          relays: [
            { name: 'rack1', address: '10.0.1.1:5690' },
            { name: 'rack1', address: '10.0.1.2:5690' },
            { name: 'rack2', address: 'nowhere' },
            { name: 'rack3', address: '10.0.1.3:5690' },
          ],
          nodes: [
            { name: 'n1', relay: 'rack9' },
            { name: 'n2', relay: 'rack1', address: '10.0.0.2:5679' },
            { name: 'n3' },
            { name: 'n4', relay: 'rack1' },
          ],
        }),
      ),
    ).toEqual([
      'relays.1.name: duplicate relay "rack1"',
      'relays.2.address: "nowhere" is not HOST:PORT, [IPv6]:PORT or unix:PATH',
      'nodes.0.relay: no relay "rack9" in relays',
      'nodes.1: give either address (watched directly) or relay, not both',
      'nodes.2.address: is required (HOST:PORT or unix:PATH, or relay: NAME)',
      'relays.3: no node is watched through relay "rack3"',
    ]);
    expect(problems(() => compileFilterConfig({ relays: {}, nodes: [{ name: 'n', address: 'h:1' }] }))).toEqual([
      'relays: must be a list of { name, address }',
    ]);
  });
});
