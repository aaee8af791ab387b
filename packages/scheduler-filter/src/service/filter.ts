/** magrathea-filter's component graph: view ← watchers; publisher and accounting → PBS; gRPC and HTTP servers. */
import * as grpc from '@grpc/grpc-js';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { clientCredentials, loadMagratheaApi, loadPackageDefinition } from '@magrathea/common';
import { Accounting } from './accounting';
import { ClusterView } from './cluster-view';
import { admitJob, checkJobClass, checkVnodes, createClusterService, InvalidRequestError } from './cluster-service';
import type { FilterConfig } from './config';
import { Metrics } from './metrics';
import { NodeWatcher } from './node-watcher';
import { Publisher } from './publisher';

export interface FilterListening {
  readonly grpcPort: number;
  readonly httpPort: number;
}

export class Filter {
  readonly metrics = new Metrics();
  readonly view: ClusterView;
  readonly publisher: Publisher | null;
  readonly accounting: Accounting | null;
  private readonly watchers: NodeWatcher[];
  private readonly grpcServer = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  private readonly httpServer: http.Server;
  private readonly closeStreams: () => void;
  private readonly log: Logger;

  constructor(
    readonly cfg: FilterConfig,
    deps: { logger: Logger; now?: () => number },
  ) {
    const now = deps.now ?? (() => Date.now());
    this.log = deps.logger;
    const definition = loadPackageDefinition();
    const api = loadMagratheaApi(definition);
    this.view = new ClusterView(cfg, { logger: deps.logger.child({ component: 'view' }), metrics: this.metrics, now });
    // One set of credentials for every daemon connection (the PEM files are read once here).
    const credentials = clientCredentials(cfg.tls);
    this.watchers = cfg.nodes.map(
      (n) =>
        new NodeWatcher(n, cfg, {
          api,
          credentials,
          view: this.view,
          logger: deps.logger.child({ component: 'watcher' }),
          metrics: this.metrics,
        }),
    );
    this.publisher = cfg.pbs
      ? new Publisher(cfg.pbs, {
          logger: deps.logger.child({ component: 'publisher' }),
          metrics: this.metrics,
          now,
        })
      : null;
    this.accounting = cfg.pbs?.honestAccounting
      ? new Accounting(cfg.pbs, { logger: deps.logger.child({ component: 'accounting' }), metrics: this.metrics })
      : null;
    if (this.publisher) this.view.subscribe(this.publisher.onView);
    if (this.accounting) this.view.subscribe(this.accounting.onView);
    const svc = createClusterService({ view: this.view, logger: deps.logger });
    this.closeStreams = svc.closeStreams;
    this.grpcServer.addService(api.magrathea.v1.ClusterService.service, svc.handlers);
    this.httpServer = http.createServer({ requestTimeout: 5000, connectionsCheckingInterval: 1000 }, (req, res) =>
      this.http(req, res),
    );
  }

  private gauges(): string[] {
    const nodes = { reachable: 0, unreachable: 0 };
    const states = new Map<string, number>();
    for (const n of this.view.nodes.values()) {
      nodes[n.snapshot.reachable ? 'reachable' : 'unreachable']++;
      for (const d of n.domains.values()) states.set(d.snapshot.state, (states.get(d.snapshot.state) ?? 0) + 1);
    }
    return [
      '# HELP magrathea_filter_nodes Node daemons by reachability.',
      '# TYPE magrathea_filter_nodes gauge',
      `magrathea_filter_nodes{state="reachable"} ${nodes.reachable}`,
      `magrathea_filter_nodes{state="unreachable"} ${nodes.unreachable}`,
      '# HELP magrathea_filter_domains Domains by reported Magrathea state.',
      '# TYPE magrathea_filter_domains gauge',
      ...[...states].map(([s, c]) => `magrathea_filter_domains{state="${s.replace(/[^a-z-]/g, '_')}"} ${c}`),
    ];
  }

  private http(req: http.IncomingMessage, res: http.ServerResponse): void {
    const reply = (status: number, body: string, type = 'application/json'): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.method === 'GET' && req.url === '/metrics')
      return reply(200, this.metrics.render(this.gauges()), 'text/plain; version=0.0.4');
    if (req.url !== '/v1/admit') return reply(404, JSON.stringify({ error: 'not-found' }));
    if (req.method !== 'POST') return reply(405, JSON.stringify({ error: 'method-not-allowed' }));
    let body = '';
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      body += c.toString();
      if (body.length > 256 * 1024) tooLarge = true;
    });
    req.on('end', () => {
      if (tooLarge) return reply(413, JSON.stringify({ error: 'too-large' }));
      try {
        const o = JSON.parse(body) as Record<string, unknown>;
        if (typeof o !== 'object' || o === null) throw new InvalidRequestError('the body must be a JSON object');
        reply(200, JSON.stringify(admitJob(this.view, checkJobClass(o.job_class), checkVnodes(o.vnodes))));
      } catch (err) {
        const msg =
          err instanceof InvalidRequestError
            ? err.message
            : err instanceof SyntaxError
              ? 'the body is not valid JSON'
              : 'internal error';
        if (!(err instanceof InvalidRequestError) && !(err instanceof SyntaxError))
          this.log.error({ err }, 'admit failed');
        reply(
          err instanceof InvalidRequestError || err instanceof SyntaxError ? 400 : 500,
          JSON.stringify({ error: msg }),
        );
      }
    });
  }

  async start(): Promise<FilterListening> {
    const grpcPort = await new Promise<number>((resolve, reject) =>
      this.grpcServer.bindAsync(
        `${this.cfg.grpc.host}:${this.cfg.grpc.port}`,
        grpc.ServerCredentials.createInsecure(),
        (e, p) => (e ? reject(e) : resolve(p)),
      ),
    );
    const httpPort = await new Promise<number>((resolve, reject) => {
      this.httpServer.once('error', reject);
      this.httpServer.listen(this.cfg.http.port, this.cfg.http.host, () =>
        resolve((this.httpServer.address() as AddressInfo).port),
      );
    });
    for (const w of this.watchers) w.start();
    this.log.info(
      { grpcPort, httpPort, nodes: this.cfg.nodes.length, publishing: this.publisher !== null },
      'magrathea-filter ready',
    );
    return { grpcPort, httpPort };
  }

  async stop(graceMs = 3000): Promise<void> {
    for (const w of this.watchers) w.stop();
    this.closeStreams();
    if (this.publisher) await Promise.race([this.publisher.idle(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.publisher?.stop();
    await this.accounting?.idle();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.grpcServer.forceShutdown();
        resolve();
      }, graceMs);
      t.unref();
      this.grpcServer.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
    this.httpServer.closeAllConnections();
    await new Promise<void>((r) => this.httpServer.close(() => r()));
    this.log.info('magrathea-filter stopped');
  }
}
