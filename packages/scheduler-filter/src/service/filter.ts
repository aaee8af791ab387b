/**
 * magrathea-filter's component graph: view ← watchers; publisher and accounting → PBS; the
 * gRPC server (ClusterService) and the HTTP server (metrics, admission). Started in order,
 * stopped in order with an exit code (every step in try/catch).
 */
import type { Logger } from 'pino';
import {
  ClientChannels,
  InputFileError,
  listenAddress,
  loadMagratheaApi,
  loadPackageDefinition,
  settleWithin,
  stopInOrder,
  bound,
  unreadableFiles,
} from '@magrathea/common';
import { Accounting } from './accounting';
import { ClusterView } from './cluster-view';
import { CommandHelper } from './command-helper';
import type { FilterConfig } from './config';
import type { FilterGrpcServer } from './grpc-server';
import { createGrpcServer } from './grpc-server';
import type { FilterHttpServer } from './http-server';
import { createHttpServer } from './http-server';
import { Metrics } from './metrics';
import { NodeWatcher } from './node-watcher';
import { PbsWatch } from './pbs-watch';
import { RelayWatcher } from './relay-watcher';
import { Publisher } from './publisher';
import { Waker } from './waker';
import { StatusFeed } from './status-feed';
import { StatusHistory } from './status-history';
import type { StatusServer } from './status-server';
import { createStatusServer } from './status-server';

export interface FilterListening {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** The status page's port, or null when it is not served. */
  readonly webPort: number | null;
}

export class Filter {
  readonly metrics: Metrics;
  readonly view: ClusterView;
  readonly publisher: Publisher | null;
  readonly accounting: Accounting | null;
  readonly pbsWatch: PbsWatch | null;
  /** Wake on demand (null: no PBS to read the queued jobs from). */
  readonly waker: Waker | null;
  /** Runs the PBS commands (null: each is forked from this process, or no PBS). */
  readonly commands: CommandHelper | null;
  private readonly watchers: (NodeWatcher | RelayWatcher)[];
  private readonly grpc: FilterGrpcServer;
  private readonly http: FilterHttpServer;
  private readonly web: StatusServer | null = null;
  private readonly log: Logger;
  private stopping: Promise<number> | null = null;

  constructor(
    readonly cfg: FilterConfig,
    deps: {
      logger: Logger;
      /** Wall clock (times shown, publication latency). */
      now?: () => number;
      /** Monotonic clock (every wait and hold), default performance.now(). */
      mono?: () => number;
      version?: string;
    },
  ) {
    const now = deps.now ?? (() => Date.now());
    const mono = deps.mono ?? (() => performance.now());
    this.log = deps.logger;
    this.metrics = new Metrics(deps.version ?? '');
    // A missing certificate file is found before anything starts (exit 66).
    const unreadable = cfg.tls
      ? unreadableFiles((['ca', 'cert', 'key'] as const).map((k) => ({ what: `tls.${k}`, file: cfg.tls![k] })))
      : [];
    if (unreadable.length > 0) throw new InputFileError(unreadable);
    const api = loadMagratheaApi(loadPackageDefinition());
    this.view = new ClusterView(cfg, {
      logger: deps.logger.child({ component: 'view' }),
      metrics: this.metrics,
      now,
      mono,
    });
    this.metrics.attachView(this.view);
    // The channels to every daemon and relay share one secure context (the PEM files are read once here).
    const channels = new ClientChannels(cfg.tls);
    const watcherDeps = {
      api,
      channels,
      view: this.view,
      logger: deps.logger.child({ component: 'watcher' }),
      metrics: this.metrics,
    };
    // Nodes named with an address are watched directly; the others through their relay, one stream each.
    const direct = new Map(
      cfg.nodes.filter((n) => n.relay === null).map((n) => [n.name, new NodeWatcher(n, cfg, watcherDeps)] as const),
    );
    this.watchers = [
      ...direct.values(),
      ...cfg.relays.map(
        (r) =>
          new RelayWatcher(
            r,
            cfg.nodes.filter((n) => n.relay === r.name),
            cfg,
            watcherDeps,
          ),
      ),
    ];
    this.commands = cfg.pbs?.commandHelper
      ? new CommandHelper({ logger: deps.logger.child({ component: 'command-helper' }) })
      : null;
    const run = this.commands?.run;
    this.publisher = cfg.pbs
      ? new Publisher(cfg.pbs, {
          logger: deps.logger.child({ component: 'publisher' }),
          metrics: this.metrics,
          now,
          mono,
          ...(run ? { run } : {}),
        })
      : null;
    this.accounting = cfg.pbs?.honestAccounting
      ? new Accounting(cfg.pbs, {
          logger: deps.logger.child({ component: 'accounting' }),
          metrics: this.metrics,
          now,
          mono,
          ...(run ? { run } : {}),
        })
      : null;
    this.pbsWatch = cfg.pbs
      ? new PbsWatch(cfg.pbs, {
          logger: deps.logger.child({ component: 'pbs-watch' }),
          metrics: this.metrics,
          ...(run ? { run } : {}),
        })
      : null;
    this.waker = cfg.pbs
      ? new Waker(cfg.pbs, {
          view: this.view,
          canWake: (node) => direct.has(node),
          wake: (node, domain, reason) =>
            direct.get(node)?.wake(domain, reason) ??
            Promise.reject(
              new Error(
                cfg.nodes.some((n) => n.name === node)
                  ? `node ${node} is watched through a relay: wake on demand needs it watched directly`
                  : `no node ${node}`,
              ),
            ),
          logger: deps.logger.child({ component: 'waker' }),
          metrics: this.metrics,
          ...(run ? { run } : {}),
        })
      : null;
    if (this.publisher) this.view.subscribe(this.publisher.onView);
    if (this.accounting) this.view.subscribe(this.accounting.onView);
    const publisher = this.publisher;
    const accounting = this.accounting;
    this.pbsWatch?.subscribe((vnodes, cameBack) => {
      if (publisher) {
        if (cameBack) publisher.republishAll();
        else publisher.reassert(vnodes);
      }
      accounting?.onPbsVnodes(vnodes);
    });
    this.grpc = createGrpcServer({
      api,
      view: this.view,
      logger: deps.logger,
      limits: cfg.limits,
      onStreamRefused: () => this.metrics.clusterStreamsRefused.inc(),
    });
    this.http = createHttpServer({
      view: this.view,
      logger: deps.logger,
      metrics: this.metrics,
      connections: { maxConnections: cfg.limits.maxConnections, maxPerSource: cfg.limits.maxConnectionsPerSource },
    });
    if (cfg.web) {
      const history = new StatusHistory({ perDomain: cfg.web.historyPerDomain, total: cfg.web.historyTotal }, now);
      this.view.subscribe(history.onView);
      const logger = deps.logger.child({ component: 'status-page' });
      const feed = new StatusFeed(
        this.view,
        history,
        { intervalMs: cfg.web.updateIntervalMs, heartbeatMs: 5000, stuckAfterMs: 30_000 },
        { logger, now },
      );
      this.web = createStatusServer({ cfg: cfg.web, view: this.view, history, feed, logger: deps.logger, now });
    }
    this.metrics.attachConnectionCounts(() => ({
      grpc: this.grpc.refusedConnections,
      http: this.http.refusedConnections,
    }));
  }

  /** Listeners first, then the watchers. */
  async start(): Promise<FilterListening> {
    const { grpc, http } = this.cfg;
    const grpcPort = await bound('gRPC', listenAddress(grpc.host, grpc.port), this.grpc.listen(grpc.host, grpc.port));
    let httpPort: number;
    let webPort: number | null = null;
    try {
      httpPort = await bound('HTTP', listenAddress(http.host, http.port), this.http.listen(http.host, http.port));
      const web = this.cfg.web;
      if (this.web && web) webPort = await bound('status page', listenAddress(web.host, web.port), this.web.listen());
    } catch (err) {
      await this.grpc.shutdown(0);
      await this.http.close(0).catch(() => undefined);
      throw err;
    }
    for (const w of this.watchers) w.start();
    this.pbsWatch?.start();
    this.waker?.start();
    this.log.info(
      {
        grpcPort,
        httpPort,
        webPort,
        nodes: this.cfg.nodes.length,
        relays: this.cfg.relays.length,
        publishing: this.publisher !== null,
      },
      'magrathea-filter ready',
    );
    return { grpcPort, httpPort, webPort };
  }

  /**
   * Idempotent graceful stop: watchers, WatchCluster streams, pending publications (up to the grace time), accounting
   * calls in flight, gRPC (streams ended, calls finished or cut), HTTP. Returns an exit code:
   * 0, or 1 when a component failed to stop cleanly.
   */
  stop(graceMs = 3000): Promise<number> {
    this.stopping ??= this.doStop(graceMs);
    return this.stopping;
  }

  private async doStop(graceMs: number): Promise<number> {
    const code = await stopInOrder(
      [
        { name: 'watchers', stop: () => this.watchers.forEach((w) => w.stop()) },
        { name: 'pbs-watch', stop: () => this.pbsWatch?.stop() },
        { name: 'waker', stop: () => this.waker?.stop() },
        { name: 'cluster-streams', stop: () => this.grpc.closeStreams() },
        {
          name: 'publisher',
          stop: async () => {
            if (!this.publisher) return;
            await settleWithin(this.publisher.idle(), graceMs);
            this.publisher.stop();
          },
        },
        { name: 'accounting', stop: () => this.accounting?.stop() },
        { name: 'command-helper', stop: () => this.commands?.close() },
        { name: 'grpc', stop: () => this.grpc.shutdown(graceMs) },
        { name: 'http', stop: () => this.http.close(graceMs) },
        { name: 'status-page', stop: () => this.web?.close(graceMs) },
      ],
      this.log,
    );
    this.log.info({ code }, 'magrathea-filter stopped');
    return code;
  }
}
