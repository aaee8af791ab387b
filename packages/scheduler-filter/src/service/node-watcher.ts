/**
 * Keeps one WatchNode stream open to a node daemon: reconnects with back-off, resumes after the
 * last generation seen (a snapshot only when needed), and marks the node unreachable when it
 * has not been heard from within the grace period. Keepalive pings detect a daemon that is
 * stopped (SIGSTOP) or cut off while the TCP connection looks open. A daemon whose events keep
 * coming out of order is re-read from a snapshot after a wait that doubles each time (up to
 * reconnect.maxMs), never in a tight loop. Timers run on the monotonic clock.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { NodeEventMessage, NodeServiceClient, loadMagratheaApi } from '@magrathea/common';
import { grpcTarget } from '@magrathea/common';
import type { ClusterView } from './cluster-view';
import type { FilterConfig, FilterNodeConfig } from './config';
import type { Metrics } from './metrics';

type Api = ReturnType<typeof loadMagratheaApi>;

/** Largest message accepted from a daemon, bytes. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export class NodeWatcher {
  private client: NodeServiceClient | null = null;
  private stream: grpc.ClientReadableStream<NodeEventMessage> | null = null;
  private stopped = false;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private resumeFrom = 0;
  private lastError = '';
  /** Re-reads after events out of order, and when the last one was (monotonic ms). */
  private resyncs = 0;
  private lastResyncMs = -Infinity;

  constructor(
    private readonly node: FilterNodeConfig,
    private readonly cfg: FilterConfig,
    private readonly deps: {
      api: Api;
      view: ClusterView;
      logger: Logger;
      metrics: Metrics;
      /** Channel credentials for the daemons (mTLS with the filter's certificate, or insecure). */
      credentials: grpc.ChannelCredentials;
    },
  ) {
    this.backoffMs = cfg.reconnectInitialMs;
  }

  start(): void {
    this.armGrace();
    this.connect();
  }

  private armGrace(): void {
    if (this.graceTimer) return;
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null;
      this.deps.view.markUnreachable(this.node.name, this.lastError || `no answer within ${this.cfg.graceMs} ms`);
    }, this.cfg.graceMs);
    this.graceTimer.unref();
  }

  private clearGrace(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
  }

  private connect(): void {
    if (this.stopped) return;
    const ping = Math.max(500, Math.floor(this.cfg.graceMs / 3));
    this.client ??= new this.deps.api.magrathea.v1.NodeService(grpcTarget(this.node.address), this.deps.credentials, {
      'grpc.keepalive_time_ms': ping,
      'grpc.keepalive_timeout_ms': ping,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': this.cfg.reconnectInitialMs,
      'grpc.max_reconnect_backoff_ms': this.cfg.reconnectMaxMs,
      'grpc.enable_channelz': 0,
      // A snapshot of a node with 10,000 jobs in a domain is about 0.5 MB; a daemon cannot send more than this.
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    });
    const stream = this.client.WatchNode({ since_generation: String(this.resumeFrom) });
    this.stream = stream;
    stream.on('metadata', () => {
      // The daemon accepted the watch: when resuming, nothing was missed (or a snapshot follows).
      if (stream !== this.stream || this.resumeFrom === 0) return;
      this.backoffMs = this.cfg.reconnectInitialMs;
      this.clearGrace();
      this.deps.view.markReachable(this.node.name);
    });
    stream.on('data', (e: NodeEventMessage) => {
      if (stream !== this.stream) return;
      this.backoffMs = this.cfg.reconnectInitialMs;
      this.clearGrace();
      if (!this.deps.view.apply(this.node.name, e)) {
        // Out of order: drop the stream and re-read everything, later each time it happens again.
        this.resumeFrom = 0;
        const now = performance.now();
        if (now - this.lastResyncMs > 2 * this.cfg.reconnectMaxMs) this.resyncs = 0;
        this.lastResyncMs = now;
        this.resyncs++;
        this.deps.metrics.resyncDelays.inc();
        const delay = Math.min(
          this.cfg.reconnectMaxMs,
          this.cfg.reconnectInitialMs * 2 ** Math.min(this.resyncs - 1, 20),
        );
        this.restart('out-of-order event', delay);
        return;
      }
      this.resumeFrom = Number(e.generation);
    });
    const ended = (why: string): void => {
      if (stream !== this.stream) return;
      this.stream = null;
      this.lastError = why;
      this.armGrace();
      this.scheduleReconnect(why);
    };
    stream.on('error', (err: grpc.ServiceError) => ended(`${grpc.status[err.code] ?? err.code}: ${err.details}`));
    stream.on('end', () => ended('stream ended by the daemon'));
  }

  private restart(why: string, delayMs: number): void {
    const s = this.stream;
    this.stream = null;
    s?.cancel();
    this.scheduleReconnect(why, delayMs);
  }

  private scheduleReconnect(why: string, delay = this.backoffMs): void {
    if (this.stopped || this.retryTimer) return;
    this.deps.metrics.reconnects.inc();
    this.deps.logger.debug(
      { node: this.node.name, why, delayMs: delay, resumeFrom: this.resumeFrom },
      'reconnecting to node daemon',
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
    this.retryTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, this.cfg.reconnectMaxMs);
  }

  /** Asks the daemon to boot `domain` (wake on demand); rejects with the daemon's gRPC error. */
  wake(domain: string, reason: string): Promise<void> {
    const client = this.client;
    if (!client || this.stopped) return Promise.reject(new Error(`not connected to node ${this.node.name}`));
    return new Promise((resolve, reject) => {
      client.DomainAction(
        { domain, action: 'boot', reason },
        { deadline: Date.now() + Math.max(5000, this.cfg.graceMs) },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }

  stop(): void {
    this.stopped = true;
    this.clearGrace();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const s = this.stream;
    this.stream = null;
    s?.cancel();
    this.client?.close();
  }
}
