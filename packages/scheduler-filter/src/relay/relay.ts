/**
 * magrathea-relay's component graph: one WatchNode stream per daemon of its list (resumed after
 * the last generation it holds, re-read from a snapshot when out of order or when the changes
 * since the last snapshot grow past maxChangesPerNode), each node's NodeLog, and the
 * RelayService listener whose WatchNodes readers get every node's events on one stream.
 */
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { WatchNodesRequestMessage } from '@magrathea/common';
import {
  ConnectionGuard,
  FailureLimiter,
  FIRST_BYTES_MS,
  InputFileError,
  PeerAuthenticator,
  StreamPump,
  StreamRegistry,
  bound,
  listenAddress,
  listenGrpcTcp,
  loadMagratheaApi,
  loadPackageDefinition,
  readPem,
  readTlsFiles,
  serverTlsCredentials,
  shutdownGrpcServer,
  sourceOf,
  unreadableFiles,
  verifiedPeerCertificate,
} from '@magrathea/common';
import type { GrpcListener, GuardedHttpServer } from '@magrathea/common';
import type { NodeListEntry } from '../service/config';
import { ResyncBackoff } from '../service/grace';
import { MAX_MESSAGE_BYTES } from '../service/node-watcher';
import { ReconnectingWatch, resumableLoss } from '../service/reconnecting-watch';
import { SilenceWatch } from '../service/silence';
import type { RelayConfig } from './config';
import { H2Client } from './h2-stream';
import { createMetricsServer, RelayMetrics } from './metrics';
import type { H2StreamCall, H2Tls } from './h2-stream';
import { NodeLog } from './node-log';
import { NodeEventCodec, encodeRelayEvent, payloadBytes } from './wire';
import type { RelayOut } from './wire';

/** The daemons' watch call, spoken over a bare HTTP/2 session (h2-stream.ts). */
const WATCH_NODE_PATH = '/magrathea.v1.NodeService/WatchNode';

/**
 * The shortest gap between two heartbeats of one node passed on to its readers, ms: a daemon's
 * own shortest interval (heartbeatMs ≥ 100), so a daemon sending heartbeats in a loop costs the
 * readers no more than the chattiest well-configured one.
 */
const MIN_HEARTBEAT_GAP_MS = 100;

/** One reader of WatchNodes: where it stands on each node it asked for. */
interface Reader {
  readonly pump: StreamPump<RelayOut>;
  readonly positions: Map<string, number>;
}

/**
 * The WatchNode stream of one daemon, feeding its NodeLog with the encoded events; tells the
 * relay of every event and loss. A stopped daemon is found by keepalive pings (a third of graceMs),
 * one whose stream stays open but silent (not even a heartbeat) by its quiet limit (silence.ts).
 */
class Upstream extends ReconnectingWatch<Buffer, H2StreamCall> {
  readonly log: NodeLog<Uint8Array>;
  private readonly client: H2Client;
  /** Set when the next connection must start from a snapshot. */
  private fresh = false;
  private readonly resyncs: ResyncBackoff;
  private readonly silence: SilenceWatch;
  /** Why the node's stream is lost, or null while it is live. */
  down: string | null = 'not heard from yet';
  /** When a heartbeat of this node last went to the readers (monotonic ms). */
  private heartbeatPassedAt = -Infinity;

  constructor(
    readonly node: NodeListEntry,
    private readonly cfg: RelayConfig,
    private readonly deps: {
      codec: NodeEventCodec;
      tls: H2Tls | null;
      logger: Logger;
      metrics: RelayMetrics;
      onEvent: (node: string, e: Uint8Array, generation: number, alive: boolean) => void;
      onDown: (node: string, error: string) => void;
      /** The daemon took a resumed watch: the node's log holds. */
      onBack: (node: string) => void;
    },
  ) {
    super(cfg);
    this.log = new NodeLog(cfg.maxChangesPerNode, {
      maxChangeBytes: cfg.maxChangeBytesPerNode,
      sizeOf: (e) => e.length,
    });
    this.resyncs = new ResyncBackoff(cfg);
    this.client = new H2Client(node.address, deps.tls, {
      pingMs: Math.max(500, Math.floor(cfg.graceMs / 3)),
      maxMessageBytes: MAX_MESSAGE_BYTES,
      // A message begun and not finished within the grace period is the node's failure (pings are still answered).
      messageTimeoutMs: cfg.graceMs,
    });
    this.silence = new SilenceWatch(cfg.graceMs, (s) => {
      if (!s.answered) {
        // Not a silent stream: the daemon took the connection but never answered the call. Try again.
        this.deps.logger.debug({ node: this.node.name, waitedMs: s.quietMs }, 'node daemon did not answer the watch');
        if (this.down === null) this.lost(s.why);
        this.restart(s.why, this.cfg.reconnectInitialMs);
        return;
      }
      this.deps.metrics.silentStreams.inc();
      this.deps.metrics.rereads.inc({ reason: 'silent' });
      this.deps.logger.warn(
        { node: this.node.name, quietMs: s.quietMs, limitMs: s.limitMs, heartbeatMs: s.heartbeatMs },
        'node daemon stream silent; reconnecting',
      );
      this.lost(s.why);
      // Read again from a snapshot: the daemon merely accepting the next watch does not bring the node back.
      this.reread(s.why, this.cfg.reconnectInitialMs);
    });
  }

  start(): void {
    this.connect();
  }

  protected connect(): void {
    if (this.stopped) return;
    const since = this.fresh ? 0 : (this.log.generation ?? 0);
    this.fresh = false;
    const stream = this.client.serverStream(WATCH_NODE_PATH, this.deps.codec.request(since));
    let answered = false;
    let delivered = false;
    stream.on('metadata', () => {
      if (!this.current(stream)) return;
      answered = true;
      this.silence.open();
      // The daemon accepted the watch: when resuming, nothing was missed (or a snapshot follows).
      if (since === 0) return;
      this.heard();
      this.down = null;
      this.deps.onBack(this.node.name);
    });
    this.silence.connecting();
    this.watch(
      stream,
      (bytes) => {
        delivered = true;
        const info = this.deps.codec.inspect(bytes);
        if ('problem' in info) {
          // Not forwarded (it would fail the reader's stream of every node): this node's failure.
          this.deps.logger.warn(
            { node: this.node.name, problem: info.problem, bytes: bytes.length },
            'bad message from node daemon; dropping its stream',
          );
          this.deps.metrics.badMessages.inc();
          stream.abort({ code: grpc.status.INTERNAL, details: info.problem });
          return;
        }
        this.deps.metrics.daemonMessages.inc();
        this.silence.message(info.heartbeatMs);
        this.heard();
        this.down = null;
        const r = this.log.accept({ kind: info.kind, generation: info.generation, event: bytes });
        if (r === 'resync') {
          this.deps.logger.warn(
            { node: this.node.name, got: info.generation, last: this.log.generation },
            'event out of order; re-reading the node',
          );
          this.deps.metrics.rereads.inc({ reason: 'out_of_order' });
          this.reread('out-of-order event', this.resyncs.next());
          return;
        }
        if (r === 'alive') {
          // Heard (the silence watch above), but passed on only MIN_HEARTBEAT_GAP_MS apart.
          const t = performance.now();
          if (t - this.heartbeatPassedAt < MIN_HEARTBEAT_GAP_MS) {
            this.deps.metrics.heartbeatsHeldBack.inc();
            return;
          }
          this.heartbeatPassedAt = t;
        }
        this.deps.onEvent(this.node.name, bytes, info.generation, r === 'alive');
        const why = this.log.whySnapshot;
        if (why) {
          this.deps.metrics.rereads.inc({ reason: 'log_bound' });
          this.reread(why, 0);
        }
      },
      (why) => {
        this.silence.close();
        // The first loss of a live stream is worth a line; the retries while it stays down are not.
        const line = { node: this.node.name, why };
        if (this.down === null) this.deps.logger.warn(line, 'node daemon stream lost');
        else this.deps.logger.debug(line, 'node daemon stream failed');
        // Resumed only after a plain loss of a stream that brought something: a daemon that broke the
        // protocol, or took the watch and ended it with no message, is read again from a snapshot.
        if (!resumableLoss(why) || (answered && !delivered)) {
          this.fresh = true;
          this.deps.metrics.rereads.inc({ reason: 'broken' });
        }
        this.lost(why);
      },
      'daemon',
    );
  }

  /** The node's stream is lost: its readers are told. */
  private lost(why: string): void {
    if (this.down === null) this.deps.metrics.nodeLosses.inc();
    this.down = why;
    this.deps.onDown(this.node.name, why);
  }

  /** Drops the stream and reads the node again from a snapshot (readers are kept up to date by it). */
  private reread(why: string, delayMs: number): void {
    this.silence.close();
    this.fresh = true;
    this.restart(why, delayMs);
  }

  protected reconnecting(why: string, delayMs: number): void {
    this.deps.logger.debug({ node: this.node.name, why, delayMs }, 'reconnecting to node daemon');
  }

  protected closeClient(): void {
    this.silence.close();
    this.client.close();
  }
}

/** A WatchNodes request that cannot be served (INVALID_ARGUMENT). */
function requestProblem(req: WatchNodesRequestMessage): string | null {
  if (req.nodes.length === 0) return 'name at least one node';
  const seen = new Set<string>();
  for (const p of req.nodes) {
    if (seen.has(p.node)) return `node ${p.node} is named twice`;
    seen.add(p.node);
    const g = Number(p.since_generation);
    if (!Number.isSafeInteger(g) || g < 0) return `since_generation of ${p.node} is not a generation`;
  }
  return null;
}

export class Relay {
  private readonly upstreams = new Map<string, Upstream>();
  private readonly readers = new Map<string, Set<Reader>>();
  /** Every open WatchNodes stream's reader (also one that named only nodes this relay does not watch). */
  private readonly openReaders = new Set<Reader>();
  private readonly server: grpc.Server;
  private readonly streams = new StreamRegistry();
  /** Open WatchNodes streams by client (certificate identity, or source address without tls). */
  private readonly perClient = new Map<string, number>();
  /** Clients refused a stream since one of theirs last ended (told once at warn). */
  private readonly refused = new Set<string>();
  private readonly guard: ConnectionGuard;
  private readonly auth: PeerAuthenticator | null;
  /** Failed authentications are answered later and later per source (as the daemon's and the status page's). */
  private readonly authFailures = new FailureLimiter(20, 60_000);
  /** Refusals waiting out their delay: answered at once when the relay stops. */
  private readonly refusing = new Map<grpc.ServerWritableStream<WatchNodesRequestMessage, RelayOut>, () => void>();
  private readonly codec = new NodeEventCodec();
  private listener: GrpcListener | null = null;
  private readonly metrics: RelayMetrics;
  private readonly metricsServer: GuardedHttpServer | null;
  private metricsPort: number | null = null;
  private stopping: Promise<number> | null = null;

  constructor(
    readonly cfg: RelayConfig,
    private readonly deps: { logger: Logger; version?: string },
  ) {
    const unreadable = cfg.tls
      ? unreadableFiles([
          ...(['ca', 'cert', 'key'] as const).map((k) => ({ what: `tls.${k}`, file: cfg.tls![k] })),
          { what: 'tls.clientCert', file: cfg.tls.client.cert },
          { what: 'tls.clientKey', file: cfg.tls.client.key },
        ])
      : [];
    if (unreadable.length > 0) throw new InputFileError(unreadable);
    const api = loadMagratheaApi(loadPackageDefinition());
    this.auth = cfg.tls ? new PeerAuthenticator(readPem(cfg.tls.ca, 'CA certificate'), cfg.tls.clients) : null;
    const upLog = deps.logger.child({ component: 'upstream' });
    this.metrics = new RelayMetrics(
      {
        nodes: () => {
          let down = 0;
          for (const u of this.upstreams.values()) if (u.down !== null) down++;
          return { live: this.upstreams.size - down, down };
        },
        readers: () => this.streams.size,
        queuedMessages: () => {
          let n = 0;
          for (const r of this.openReaders) n += r.pump.queued;
          return n;
        },
        changeBytes: () => {
          let n = 0;
          for (const u of this.upstreams.values()) n += u.log.changeByteCount;
          return n;
        },
      },
      deps.version ?? '',
    );
    this.metricsServer = cfg.metrics ? createMetricsServer(this.metrics, deps.logger) : null;
    const c = cfg.tls?.client;
    // One secure context for every daemon session (the CA and our certificate parsed once).
    const h2tls: H2Tls | null = c
      ? {
          context: tls.createSecureContext(readTlsFiles(c)),
        }
      : null;
    for (const n of cfg.nodes) {
      this.upstreams.set(
        n.name,
        new Upstream(n, cfg, {
          codec: this.codec,
          tls: h2tls,
          logger: upLog,
          metrics: this.metrics,
          onEvent: (node, e, generation, alive) => this.fanOut(node, e, generation, alive),
          onDown: (node, error) => this.tellDown(node, error),
          onBack: (node) => {
            for (const r of this.readers.get(node) ?? []) this.catchUp(r, node, true);
          },
        }),
      );
      this.readers.set(n.name, new Set());
    }
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
      // grpc-js keeps a connection with no call open for ever unless told: peers that open
      // connections and never call would fill the connection caps (and lock the filter out).
      'grpc.max_connection_idle_ms': cfg.idleConnectionMs,
      'grpc.keepalive_time_ms': 20_000,
      'grpc.keepalive_timeout_ms': 20_000,
    });
    // Events go out as the daemons' bytes: RelayEvents are written around them (wire.ts).
    const svc = api.magrathea.v1.RelayService.service;
    const service: grpc.ServiceDefinition = {
      ...svc,
      WatchNodes: { ...svc.WatchNodes, responseSerialize: (o: RelayOut) => encodeRelayEvent(o) },
    };
    const handlers: grpc.UntypedServiceImplementation = {
      WatchNodes: (call: grpc.ServerWritableStream<WatchNodesRequestMessage, RelayOut>) => this.watchNodes(call),
    };
    this.server.addService(service, handlers);
    this.guard = new ConnectionGuard(
      { maxConnections: 64, maxPerSource: 16 },
      deps.logger.child({ component: 'grpc' }),
      {
        what: 'RelayService',
        evictIdle: false,
      },
    );
  }

  /** The listener first, then the daemon streams. Returns the bound port. */
  async start(): Promise<number> {
    const { host, port } = this.cfg.listen;
    const creds = this.cfg.tls ? await serverTlsCredentials(this.cfg.tls) : grpc.ServerCredentials.createInsecure();
    this.listener = await bound(
      'gRPC',
      listenAddress(host, port),
      listenGrpcTcp(this.server, creds, this.guard, host, port, FIRST_BYTES_MS),
    );
    if (this.metricsServer && this.cfg.metrics) {
      const { host: mh, port: mp } = this.cfg.metrics;
      try {
        this.metricsPort = await bound('metrics HTTP', listenAddress(mh, mp), this.metricsServer.listen(mh, mp));
      } catch (err) {
        // Not half started: the gRPC listener goes too (no reader is served a relay that is not there).
        await shutdownGrpcServer(this.server, 0);
        await this.listener.close();
        this.listener = null;
        throw err;
      }
    }
    for (const u of this.upstreams.values()) u.start();
    this.deps.logger.info(
      {
        port: this.listener.port,
        metricsPort: this.metricsPort,
        nodes: this.upstreams.size,
        tls: this.cfg.tls !== null,
      },
      'magrathea-relay ready',
    );
    return this.listener.port;
  }

  private watchNodes(call: grpc.ServerWritableStream<WatchNodesRequestMessage, RelayOut>): void {
    const req = call.request;
    // Who the stream counts against: the certificate's identity, or (plaintext) the source address.
    let client = `tcp:${sourceOf(call.getPeer())}`;
    if (this.auth) {
      const r = this.auth.check(verifiedPeerCertificate(call.getAuthContext()), 'WatchNodes');
      if (!r.ok) {
        // A valid certificate is always served at once; a source that keeps failing is answered
        // later and later, which also bounds how fast it can fill the log.
        const source = sourceOf(call.getPeer());
        const delayMs = this.authFailures.fail(source);
        this.deps.logger.warn({ source, code: r.code, reason: r.message, delayMs }, 'authentication failed');
        this.metrics.readersRefused.inc({ reason: 'auth' });
        const refuse = (): void => {
          call.emit('error', {
            code: r.code === 'unauthenticated' ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED,
            details: r.message,
          });
        };
        if (delayMs === 0) refuse();
        else {
          // Not counted as an open stream (refusals waiting must not take a reader's place).
          const t = setTimeout(() => {
            this.refusing.delete(call);
            refuse();
          }, delayMs);
          this.refusing.set(call, () => {
            clearTimeout(t);
            refuse();
          });
          call.on('cancelled', () => {
            clearTimeout(t);
            this.refusing.delete(call);
          });
        }
        return;
      }
      client = r.principal.identity;
    }
    // Each stream holds its own queue and a copy of what it is being written: bounded per client and in all.
    const open = this.perClient.get(client) ?? 0;
    const limit =
      open >= this.cfg.maxStreamsPerClient
        ? `at most ${this.cfg.maxStreamsPerClient} open WatchNodes streams per client`
        : this.streams.size >= this.cfg.maxStreams
          ? `at most ${this.cfg.maxStreams} open WatchNodes streams in all`
          : null;
    if (limit) {
      // One line per client while it stays at its limit (a client retrying in a loop does not flood the log).
      const line = { client, open, streams: this.streams.size, limit };
      if (this.refused.has(client)) this.deps.logger.debug(line, 'WatchNodes stream refused: too many open');
      else this.deps.logger.warn(line, 'WatchNodes stream refused: too many open');
      this.refused.add(client);
      this.metrics.readersRefused.inc({ reason: 'limit' });
      call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: limit });
      return;
    }
    const problem = requestProblem(req);
    if (problem) {
      this.metrics.readersRefused.inc({ reason: 'invalid' });
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: problem });
      return;
    }
    const reader: Reader = {
      pump: new StreamPump(
        call,
        this.cfg.maxQueuedPerReader,
        () => {
          this.deps.logger.warn(
            {
              source: sourceOf(call.getPeer()),
              maxQueued: this.cfg.maxQueuedPerReader,
              maxQueuedBytes: this.cfg.maxQueuedBytesPerReader,
            },
            'reader does not keep up; ending its stream (it resumes)',
          );
          this.metrics.readersCut.inc();
          call.emit('error', {
            code: grpc.status.RESOURCE_EXHAUSTED,
            details: 'reader too slow: resume from what you have',
          });
        },
        // A message costs its event's bytes (shared with the node's log, but kept here once the log has moved on).
        {
          max: this.cfg.maxQueuedBytesPerReader,
          sizeOf: (m) => payloadBytes(m) + 64,
        },
        // The first catch-up is the logs' own: counted toward neither bound (a reader must get it whole).
        (m) => m.shared === true,
      ),
      positions: new Map(),
    };
    const mine: string[] = [];
    this.openReaders.add(reader);
    for (const p of req.nodes) {
      const up = this.upstreams.get(p.node);
      if (!up) {
        reader.pump.push({ node: p.node, down: { error: `node ${p.node} is not watched by this relay` } });
        continue;
      }
      mine.push(p.node);
      reader.positions.set(p.node, Number(p.since_generation));
      this.readers.get(p.node)!.add(reader);
      // A watched node's `down` is part of the first catch-up too (a rack that is out must not get the reader cut).
      if (!this.catchUp(reader, p.node, true, true) || up.down)
        reader.pump.push({ node: p.node, down: { error: up.down ?? 'not heard from yet' }, shared: true });
    }
    // Every node asked for has its first catch-up queued: what follows is live.
    reader.pump.push({ caughtUp: true, shared: true });
    this.deps.logger.info({ source: sourceOf(call.getPeer()), nodes: mine.length }, 'reader connected');
    this.perClient.set(client, open + 1);
    this.streams.add(call, () => {
      this.openReaders.delete(reader);
      for (const n of mine) this.readers.get(n)?.delete(reader);
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left > 0) this.perClient.set(client, left);
      else this.perClient.delete(client);
      this.refused.delete(client);
    });
  }

  /**
   * Sends the reader what it lacks of `node`; with `confirm`, a heartbeat at the node's generation
   * when it lacks nothing (it is up to date). False while the relay holds no snapshot of the node.
   * `start`: the stream's first catch-up, whose events are the logs' own (not counted against
   * maxQueuedPerReader nor maxQueuedBytesPerReader: a rack's logs together may be larger, and a
   * reader must get them).
   */
  private catchUp(reader: Reader, node: string, confirm: boolean, start = false): boolean {
    const log = this.upstreams.get(node)!.log;
    const at = reader.positions.get(node)!;
    const events = log.since(at);
    if (events === null) return false;
    for (const e of events) reader.pump.push(start ? { node, event: e, shared: true } : { node, event: e });
    const gen = log.generation!;
    if (events.length === 0 && confirm) reader.pump.push({ node, event: this.codec.heartbeat(gen, Date.now()) });
    reader.positions.set(node, gen);
    return true;
  }

  /**
   * A stored event or a heartbeat of `node`: each reader gets what it lacks, or (a heartbeat, a
   * snapshot at the reader's own generation: a relay that restarted) a heartbeat saying it is up to date.
   */
  private fanOut(node: string, e: Uint8Array, generation: number, alive: boolean): void {
    for (const r of this.readers.get(node) ?? []) {
      if (alive && r.positions.get(node) === generation) r.pump.push({ node, event: e });
      else this.catchUp(r, node, true);
    }
  }

  private tellDown(node: string, error: string): void {
    for (const r of this.readers.get(node) ?? []) r.pump.push({ node, down: { error } });
  }

  /** Idempotent graceful stop; resolves with the exit code (0). */
  stop(graceMs = 3000): Promise<number> {
    this.stopping ??= (async () => {
      for (const u of this.upstreams.values()) u.stop();
      for (const refuse of this.refusing.values()) refuse();
      this.refusing.clear();
      this.streams.endAll();
      const closed = this.listener?.close();
      await Promise.all([shutdownGrpcServer(this.server, graceMs), this.metricsServer?.close(graceMs)]);
      this.guard.destroyAll();
      await closed;
      this.deps.logger.info({}, 'magrathea-relay stopped');
      return 0;
    })();
    return this.stopping;
  }
}
