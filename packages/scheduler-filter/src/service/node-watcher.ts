/**
 * Keeps one WatchNode stream open to a node daemon: reconnects with back-off, resumes after the
 * last generation seen (a snapshot only when needed), and marks the node unreachable when it
 * has not been heard from within the grace period. Keepalive pings detect a daemon that is
 * stopped (SIGSTOP) or cut off while the TCP connection looks open. A daemon whose events keep
 * coming out of order is re-read from a snapshot after a wait that doubles each time (up to
 * reconnect.maxMs), never in a tight loop. A stream that stays open but brings no complete
 * message (not even a heartbeat) for the quiet limit — the daemon's publication stalled, or a peer
 * that answers pings but trickles a message forever — is treated as lost: dropped, the grace armed,
 * and only a message (not the daemon's mere acceptance of the next call) clears it again. Timers run
 * on the monotonic clock.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { NodeEventMessage, NodeServiceClient, loadMagratheaApi } from '@magrathea/common';
import { grpcTarget } from '@magrathea/common';
import type { ClusterView } from './cluster-view';
import type { FilterConfig, FilterNodeConfig } from './config';
import { GraceTimer, ResyncBackoff } from './grace';
import { ReconnectingWatch } from './reconnecting-watch';
import type { Metrics } from './metrics';

type Api = ReturnType<typeof loadMagratheaApi>;

/** The heartbeat interval assumed of a daemon until one of its heartbeats says (its default). */
export const ASSUMED_HEARTBEAT_MS = 5000;
/** The longest heartbeat interval a daemon may announce (its heartbeatMs maximum). */
const MAX_HEARTBEAT_MS = 600_000;

/**
 * How long an open stream may bring no message before it is treated as lost: the grace period,
 * or three heartbeat intervals if that is longer (a daemon set to send heartbeats seldom).
 */
export function quietLimitMs(graceMs: number, heartbeatMs: number): number {
  return Math.max(graceMs, 3 * heartbeatMs);
}

/** Largest message accepted from a daemon, bytes. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * Channel options of a long-lived watch stream (to a daemon or a relay): keepalive pings a third
 * of the grace period apart, the reconnect back-off, messages up to MAX_MESSAGE_BYTES.
 */
export function watchChannelOptions(
  cfg: Pick<FilterConfig, 'graceMs' | 'reconnectInitialMs' | 'reconnectMaxMs'>,
): grpc.ChannelOptions {
  const ping = Math.max(500, Math.floor(cfg.graceMs / 3));
  return {
    'grpc.keepalive_time_ms': ping,
    'grpc.keepalive_timeout_ms': ping,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.initial_reconnect_backoff_ms': cfg.reconnectInitialMs,
    'grpc.max_reconnect_backoff_ms': cfg.reconnectMaxMs,
    'grpc.enable_channelz': 0,
    // A snapshot of a node with 10,000 jobs in a domain is about 0.5 MB; a daemon cannot send more than this.
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  };
}

/** What a watcher (of a daemon or a relay) feeds and reports to. */
export interface WatcherDeps {
  readonly api: Api;
  readonly view: ClusterView;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Channel credentials for the daemons and relays (mTLS with the filter's certificate, or insecure). */
  readonly credentials: grpc.ChannelCredentials;
}

export class NodeWatcher extends ReconnectingWatch<NodeEventMessage> {
  private client: NodeServiceClient | null = null;
  private readonly grace: GraceTimer;
  private resumeFrom = 0;
  private lastError = '';
  private readonly resyncs: ResyncBackoff;
  /** The daemon's heartbeat interval: announced in its heartbeats, assumed until then. */
  private heartbeatMs = ASSUMED_HEARTBEAT_MS;
  private heartbeatSeen = false;
  private lastMessageAt = 0;
  private quietTimer: NodeJS.Timeout | null = null;
  /** Set when a stream was dropped for silence: only a message clears the grace then. */
  private needMessage = false;

  constructor(
    private readonly node: FilterNodeConfig,
    private readonly cfg: FilterConfig,
    private readonly deps: WatcherDeps,
  ) {
    super(cfg);
    this.resyncs = new ResyncBackoff(cfg);
    this.grace = new GraceTimer(cfg.graceMs, () =>
      this.deps.view.markUnreachable(this.node.name, this.lastError || `no answer within ${this.cfg.graceMs} ms`),
    );
  }

  start(): void {
    this.grace.arm();
    this.connect();
  }

  protected connect(): void {
    if (this.stopped) return;
    this.client ??= new this.deps.api.magrathea.v1.NodeService(
      grpcTarget(this.node.address),
      this.deps.credentials,
      watchChannelOptions(this.cfg),
    );
    const stream = this.client.WatchNode({ since_generation: String(this.resumeFrom) });
    stream.on('metadata', () => {
      // The daemon accepted the watch: when resuming, nothing was missed (or a snapshot follows).
      if (!this.current(stream) || this.resumeFrom === 0 || this.needMessage) return;
      this.heard();
      this.grace.clear();
      this.deps.view.markReachable(this.node.name);
    });
    this.lastMessageAt = performance.now();
    this.armQuiet(stream);
    this.watch(
      stream,
      (e) => {
        this.lastMessageAt = performance.now();
        if (e.heartbeat) {
          const ms = Number(e.heartbeat.interval_ms);
          if (Number.isInteger(ms) && ms > 0) this.heartbeatMs = Math.min(ms, MAX_HEARTBEAT_MS);
          this.heartbeatSeen = true;
        }
        this.needMessage = false;
        this.heard();
        this.grace.clear();
        if (!this.deps.view.apply(this.node.name, e)) {
          // Out of order: drop the stream and re-read everything, later each time it happens again.
          this.resumeFrom = 0;
          this.deps.metrics.resyncDelays.inc();
          this.restart('out-of-order event', this.resyncs.next());
          return;
        }
        this.resumeFrom = Number(e.generation);
      },
      (why) => {
        this.clearQuiet();
        this.lastError = why;
        // A daemon that broke the protocol is read again from a snapshot: a resume it accepts does not
        // say the node is back (it would, each time, for a daemon that then sends garbage again).
        if (why.startsWith('INTERNAL:')) this.resumeFrom = 0;
        this.grace.arm();
      },
      'daemon',
    );
  }

  /**
   * Checks the open `stream` once per quiet limit (one timer per node, not one per message): a
   * stream with no message for that long is dropped and the node is on its grace period.
   */
  private armQuiet(stream: grpc.ClientReadableStream<NodeEventMessage>): void {
    this.clearQuiet();
    const check = (): void => {
      this.quietTimer = null;
      if (this.stopped || !this.current(stream)) return;
      const limit = quietLimitMs(this.cfg.graceMs, this.heartbeatMs);
      const quiet = performance.now() - this.lastMessageAt;
      if (quiet < limit) {
        this.quietTimer = setTimeout(check, limit - quiet + 1);
        this.quietTimer.unref();
        return;
      }
      const why = `no message from the daemon for ${Math.round(quiet)} ms on an open stream (not even a heartbeat)`;
      this.deps.logger.warn(
        { node: this.node.name, quietMs: Math.round(quiet), limitMs: limit, heartbeatMs: this.heartbeatMs },
        'node daemon stream silent; reconnecting',
      );
      this.deps.metrics.silentStreams.inc();
      // Never heard a heartbeat: it may be set to come less often than assumed; allow twice as long next time.
      if (!this.heartbeatSeen) this.heartbeatMs = Math.min(this.heartbeatMs * 2, MAX_HEARTBEAT_MS);
      this.lastError = why;
      this.needMessage = true;
      this.grace.arm();
      this.restart(why, this.cfg.reconnectInitialMs);
    };
    this.quietTimer = setTimeout(check, quietLimitMs(this.cfg.graceMs, this.heartbeatMs) + 1);
    this.quietTimer.unref();
  }

  private clearQuiet(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = null;
  }

  protected reconnecting(why: string, delayMs: number): void {
    this.deps.metrics.reconnects.inc();
    this.deps.logger.debug(
      { node: this.node.name, why, delayMs, resumeFrom: this.resumeFrom },
      'reconnecting to node daemon',
    );
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

  protected closeClient(): void {
    this.clearQuiet();
    this.grace.clear();
    this.client?.close();
  }
}
