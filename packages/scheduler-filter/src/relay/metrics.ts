/**
 * magrathea-relay's Prometheus metrics (prom-client, a registry of this relay's own) and the
 * small HTTP listener that serves them (`GET /metrics`, with `metrics.listen` in the config).
 * Metric names are listed in docs/filter.md ("Fan-in").
 */
import * as http from 'node:http';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import { ConnectionGuard, guardedHttpServer } from '@magrathea/common';
import { buildInfo } from '../service/metrics';
import type { GuardedHttpServer } from '@magrathea/common';

/** Why the relay read a node again from a snapshot. */
export type RereadReason = 'out_of_order' | 'log_bound' | 'silent' | 'broken';

/** What the gauges read at each scrape. */
export interface RelayGauges {
  /** Nodes whose daemon stream is live, and those lost (or not heard from yet). */
  readonly nodes: () => { live: number; down: number };
  /** Open WatchNodes streams. */
  readonly readers: () => number;
  /** Messages waiting for readers that have not taken them yet, over all readers. */
  readonly queuedMessages: () => number;
  /** Bytes of the changes kept after the nodes' snapshots (what resuming readers are served from). */
  readonly changeBytes: () => number;
}

export class RelayMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  /** Messages taken from the daemons (snapshots, changes, heartbeats). */
  readonly daemonMessages = this.counter(
    'magrathea_relay_daemon_messages_total',
    'Messages read from the daemons (snapshots, changes, heartbeats).',
  );
  /** A live node's daemon stream lost (not the retries while it stays down). */
  readonly nodeLosses = this.counter(
    'magrathea_relay_node_losses_total',
    'Daemon watch streams lost while live (the retries while a node stays down are not counted).',
  );
  readonly silentStreams = this.counter(
    'magrathea_relay_silent_streams_total',
    'Daemon watch streams dropped after their quiet limit with no message, not even a heartbeat.',
  );
  readonly badMessages = this.counter(
    'magrathea_relay_bad_messages_total',
    'Daemon messages that did not decode as NodeEvents (the stream is dropped, nothing is forwarded; oversized or unfinished messages count as broken re-reads).',
  );
  readonly rereads = this.counter(
    'magrathea_relay_rereads_total',
    'Nodes read again from a snapshot, by reason: out_of_order (an event out of generation order), log_bound (the changes since the snapshot passed maxChangesPerNode or maxChangeBytesPerNode), silent (quiet limit), broken (the daemon broke the protocol: a bad, oversized or unfinished message, a bad status, a watch taken and ended with no message).',
    'reason',
    ['out_of_order', 'log_bound', 'silent', 'broken'] satisfies RereadReason[],
  );
  readonly heartbeatsHeldBack = this.counter(
    'magrathea_relay_heartbeats_held_back_total',
    'Daemon heartbeats not passed on to the readers because another of the same node went out less than 100 ms before (a daemon sending them in a loop).',
  );
  readonly readersCut = this.counter(
    'magrathea_relay_readers_cut_total',
    'WatchNodes streams ended because the reader did not keep up (maxQueuedPerReader, maxQueuedBytesPerReader); it resumes.',
  );
  readonly readersRefused = this.counter(
    'magrathea_relay_readers_refused_total',
    'WatchNodes calls refused, by reason: limit (maxStreams, maxStreamsPerClient), auth (certificate), invalid (the request).',
    'reason',
    ['limit', 'auth', 'invalid'],
  );

  /** `version`: the relay's version, exposed as `magrathea_relay_build_info{version} 1`. */
  constructor(gauges: RelayGauges, version = '') {
    buildInfo(this.registry, 'magrathea_relay', 'magrathea-relay', version);
    new Gauge({
      name: 'magrathea_relay_nodes',
      help: 'Nodes of the relay by the state of their daemon stream: live, or down (lost, or not heard from yet).',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const n = gauges.nodes();
        this.set({ state: 'live' }, n.live);
        this.set({ state: 'down' }, n.down);
      },
    });
    this.gauge('magrathea_relay_readers', 'Open WatchNodes streams.', gauges.readers);
    this.gauge(
      'magrathea_relay_reader_queued_messages',
      'Messages waiting for readers, over all open WatchNodes streams.',
      gauges.queuedMessages,
    );
    this.gauge(
      'magrathea_relay_change_bytes',
      'Bytes of the changes kept after the nodes’ snapshots, over all nodes (what resuming readers are served from).',
      gauges.changeBytes,
    );
  }

  /** A counter; with a label, each of `values` is exposed at 0 from the start. */
  private counter<L extends string = never>(
    name: string,
    help: string,
    label?: L,
    values: readonly string[] = [],
  ): Counter<L> {
    const c = new Counter<L>({ name, help, labelNames: label ? [label] : [], registers: [this.registry] });
    for (const v of values) c.inc({ [label!]: v } as Partial<Record<L, string>>, 0);
    return c;
  }

  /** A gauge read at each scrape. */
  private gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** The relay's metrics listener: GET (or HEAD) /metrics; anything else 404 (405 for another method on /metrics). */
export function createMetricsServer(metrics: RelayMetrics, logger: Logger): GuardedHttpServer {
  const log = logger.child({ component: 'metrics' });
  const server = http.createServer({ requestTimeout: 5000, connectionsCheckingInterval: 1000 }, (req, res) => {
    const reply = (status: number, body: string, type: string): void => {
      if (res.headersSent) return;
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const error = (status: number, error: string): void => reply(status, JSON.stringify({ error }), 'application/json');
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return error(404, 'not-found');
    if (req.method !== 'GET' && req.method !== 'HEAD') return error(405, 'method-not-allowed');
    metrics.text().then(
      (text) => reply(200, text, metrics.contentType),
      (err: unknown) => {
        log.error({ err }, 'metrics failed');
        error(500, 'internal error');
      },
    );
  });
  // A relay's metrics have one or two scrapers: small caps, idle connections closed.
  const guard = new ConnectionGuard({ maxConnections: 32, maxPerSource: 8, firstRequestMs: 5000 }, log, {
    what: 'relay metrics HTTP',
    evictIdle: true,
  });
  return guardedHttpServer(server, guard);
}
