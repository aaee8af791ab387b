/**
 * Keeps one WatchNode stream open to a node daemon: reconnects with back-off, resumes after the
 * last generation seen (a snapshot only when needed), and marks the node unreachable when it
 * has not been heard from within the grace period. Keepalive pings detect a daemon that is
 * stopped (SIGSTOP) or cut off while the TCP connection looks open. A daemon whose events keep
 * coming out of order is re-read from a snapshot after a wait that doubles each time (up to
 * reconnect.maxMs), never in a tight loop. A stream that stays open but brings no complete
 * message (not even a heartbeat) for the quiet limit — the daemon's publication stalled, or a peer
 * that answers pings but trickles a message forever — is treated as lost (silence.ts): dropped, the
 * grace armed, and read again from a snapshot, so only a message (not the daemon's mere acceptance
 * of the next call) brings the node back. Timers run on the monotonic clock.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Address, ClientChannels, NodeEventMessage, NodeServiceClient, loadMagratheaApi } from '@magrathea/common';
import { grpcTarget } from '@magrathea/common';
import type { ClusterView } from './cluster-view';
import type { FilterConfig, FilterNodeConfig } from './config';
import { GraceTimer, ResyncBackoff } from './grace';
import { ReconnectingWatch, resumableLoss } from './reconnecting-watch';
import { SilenceWatch } from './silence';
import type { Metrics } from './metrics';

type Api = ReturnType<typeof loadMagratheaApi>;

/** Largest message accepted from a daemon, bytes. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Target, credentials and options of a watch channel to a daemon or relay at `address`. */
export function watchChannel(
  channels: ClientChannels,
  address: Address,
  cfg: Pick<FilterConfig, 'graceMs' | 'reconnectInitialMs' | 'reconnectMaxMs'>,
): [string, grpc.ChannelCredentials, grpc.ChannelOptions] {
  const c = channels.for(address.kind === 'tcp' ? address.host : null);
  return [grpcTarget(address), c.credentials, { ...watchChannelOptions(cfg), ...c.options }];
}

/**
 * Channel options of a long-lived watch stream (to a daemon or a relay): keepalive pings a third
 * of the grace period apart, the reconnect back-off, messages up to MAX_MESSAGE_BYTES.
 */
function watchChannelOptions(
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
  /** Channels to the daemons and relays (mTLS with the filter's certificate, or insecure). */
  readonly channels: ClientChannels;
}

export class NodeWatcher extends ReconnectingWatch<NodeEventMessage> {
  private client: NodeServiceClient | null = null;
  private readonly grace: GraceTimer;
  private resumeFrom = 0;
  private lastError = '';
  private readonly resyncs: ResyncBackoff;
  private readonly silence: SilenceWatch;

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
    this.silence = new SilenceWatch(cfg.graceMs, (s) => {
      this.lastError = s.why;
      if (!s.answered) {
        // Not a silent stream: the call was never answered (a host down, a hung daemon). Try again.
        this.deps.logger.debug({ node: this.node.name, waitedMs: s.quietMs }, 'node daemon did not answer the watch');
        this.grace.arm();
        this.restart(s.why, this.cfg.reconnectInitialMs);
        return;
      }
      this.deps.logger.warn(
        { node: this.node.name, quietMs: s.quietMs, limitMs: s.limitMs, heartbeatMs: s.heartbeatMs },
        'node daemon stream silent; reconnecting',
      );
      this.deps.metrics.silentStreams.inc();
      // Read again from a snapshot: the daemon merely accepting the next watch does not bring the node back.
      this.resumeFrom = 0;
      this.grace.arm();
      this.restart(s.why, this.cfg.reconnectInitialMs);
    });
  }

  start(): void {
    this.grace.arm();
    this.connect();
  }

  protected connect(): void {
    if (this.stopped) return;
    this.client ??= new this.deps.api.magrathea.v1.NodeService(
      ...watchChannel(this.deps.channels, this.node.address, this.cfg),
    );
    const stream = this.client.WatchNode({ since_generation: String(this.resumeFrom) });
    let answered = false;
    let delivered = false;
    stream.on('metadata', () => {
      if (!this.current(stream)) return;
      answered = true;
      this.silence.open();
      // The daemon accepted the watch: when resuming, nothing was missed (or a snapshot follows).
      if (this.resumeFrom === 0) return;
      this.heard();
      this.grace.clear();
      this.deps.view.markReachable(this.node.name);
    });
    this.silence.connecting();
    this.watch(
      stream,
      (e) => {
        delivered = true;
        this.silence.message(e.heartbeat ? Number(e.heartbeat.interval_ms) : undefined);
        this.heard();
        this.grace.clear();
        if (!this.deps.view.apply(this.node.name, e)) {
          // Out of order: drop the stream and re-read everything, later each time it happens again.
          this.resumeFrom = 0;
          this.deps.metrics.resyncDelays.inc();
          this.drop('out-of-order event', this.resyncs.next());
          return;
        }
        this.resumeFrom = Number(e.generation);
      },
      (why) => {
        this.silence.close();
        this.lastError = why;
        // Resumed only after a plain loss of a stream that brought something: a daemon that broke the
        // protocol, or took the watch and ended it with no message, is read again from a snapshot.
        if (!resumableLoss(why) || (answered && !delivered)) this.resumeFrom = 0;
        this.grace.arm();
      },
      'daemon',
    );
  }

  /** Drops the stream on our side (to re-read it): unwatched until the next one, the node on its grace. */
  private drop(why: string, delayMs: number): void {
    this.silence.close();
    this.lastError = why;
    this.grace.arm();
    this.restart(why, delayMs);
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
    this.silence.close();
    this.grace.clear();
    this.client?.close();
  }
}
