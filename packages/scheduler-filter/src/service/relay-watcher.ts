/**
 * Keeps one RelayService.WatchNodes stream open to a magrathea-relay for the nodes watched
 * through it, and feeds their events to the view as if each node were watched directly: each
 * node resumes after the last generation seen (the relay replays what it missed, or a snapshot),
 * each has its own grace period, armed when the relay says it lost the node or when the relay
 * itself is lost. A node whose events come out of order is re-read from a snapshot (the stream is
 * opened again with that node at 0, the others where they were), after a wait that doubles. A
 * node the relay holds as live but forwards nothing of (not even its daemon's heartbeats) for the
 * quiet limit (silence.ts) starts its grace period too, until a message of it comes again.
 * That silence is judged only once the stream's first catch-up is in: the relay sends each
 * node's snapshot and changes (or `down`) in one run, one node after the other, before anything
 * live, so on a rack of thousands the last ones come long after the first, and a node's next
 * message waits behind them. The catch-up is in when the relay says so (`caught_up`), when every
 * node has been heard, or when a node heard earlier is heard again after another (the relay has
 * moved on to live messages: what a relay without `caught_up` shows); it is given up after
 * graceMs with no message of it, or after CATCH_UP_LIMIT grace periods in all.
 */
import type { RelayEventMessage, RelayServiceClient } from '@magrathea/common';
import { formatAddress } from '@magrathea/common';
import type { FilterConfig, FilterNodeConfig, RelayRef } from './config';
import { GraceTimer, ResyncBackoff } from './grace';
import { watchChannel } from './node-watcher';
import type { WatcherDeps } from './node-watcher';
import { ReconnectingWatch } from './reconnecting-watch';
import { SilenceWatch } from './silence';

/** The longest a first catch-up may hold back the nodes' silence, in grace periods. */
const CATCH_UP_LIMIT = 10;

interface RelayedNode {
  readonly name: string;
  resumeFrom: number;
  lastError: string;
  readonly grace: GraceTimer;
  /** Armed while the node is live on the stream: silence for its quiet limit is its loss. */
  readonly silence: SilenceWatch;
  /** Its last message on this stream was an event (not `down`). */
  live: boolean;
}

export class RelayWatcher extends ReconnectingWatch<RelayEventMessage> {
  private client: RelayServiceClient | null = null;
  private readonly nodes = new Map<string, RelayedNode>();
  private readonly resyncs: ResyncBackoff;
  /** True while the stream brings messages (and at start); false after a loss until a message comes again. */
  private live = true;
  /**
   * The current stream's first catch-up while it lasts: the nodes not heard yet on it, and the node
   * being sent. No node's silence is judged before it ends.
   */
  private catchUp: { readonly unheard: Set<string>; current: string | null; readonly limit: NodeJS.Timeout } | null =
    null;
  /** The catch-up stalled (no message of it for graceMs): judge the nodes heard so far anyway. */
  private readonly catchUpStall: SilenceWatch;

  constructor(
    private readonly relay: RelayRef,
    nodes: readonly FilterNodeConfig[],
    private readonly cfg: FilterConfig,
    private readonly deps: WatcherDeps,
  ) {
    super(cfg);
    this.resyncs = new ResyncBackoff(cfg);
    for (const n of nodes) {
      const rn: RelayedNode = {
        name: n.name,
        resumeFrom: 0,
        lastError: '',
        live: false,
        grace: new GraceTimer(cfg.graceMs, () =>
          deps.view.markUnreachable(n.name, rn.lastError || `no answer within ${cfg.graceMs} ms`),
        ),
        silence: new SilenceWatch(cfg.graceMs, (s) => {
          deps.logger.warn(
            { relay: relay.name, node: n.name, quietMs: s.quietMs, limitMs: s.limitMs, heartbeatMs: s.heartbeatMs },
            'relayed node silent',
          );
          deps.metrics.silentStreams.inc();
          rn.lastError = `relay ${relay.name}: ${s.why}`;
          rn.grace.arm();
        }),
      };
      this.nodes.set(n.name, rn);
    }
    this.catchUpStall = new SilenceWatch(cfg.graceMs, (s) => {
      deps.logger.debug(
        { relay: relay.name, unheard: this.catchUp?.unheard.size ?? 0, quietMs: s.quietMs },
        'relay catch-up stalled',
      );
      this.caughtUp();
    });
    // A fixed limit of graceMs: a catch-up announces no interval (and a stalled one must not double it).
    this.catchUpStall.message(Math.max(1, Math.floor(cfg.graceMs / 3)));
  }

  start(): void {
    for (const n of this.nodes.values()) n.grace.arm();
    this.connect();
  }

  protected connect(): void {
    if (this.stopped) return;
    this.client ??= new this.deps.api.magrathea.v1.RelayService(
      ...watchChannel(this.deps.channels, this.relay.address, this.cfg),
    );
    for (const n of this.nodes.values()) {
      n.silence.close();
      n.live = false;
    }
    this.endCatchUp();
    const stream = this.client.WatchNodes({
      nodes: [...this.nodes.values()].map((n) => ({ node: n.name, since_generation: String(n.resumeFrom) })),
    });
    let first = true;
    // Heard only by a message that decodes: a relay that takes the call and then sends garbage is
    // retried with the doubling back-off, not every reconnect.initialMs.
    this.watch(
      stream,
      (m) => {
        this.heard();
        this.live = true;
        // The first message starts the first catch-up (a relay slow to answer does not use it up).
        if (first) {
          first = false;
          this.startCatchUp();
        }
        this.received(m);
      },
      (why) => {
        // The first loss of a live stream is worth a line; the retries while it stays down are not.
        const line = { relay: this.relay.name, why };
        if (this.live) this.deps.logger.warn(line, 'relay stream lost');
        else this.deps.logger.debug(line, 'relay stream failed');
        this.live = false;
        this.lostRelay(why);
      },
      'relay',
    );
  }

  private received(m: RelayEventMessage): void {
    if (m.caught_up) {
      if (this.catchUp !== null) this.caughtUp();
      return;
    }
    const n = this.nodes.get(m.node);
    if (!n) return; // not asked for: a relay's mistake, ignored
    // The message that ends the catch-up is taken as the first one after it.
    if (this.catchUp !== null && this.catchUpEndsWith(n.name)) this.caughtUp();
    const catchingUp = this.catchUp !== null;
    if (m.down) {
      n.live = false;
      n.silence.close();
      n.lastError = `relay ${this.relay.name}: ${m.down.error}`;
      n.grace.arm();
      return;
    }
    const e = m.event;
    if (!e) return;
    n.live = true;
    if (!catchingUp && !n.silence.watching) n.silence.open();
    // During the catch-up this only records the interval a heartbeat announces.
    n.silence.message(e.heartbeat ? Number(e.heartbeat.interval_ms) : undefined);
    n.grace.clear();
    if (!this.deps.view.apply(n.name, e)) {
      n.resumeFrom = 0;
      this.deps.metrics.resyncDelays.inc();
      const why = `out-of-order event of ${n.name}`;
      // Dropped on our side: no node of the relay is watched until the next stream.
      this.lostRelay(why);
      this.restart(why, this.resyncs.next());
      return;
    }
    n.resumeFrom = Number(e.generation);
  }

  private startCatchUp(): void {
    this.endCatchUp();
    const limit = setTimeout(() => {
      this.deps.logger.debug(
        {
          relay: this.relay.name,
          unheard: this.catchUp?.unheard.size ?? 0,
          limitMs: CATCH_UP_LIMIT * this.cfg.graceMs,
        },
        'relay catch-up too long',
      );
      this.caughtUp();
    }, CATCH_UP_LIMIT * this.cfg.graceMs);
    limit.unref();
    this.catchUp = { unheard: new Set(this.nodes.keys()), current: null, limit };
    this.catchUpStall.open();
  }

  /**
   * Whether a message of `node` ends the first catch-up: the last node heard for the first time,
   * or a node heard before another (the relay sends each node's catch-up in one run, so it has
   * moved on to live messages). A message of the catch-up counts against its stall from now.
   */
  private catchUpEndsWith(node: string): boolean {
    const c = this.catchUp!;
    if (c.unheard.delete(node)) c.current = node;
    else if (node !== c.current) return true;
    this.catchUpStall.message(); // its timer is re-armed once per limit, not per message
    return c.unheard.size === 0;
  }

  /** The stream's first catch-up is in (or given up): each live node's silence counts from now. */
  private caughtUp(): void {
    this.endCatchUp();
    for (const n of this.nodes.values()) if (n.live && !n.silence.watching) n.silence.open();
  }

  private endCatchUp(): void {
    if (this.catchUp) clearTimeout(this.catchUp.limit);
    this.catchUp = null;
    this.catchUpStall.close();
  }

  /** Every node of the relay starts its grace period (those already waiting keep their start). */
  private lostRelay(why: string): void {
    this.endCatchUp();
    for (const n of this.nodes.values()) {
      n.live = false;
      n.silence.close();
      n.lastError = `relay ${this.relay.name} (${formatAddress(this.relay.address)}): ${why}`;
      n.grace.arm();
    }
  }

  protected reconnecting(why: string, delayMs: number): void {
    this.deps.metrics.reconnects.inc();
    this.deps.logger.debug({ relay: this.relay.name, why, delayMs }, 'reconnecting to relay');
  }

  protected closeClient(): void {
    this.endCatchUp();
    for (const n of this.nodes.values()) {
      n.grace.clear();
      n.silence.close();
    }
    this.client?.close();
  }
}
