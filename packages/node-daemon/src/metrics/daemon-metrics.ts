/**
 * The daemon's Prometheus metrics (prom-client, in a registry of this daemon's own: tests run
 * several daemons in one process), served on the hook API's `GET /metrics`. Counts and states
 * are read when scraped; preemptions and their phase durations are recorded as commands commit.
 * Every metric is listed in docs/reliability.md.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FailureLimiter } from '@magrathea/common';
import type { DomainManager, Outcome, ResetInfo } from '../engine/domain-manager';
import type { AuthCounters } from '../rpc/authorizer';
import type { HostSample } from '../engine/view';
import { domainCpus } from '../engine/view';

/** Where the daemon's metrics read their figures. */
export interface DaemonMetricsSources {
  readonly nodeName: string;
  readonly manager: DomainManager;
  /** gRPC authentication counters. */
  readonly grpcAuth: () => AuthCounters;
  /** The hook API's failed-token limiter. */
  readonly hookAuth: FailureLimiter;
  /** Open WatchNode streams. */
  readonly watchStreams: () => number;
  /** Watchers cut off for not keeping up (optional: 0). */
  readonly slowWatchersCut?: () => number;
  /** Connections refused over a cap, per listener (optional: none). */
  readonly connectionsRefused?: () => { readonly grpc: number; readonly hook: number };
  /** The last host sample, or null before the first one. */
  readonly host: () => HostSample | null;
}

/** Preemption phases take from microseconds (simulated) to minutes (a VM saved to disk), seconds. */
const PHASE_BUCKETS = [0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Resets take from a fraction of a second (revert) to a minute (a cold boot under TCG). */
const RESET_BUCKETS = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120];

/** The daemon's metrics registry; its exposition is served on the hook API's GET /metrics. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;
  private readonly preemptions: Counter<'domain'>;
  private readonly phases: Histogram<'op'>;
  private readonly jobsSuspended: Counter<'domain'>;
  private readonly resetSeconds: Histogram<'domain' | 'policy' | 'step'>;
  private readonly resetsTotal: Counter<'domain' | 'policy' | 'outcome'>;
  private readonly bootSeconds: Histogram<'domain' | 'step'>;
  private readonly bootsTotal: Counter<'domain' | 'outcome'>;

  constructor(src: DaemonMetricsSources) {
    const registers = [this.registry];
    const { manager } = src;
    const auth = (name: string, help: string, value: (grpc: AuthCounters, hook: FailureLimiter) => [number, number]) =>
      new Counter({
        name,
        help,
        labelNames: ['api'] as const,
        registers,
        collect() {
          const [grpc, hook] = value(src.grpcAuth(), src.hookAuth);
          this.reset();
          this.inc({ api: 'grpc' }, grpc);
          this.inc({ api: 'hook' }, hook);
        },
      });
    auth('magrathea_auth_failures_total', 'Failed authentications (gRPC: certificates; hook: tokens).', (g, h) => [
      g.failures,
      h.total,
    ]);
    auth(
      'magrathea_auth_delayed_total',
      'Failed authentications answered after a delay (guessing slowed down; a valid credential is never delayed).',
      (g, h) => [g.delayed, h.delayedTotal],
    );
    new Counter({
      name: 'magrathea_connections_refused_total',
      help: 'Connections refused because a connection cap was reached.',
      labelNames: ['api'] as const,
      registers,
      collect() {
        const r = src.connectionsRefused?.() ?? { grpc: 0, hook: 0 };
        this.reset();
        this.inc({ api: 'grpc' }, r.grpc);
        this.inc({ api: 'hook' }, r.hook);
      },
    });
    new Counter({
      name: 'magrathea_watch_streams_cut_total',
      help: 'WatchNode streams cut off because their reader did not keep up (it resumes from its generation).',
      registers,
      collect() {
        this.reset();
        this.inc(src.slowWatchersCut?.() ?? 0);
      },
    });
    new Gauge({
      name: 'magrathea_watch_streams',
      help: 'Open WatchNode streams.',
      registers,
      collect() {
        this.set(src.watchStreams());
      },
    });
    new Gauge({
      name: 'magrathea_node_generation',
      help: 'Generation of the node state.',
      registers,
      collect() {
        this.set(manager.current.generation);
      },
    });
    const summaries = () => manager.current.domains.flatMap((d) => manager.domainSummary(d.name) ?? []);
    new Gauge({
      name: 'magrathea_domains',
      help: 'Domains of this node by reported state.',
      labelNames: ['state'] as const,
      registers,
      collect() {
        this.reset();
        for (const d of summaries()) this.inc({ state: d.state });
      },
    });
    new Gauge({
      name: 'magrathea_domain_state',
      help: 'Reported state of each domain (1 for its current state).',
      labelNames: ['domain', 'class', 'state'] as const,
      registers,
      collect() {
        this.reset();
        for (const d of summaries()) this.set({ domain: d.name, class: d.class, state: d.state }, 1);
      },
    });
    new Gauge({
      name: 'magrathea_domain_jobs',
      help: 'Jobs running (or suspended) in each domain.',
      labelNames: ['domain'] as const,
      registers,
      collect() {
        this.reset();
        for (const d of summaries()) this.set({ domain: d.name }, d.jobIds.length);
      },
    });
    new Gauge({
      name: 'magrathea_domain_memory_released_bytes',
      help: "Memory really released by each domain's last preemption, as the driver measured it.",
      labelNames: ['domain', 'mode'] as const,
      registers,
      collect() {
        this.reset();
        for (const d of manager.current.domains) {
          const r = manager.extras(d).release;
          if (r) this.set({ domain: d.name, mode: r.mode }, r.memoryReleasedBytes);
        }
      },
    });
    new Gauge({
      name: 'magrathea_domain_reclaim_step_seconds',
      help: "Each step of a domain's last reclaim preemption (stop-jobs, drop-caches, swap-on, balloon, save), as the driver timed it.",
      labelNames: ['domain', 'step'] as const,
      registers,
      collect() {
        this.reset();
        for (const d of manager.current.domains)
          for (const st of manager.extras(d).release?.steps ?? [])
            this.inc({ domain: d.name, step: st.name }, st.millis / 1000);
      },
    });
    new Gauge({
      name: 'magrathea_domain_reclaim_shortfall',
      help: "1 when a domain's last reclaim did not reach its balloon target (then kept or saved, see outcome), 0 when it did.",
      labelNames: ['domain', 'outcome'] as const,
      registers,
      collect() {
        this.reset();
        for (const d of manager.current.domains) {
          const r = manager.extras(d).release;
          if (r?.outcome) this.set({ domain: d.name, outcome: r.outcome }, r.outcome === 'reached' ? 0 : 1);
        }
      },
    });
    this.preemptions = new Counter({
      name: 'magrathea_preemptions_total',
      help: 'Domains preempted by a priority job start, by preempted domain.',
      labelNames: ['domain'] as const,
      registers,
    });
    this.phases = new Histogram({
      name: 'magrathea_preemption_phase_seconds',
      help: 'Driver operations of commands that preempted or resumed domains, by operation.',
      labelNames: ['op'] as const,
      buckets: PHASE_BUCKETS,
      registers,
    });
    this.resetSeconds = new Histogram({
      name: 'magrathea_reset_phase_seconds',
      help: 'Per-job resets (domains[].lifecycle): each step, and the whole reset as step "total", by domain and policy.',
      labelNames: ['domain', 'policy', 'step'] as const,
      buckets: RESET_BUCKETS,
      registers,
    });
    this.resetsTotal = new Counter({
      name: 'magrathea_resets_total',
      help: 'Per-job resets by domain, policy and outcome (ok | failed).',
      labelNames: ['domain', 'policy', 'outcome'] as const,
      registers,
    });
    this.bootSeconds = new Histogram({
      name: 'magrathea_boot_phase_seconds',
      help: 'Boots of domains (not per-job resets): each step, and the whole boot as step "total", by domain.',
      labelNames: ['domain', 'step'] as const,
      buckets: RESET_BUCKETS,
      registers,
    });
    this.bootsTotal = new Counter({
      name: 'magrathea_boots_total',
      help: 'Boots of domains (not per-job resets) by domain and outcome (ok | failed).',
      labelNames: ['domain', 'outcome'] as const,
      registers,
    });
    this.jobsSuspended = new Counter({
      name: 'magrathea_jobs_suspended_total',
      help: 'Jobs suspended to make room for priority work, by domain (CPU-counting mode: only the chosen ones).',
      labelNames: ['domain'] as const,
      registers,
    });
    new Gauge({
      name: 'magrathea_domain_suspended_jobs',
      help: 'Jobs of each domain suspended now.',
      labelNames: ['domain'] as const,
      registers,
      collect() {
        this.reset();
        for (const d of manager.current.domains)
          this.set({ domain: d.name }, d.jobs.filter((j) => j.suspendedSinceMs !== null).length);
      },
    });
    new Gauge({
      name: 'magrathea_domain_cpus',
      help: 'CPU-counting mode: CPUs of each domain by use (running, suspended, free: what a job of it may take now).',
      labelNames: ['domain', 'use'] as const,
      registers,
      collect() {
        this.reset();
        const node = manager.current;
        if (!node.cpuCounting) return;
        for (const d of node.domains) {
          const c = domainCpus(node, d);
          this.set({ domain: d.name, use: 'running' }, c.cpus_running ?? 0);
          this.set({ domain: d.name, use: 'suspended' }, c.cpus_suspended ?? 0);
          this.set({ domain: d.name, use: 'free' }, c.cpus_free ?? 0);
        }
      },
    });
    new Gauge({
      name: 'magrathea_domain_cpu_cap',
      help: 'CPU-counting mode: the CPU cap the driver last observed on each domain, CPUs (absent: none, or not observed).',
      labelNames: ['domain'] as const,
      registers,
      collect() {
        this.reset();
        for (const d of manager.current.domains) {
          const cap = manager.extras(d).observed?.cpuCap ?? 0;
          if (cap > 0) this.set({ domain: d.name }, cap);
        }
      },
    });
    const host = (name: string, help: string, value: (h: HostSample) => number): Gauge<'node'> =>
      new Gauge({
        name,
        help: `${help} (absent until the first sample).`,
        labelNames: ['node'] as const,
        registers,
        collect() {
          this.reset();
          const h = src.host();
          if (h) this.set({ node: src.nodeName }, value(h));
        },
      });
    host('magrathea_host_memory_total_bytes', 'Host memory', (h) => h.memoryTotalBytes);
    host('magrathea_host_memory_available_bytes', 'Host memory available', (h) => h.memoryAvailableBytes);
    host('magrathea_host_load1', 'Host load average over one minute', (h) => h.load1);
    host('magrathea_host_cpus', 'Host CPUs', (h) => h.cpus);
  }

  /** DomainManager observer: counts preemptions and records the phases of preemptions and resumptions. */
  readonly commandCommitted = (o: Outcome): void => {
    for (const d of o.result.preempted) this.preemptions.inc({ domain: d });
    for (const j of o.result.suspendedJobs) this.jobsSuspended.inc({ domain: j.domain });
    const jobsMoved = o.result.suspendedJobs.length + o.result.resumedJobs.length;
    if (o.result.preempted.length === 0 && o.result.resumed.length === 0 && jobsMoved === 0) return;
    for (const p of o.phases)
      this.phases.observe({ op: (p.name ?? '').split(':')[0] ?? '' }, Number(p.millis ?? 0) / 1000);
  };

  /** DomainManager observer: the steps and the length of each per-job reset. */
  readonly domainReset = (domain: string, r: ResetInfo): void => {
    if (r.policy === 'boot') {
      this.bootsTotal.inc({ domain, outcome: r.error ? 'failed' : 'ok' });
      if (r.error) return;
      for (const st of r.steps)
        if (st.name !== 'total') this.bootSeconds.observe({ domain, step: st.name }, st.millis / 1000);
      this.bootSeconds.observe({ domain, step: 'total' }, r.millis / 1000);
      return;
    }
    this.resetsTotal.inc({ domain, policy: r.policy, outcome: r.error ? 'failed' : 'ok' });
    if (r.error) return;
    for (const st of r.steps) this.resetSeconds.observe({ domain, policy: r.policy, step: st.name }, st.millis / 1000);
    this.resetSeconds.observe({ domain, policy: r.policy, step: 'total' }, r.millis / 1000);
  };

  /** The Prometheus exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
