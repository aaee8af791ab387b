/** Prometheus text-format metrics, small and dependency-free. */
import type { ClusterView } from './cluster-view';

export class Counter {
  private values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Record<string, string> = {}, by = 1): void {
    const k = labelText(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Record<string, string> = {}): number {
    return this.values.get(labelText(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v}`);
    return lines.join('\n');
  }
}

/** A histogram with fixed buckets, plus exact quantiles over a sliding window of recent samples. */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private n = 0;
  private readonly window: number[] = [];
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
    private readonly windowSize = 10_000,
  ) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.n++;
    this.sum += v;
    this.buckets.forEach((b, i) => {
      if (v <= b) this.counts[i] = (this.counts[i] ?? 0) + 1;
    });
    this.window.push(v);
    if (this.window.length > this.windowSize) this.window.shift();
  }
  get count(): number {
    return this.n;
  }
  /** Exact quantile over the recent window (NaN when empty). */
  quantile(q: number): number {
    if (this.window.length === 0) return NaN;
    const s = [...this.window].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
  }
  reset(): void {
    this.window.length = 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i] ?? 0}`));
    lines.push(
      `${this.name}_bucket{le="+Inf"} ${this.n}`,
      `${this.name}_sum ${this.sum}`,
      `${this.name}_count ${this.n}`,
    );
    for (const q of [0.5, 0.9, 0.99]) {
      const v = this.quantile(q);
      if (!Number.isNaN(v)) lines.push(`${this.name}_window{quantile="${q}"} ${v}`);
    }
    return lines.join('\n');
  }
}

function labelText(labels: Record<string, string>): string {
  const e = Object.entries(labels);
  return e.length === 0 ? '' : `{${e.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;
}

export class Metrics {
  readonly reconnects = new Counter('magrathea_filter_reconnects_total', 'Reconnections to node daemons.');
  readonly generationBackwards = new Counter(
    'magrathea_filter_out_of_order_total',
    'Node events whose generation did not follow the last one (re-read from a snapshot).',
  );
  readonly unknownStates = new Counter(
    'magrathea_filter_unknown_states_total',
    'Domains reported in a state this filter does not know.',
  );
  readonly batches = new Counter('magrathea_filter_qmgr_batches_total', 'qmgr batches by result.');
  readonly qsig = new Counter('magrathea_filter_qsig_total', 'qsig admin-suspend/admin-resume calls by result.');
  readonly kicks = new Counter(
    'magrathea_filter_scheduler_kicks_total',
    'Scheduling cycles started after capacity opened.',
  );
  readonly publicationLatency = new Histogram(
    'magrathea_filter_publication_latency_seconds',
    'Daemon commit to qmgr batch written.',
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
  );
  readonly batchSize = new Histogram(
    'magrathea_filter_qmgr_batch_vnodes',
    'Vnodes per qmgr batch.',
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000],
  );

  readonly contentType = 'text/plain; version=0.0.4';

  /** The exposition, with the view's gauges. */
  text(view: ClusterView): Promise<string> {
    const nodes = { reachable: 0, unreachable: 0 };
    const states = new Map<string, number>();
    for (const n of view.nodes.values()) {
      nodes[n.snapshot.reachable ? 'reachable' : 'unreachable']++;
      for (const d of n.domains.values()) states.set(d.snapshot.state, (states.get(d.snapshot.state) ?? 0) + 1);
    }
    return Promise.resolve(
      this.render([
        '# HELP magrathea_filter_nodes Node daemons by reachability.',
        '# TYPE magrathea_filter_nodes gauge',
        `magrathea_filter_nodes{state="reachable"} ${nodes.reachable}`,
        `magrathea_filter_nodes{state="unreachable"} ${nodes.unreachable}`,
        '# HELP magrathea_filter_domains Domains by reported Magrathea state.',
        '# TYPE magrathea_filter_domains gauge',
        ...[...states].map(([s, c]) => `magrathea_filter_domains{state="${s.replace(/[^a-z-]/g, '_')}"} ${c}`),
      ]),
    );
  }

  render(gauges: string[]): string {
    return [
      ...gauges,
      this.reconnects.render(),
      this.generationBackwards.render(),
      this.unknownStates.render(),
      this.batches.render(),
      this.qsig.render(),
      this.kicks.render(),
      this.publicationLatency.render(),
      this.batchSize.render(),
      '',
    ].join('\n');
  }
}
