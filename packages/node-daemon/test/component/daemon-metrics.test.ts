/** The daemon's Prometheus metrics over a real DomainManager: per-domain states, preemptions, host figures. */
import { FailureLimiter } from '@magrathea/common';
import { DomainManager } from '../../src/engine/domain-manager';
import { DaemonMetrics } from '../../src/metrics/daemon-metrics';
import { FixedHostMetrics, ManualClock, MemoryJournal, memoryLogger, SimulatedDriver } from '../../src/testing';

test('domains by state, jobs, a preemption with its phases and released memory, host memory and load', async () => {
  let metrics: DaemonMetrics | null = null;
  const host = new FixedHostMetrics();
  const m = new DomainManager(
    {
      nodeName: 'n1',
      domains: [
        { name: 'meta', class: 'normal', autostart: true },
        { name: 'priv', class: 'priority', autostart: true },
      ],
      snapshotEvery: 1000,
      eventBacklog: 64,
    },
    {
      journal: new MemoryJournal(),
      driver: new SimulatedDriver({ latencyMs: { boot: 0 } }),
      clock: new ManualClock(),
      logger: memoryLogger('silent').logger,
      onCommitted: (o) => metrics?.commandCommitted(o),
    },
  );
  metrics = new DaemonMetrics({
    nodeName: 'n1',
    manager: m,
    grpcAuth: () => ({ failures: 2, delayed: 1 }),
    connectionsRefused: () => ({ grpc: 4, hook: 5 }),
    slowWatchersCut: () => 6,
    hookAuth: new FailureLimiter(20, 60_000),
    watchStreams: () => 3,
    host: () => host.latest(),
  });
  m.recover();
  await m.startDriver();
  await m.settleBoots();
  const start = (domain: string, jobId: string, preemptible: boolean) =>
    m.execute({ kind: 'start-job', domain, jobId, preemptible, cpus: 1, expectedGeneration: 0 });
  await start('meta', 'j1', true);
  await start('priv', 'p1', false);
  const text = await metrics.text();
  expect(text).toMatch(/^magrathea_auth_failures_total\{api="grpc"\} 2$/m);
  expect(text).toMatch(/^magrathea_auth_delayed_total\{api="grpc"\} 1$/m);
  expect(text).toMatch(/^magrathea_connections_refused_total\{api="hook"\} 5$/m);
  expect(text).toMatch(/^magrathea_watch_streams_cut_total 6$/m);
  expect(text).toMatch(/^magrathea_watch_streams 3$/m);
  expect(text).toMatch(new RegExp(`^magrathea_node_generation ${m.current.generation}$`, 'm'));
  expect(text).toMatch(/^magrathea_domains\{state="preempted"\} 1$/m);
  expect(text).toMatch(/^magrathea_domain_state\{domain="priv",class="priority",state="running-priority"\} 1$/m);
  expect(text).toMatch(/^magrathea_domain_jobs\{domain="meta"\} 1$/m);
  expect(text).toMatch(/^magrathea_preemptions_total\{domain="meta"\} 1$/m);
  expect(text).toMatch(/^magrathea_preemption_phase_seconds_count\{op="preempt"\} 1$/m);
  expect(text).toMatch(/^magrathea_domain_memory_released_bytes\{domain="meta",mode="\w+"\} [1-9]\d*$/m);
  expect(text).toMatch(/^magrathea_host_memory_total_bytes\{node="n1"\} 8589934592$/m);
  expect(text).toMatch(/^magrathea_host_load1\{node="n1"\} 0.5$/m);
});
