/**
 * The status page's live feed (server-sent events): a snapshot of every node when a page
 * connects, then the changed nodes, coalesced: a node that changes a hundred times between two
 * sends is sent once, as it is now, and no page gets more than one send per `intervalMs`. The
 * first change after a quiet spell goes out at once. Each send is serialized once for all pages;
 * a page that does not keep up (its connection's buffer is full) collects the names of the nodes
 * it missed and gets them, as they are then, when its buffer drains; one that stays stuck is cut
 * off (its page reconnects and starts from a snapshot). A ping every `heartbeatMs` lets a page
 * tell a silent filter from a quiet cluster.
 */
import type { Logger } from 'pino';
import type { ClusterView, NodeChange } from './cluster-view';
import type { StatusHistory } from './status-history';
import { pageNode } from './status-rows';

/** Where the feed writes one page's events (an HTTP response, possibly through gzip). */
export interface FeedOutput {
  /** Queues `chunk`; false when the buffer is full (the feed then waits for `onDrain`). */
  write(chunk: string): boolean;
  /** Called once the buffer has drained after a `write` returned false. */
  onDrain(cb: () => void): void;
  /** Ends the stream (shutdown). */
  end(): void;
  /** Cuts the connection (a page that does not read). */
  destroy(): void;
}

export interface FeedOptions {
  readonly intervalMs: number;
  readonly heartbeatMs: number;
  /** A page whose buffer stays full this long is cut off, ms. */
  readonly stuckAfterMs: number;
}

interface Client {
  readonly out: FeedOutput;
  /** Names of the nodes this page missed while its buffer was full; null while it keeps up. */
  missed: Set<string> | null;
  laggingSinceMs: number;
}

const event = (name: string, data: string): string => `event: ${name}\ndata: ${data}\n\n`;

export class StatusFeed {
  private readonly clients = new Set<Client>();
  private readonly dirty = new Set<string>();
  /** Node → its row as JSON, until it changes. */
  private readonly rows = new Map<string, string>();
  /** Node → the daemon's commit time of its newest change. */
  private readonly commits = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private readonly pinger: NodeJS.Timeout;
  private lastSendMs = -Infinity;
  private seq = 0;
  private readonly unsubscribe: () => void;
  /** Sends of changes, and nodes in them (for the metrics and tests). */
  sends = 0;
  nodesSent = 0;

  constructor(
    private readonly view: ClusterView,
    private readonly history: StatusHistory,
    private readonly opts: FeedOptions,
    private readonly deps: { logger: Logger; now: () => number },
  ) {
    this.unsubscribe = view.subscribe(this.onView);
    this.pinger = setInterval(() => this.ping(), opts.heartbeatMs);
    this.pinger.unref();
  }

  private readonly onView = (c: NodeChange): void => {
    const name = c.node.cfg.name;
    if (c.commitAtMs > 0) this.commits.set(name, c.commitAtMs);
    this.rows.delete(name);
    if (this.clients.size === 0) return;
    this.dirty.add(name);
    this.schedule();
  };

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.lastSendMs + this.opts.intervalMs - this.deps.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.send();
    }, wait);
  }

  /** The node's row as JSON (cached until the node changes). */
  rowJson(name: string): string | null {
    const cached = this.rows.get(name);
    if (cached !== undefined) return cached;
    const n = this.view.nodes.get(name);
    if (!n) return null;
    const json = JSON.stringify(pageNode(this.view, this.history, n, this.commits.get(name) ?? 0));
    this.rows.set(name, json);
    return json;
  }

  private payload(kind: 'snapshot' | 'delta', names: Iterable<string>): string {
    const rows: string[] = [];
    for (const name of names) {
      const r = this.rowJson(name);
      if (r !== null) rows.push(r);
    }
    const head = {
      seq: ++this.seq,
      nowMs: this.deps.now(),
      intervalMs: this.opts.intervalMs,
      heartbeatMs: this.opts.heartbeatMs,
    };
    return event(kind, `${JSON.stringify(head).slice(0, -1)},"nodes":[${rows.join(',')}]}`);
  }

  /** Every node, as JSON (the page's snapshot, and `GET /api/nodes`). */
  snapshotJson(): string {
    const rows: string[] = [];
    for (const name of this.view.nodes.keys()) {
      const r = this.rowJson(name);
      if (r !== null) rows.push(r);
    }
    return `{"nowMs":${this.deps.now()},"nodes":[${rows.join(',')}]}`;
  }

  private send(): void {
    if (this.dirty.size === 0) return;
    const names = [...this.dirty];
    this.dirty.clear();
    this.lastSendMs = this.deps.now();
    this.sends++;
    this.nodesSent += names.length;
    let shared: string | null = null;
    for (const c of this.clients) {
      if (c.missed) {
        for (const n of names) c.missed.add(n);
        this.cutIfStuck(c);
        continue;
      }
      shared ??= this.payload('delta', names);
      this.write(c, shared);
    }
  }

  private write(c: Client, chunk: string): void {
    if (c.out.write(chunk)) return;
    c.missed = new Set();
    c.laggingSinceMs = this.deps.now();
    c.out.onDrain(() => {
      if (!this.clients.has(c) || !c.missed) return;
      const missed = c.missed;
      c.missed = null;
      if (missed.size > 0) this.write(c, this.payload('delta', missed));
    });
  }

  private cutIfStuck(c: Client): void {
    if (this.deps.now() - c.laggingSinceMs < this.opts.stuckAfterMs) return;
    this.deps.logger.warn({ missedNodes: c.missed?.size ?? 0 }, 'status page not reading its feed; disconnected');
    this.clients.delete(c);
    c.out.destroy();
  }

  private ping(): void {
    const chunk = event('ping', JSON.stringify({ nowMs: this.deps.now() }));
    for (const c of this.clients) {
      if (c.missed) this.cutIfStuck(c);
      else this.write(c, chunk);
    }
  }

  /** Starts a page's feed with a snapshot; `closed` must be called when the connection ends. */
  add(out: FeedOutput): { closed: () => void } {
    const c: Client = { out, missed: null, laggingSinceMs: 0 };
    this.clients.add(c);
    out.write(`retry: 2000\n\n`);
    this.write(c, this.payload('snapshot', this.view.nodes.keys()));
    return { closed: () => this.clients.delete(c) };
  }

  /** Pages connected now. */
  get size(): number {
    return this.clients.size;
  }

  /** Ends every page's stream and stops (the pages reconnect to the next filter). */
  close(): void {
    this.unsubscribe();
    clearInterval(this.pinger);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const c of this.clients) c.out.end();
    this.clients.clear();
  }
}
