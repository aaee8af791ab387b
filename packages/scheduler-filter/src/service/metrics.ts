/**
 * The filter's Prometheus metrics (prom-client, in a registry of this filter's own, so several
 * filters can live in one process). Metric names are listed in docs/filter.md.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { KNOWN_STATES } from '../core';
import type { ClusterView } from './cluster-view';

const QUANTILES = [0.5, 0.9, 0.99] as const;

/**
 * A histogram plus exact quantiles over a sliding window of the most recent samples, exposed
 * as the gauge `<name>_window{quantile}` (absent while the window is empty).
 */
export class WindowedHistogram {
  private readonly histogram: Histogram;
  private readonly quantiles: Gauge<'quantile'>;
  private readonly window: number[] = [];

  constructor(
    registry: Registry,
    name: string,
    help: string,
    buckets: readonly number[],
    private readonly windowSize = 10_000,
  ) {
    this.histogram = new Histogram({ name, help, buckets: [...buckets], registers: [registry] });
    const quantile = (q: number): number => this.quantile(q);
    this.quantiles = new Gauge({
      name: `${name}_window`,
      help: `${help} Exact quantiles over the last ${windowSize} samples.`,
      labelNames: ['quantile'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const q of QUANTILES) {
          const v = quantile(q);
          if (!Number.isNaN(v)) this.set({ quantile: String(q) }, v);
        }
      },
    });
  }

  observe(v: number): void {
    this.histogram.observe(v);
    this.window.push(v);
    if (this.window.length > this.windowSize) this.window.shift();
  }

  /** Exact quantile over the recent window (NaN when empty). */
  quantile(q: number): number {
    if (this.window.length === 0) return NaN;
    const s = [...this.window].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
  }
}

/** `<prefix>_build_info{version} 1`: which version of `binary` answers a scrape. */
export function buildInfo(registry: Registry, prefix: string, binary: string, version: string): void {
  new Gauge({
    name: `${prefix}_build_info`,
    help: `Always 1; the label is the running ${binary} version (${binary} --version).`,
    labelNames: ['version'] as const,
    registers: [registry],
  }).set({ version }, 1);
}

/** The filter's metrics registry; the view's gauges are read at each scrape (`attachView`). */
export class Metrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private view: ClusterView | null = null;
  readonly reconnects = this.counter('magrathea_filter_reconnects_total', 'Reconnections to node daemons.');
  readonly silentStreams = this.counter(
    'magrathea_filter_silent_streams_total',
    'Open watch streams to node daemons dropped, and relayed nodes put on their grace, because no message (not even a heartbeat) came within the quiet limit.',
  );
  readonly generationBackwards = this.counter(
    'magrathea_filter_out_of_order_total',
    'Node events whose generation did not follow the last one (re-read from a snapshot).',
  );
  readonly unknownStates = this.counter(
    'magrathea_filter_unknown_states_total',
    'Domains reported in a state this filter does not know.',
  );
  readonly rejectedDomains = this.counter(
    'magrathea_filter_rejected_domains_total',
    'Domains a node daemon reported that the filter did not take (invalid name, too many, a vnode not its own).',
  );
  readonly wrongNode = this.counter(
    'magrathea_filter_wrong_node_total',
    "Snapshots whose daemon named another configured node (that node's address leads elsewhere); not taken.",
  );
  readonly resyncDelays = this.counter(
    'magrathea_filter_resyncs_total',
    'Watches re-read from a snapshot after an event out of order (each waits longer than the last).',
  );
  readonly clusterStreamsRefused = this.counter(
    'magrathea_filter_watch_streams_refused_total',
    'WatchCluster streams refused over a limit.',
  );
  /** Connections refused over a cap, per listener (read at each scrape). */
  private refusedConnections: () => Record<string, number> = () => ({});
  readonly batches = this.counter('magrathea_filter_qmgr_batches_total', 'qmgr batches by result.', ['result']);
  readonly qsig = this.counter('magrathea_filter_qsig_total', 'qsig admin-suspend/admin-resume calls by result.', [
    'signal',
    'result',
  ]);
  readonly vnodeWriteFailures = this.counter(
    'magrathea_filter_vnode_write_failures_total',
    'Vnode values PBS refused (qmgr obj=VNODE errors), by reason (unknown-node, unknown-resource, other).',
    ['reason'],
  );
  readonly reasserted = this.counter(
    'magrathea_filter_reasserted_total',
    'Vnode values found changed behind the filter (a hand qmgr, a mom hook, a server restart) and written again.',
  );
  readonly pbsReads = this.counter('magrathea_filter_pbs_reads_total', 'pbsnodes/qstat reads by command and result.', [
    'command',
    'result',
  ]);
  readonly wakes = this.counter(
    'magrathea_filter_wakes_total',
    'Wake-on-demand boots asked of node daemons for queued jobs, by result (ok, refused, failed).',
    ['result'],
  );
  readonly kicks = this.counter(
    'magrathea_filter_scheduler_kicks_total',
    'Scheduling cycles started after capacity opened.',
  );
  readonly publicationLatency = new WindowedHistogram(
    this.registry,
    'magrathea_filter_publication_latency_seconds',
    'Daemon commit to qmgr batch written.',
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
  );
  readonly batchSize = new WindowedHistogram(
    this.registry,
    'magrathea_filter_qmgr_batch_vnodes',
    'Vnodes per qmgr batch.',
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000],
  );

  private readonly nodes: Gauge<'state'>;
  private readonly domains: Gauge<'state'>;

  /** `version`: the filter's version, exposed as `magrathea_filter_build_info{version} 1`. */
  constructor(version = '') {
    buildInfo(this.registry, 'magrathea_filter', 'magrathea-filter', version);
    const view = (): ClusterView | null => this.view;
    const refused = (): Record<string, number> => this.refusedConnections();
    new Counter({
      name: 'magrathea_filter_connections_refused_total',
      help: 'Connections refused because a connection cap was reached, by listener (grpc, http).',
      labelNames: ['api'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [api, n] of Object.entries(refused())) this.inc({ api }, n);
      },
    });
    this.nodes = new Gauge({
      name: 'magrathea_filter_nodes',
      help: 'Node daemons by reachability.',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const nodes = { reachable: 0, unreachable: 0 };
        for (const n of view()?.nodes.values() ?? []) nodes[n.snapshot.reachable ? 'reachable' : 'unreachable']++;
        this.set({ state: 'reachable' }, nodes.reachable);
        this.set({ state: 'unreachable' }, nodes.unreachable);
      },
    });
    this.domains = new Gauge({
      name: 'magrathea_filter_domains',
      help: 'Domains by reported Magrathea state.',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const n of view()?.nodes.values() ?? [])
          for (const d of n.domains.values())
            // Only known state names become labels: a daemon inventing states cannot grow the registry.
            this.inc({ state: KNOWN_STATES.has(d.snapshot.state) ? d.snapshot.state : 'unknown' });
      },
    });
  }

  private counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /** Where the refused connections are counted. */
  attachConnectionCounts(counts: () => Record<string, number>): void {
    this.refusedConnections = counts;
  }

  /** The view whose nodes and domains the gauges count. */
  attachView(view: ClusterView): void {
    this.view = view;
  }

  /** The Prometheus exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
