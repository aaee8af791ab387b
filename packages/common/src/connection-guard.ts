/**
 * Caps on the connections a server keeps open, so that silent or slow clients cannot take all of
 * its file descriptors: at most `maxConnections` in all and `maxPerSource` from one address. An
 * HTTP server also closes a connection that sends no request within `firstRequestMs`, and when a
 * cap is reached it makes room by closing the longest-idle connection that has no request in
 * flight (a silent one first), so a new client with a real request is still served. A gRPC
 * server refuses connections over a cap; closing connections with no call open is grpc-js's
 * job, and only when its server is given `grpc.max_connection_idle_ms` (each of ours is).
 */
import type * as http from 'node:http';
import type * as net from 'node:net';

export interface ConnectionLimits {
  /** Connections open at most, over all sources. */
  readonly maxConnections: number;
  /** Connections open at most from one source address (Unix-socket peers count as one source). */
  readonly maxPerSource: number;
  /** HTTP: a connection that has sent no request this long after opening is closed, ms (0: never). */
  readonly firstRequestMs?: number;
}

/** The part of a logger the guard needs (a pino Logger fits). */
export interface GuardLogger {
  warn(fields: object, message: string): void;
}

interface Conn {
  readonly source: string;
  /** Requests in flight (HTTP). */
  busy: number;
  /** Requests served so far (HTTP). */
  served: number;
  /** When it last became idle (monotonic ms). */
  idleSince: number;
  timer: NodeJS.Timeout | null;
}

/** One warning per reason every this many ms (with how many were refused meanwhile). */
const LOG_EVERY_MS = 10_000;

export class ConnectionGuard {
  private readonly conns = new Map<net.Socket, Conn>();
  private readonly perSource = new Map<string, number>();
  /** Connections refused over a cap. */
  refused = 0;
  /** Idle connections closed to make room, or for sending no request in time. */
  closedIdle = 0;
  private lastLog = -Infinity;
  private unlogged = 0;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly log: GuardLogger,
    private readonly opts: { readonly what: string; readonly evictIdle: boolean },
  ) {}

  get size(): number {
    return this.conns.size;
  }

  /** Takes a new connection; false when it was refused (and destroyed). */
  admit(socket: net.Socket): boolean {
    const source = socket.remoteAddress ?? 'local';
    if ((this.perSource.get(source) ?? 0) >= this.limits.maxPerSource && !this.makeRoom(source)) {
      this.refuse(socket, source, `more than ${this.limits.maxPerSource} connections from one address`);
      return false;
    }
    if (this.conns.size >= this.limits.maxConnections && !this.makeRoom(null)) {
      this.refuse(socket, source, `more than ${this.limits.maxConnections} connections`);
      return false;
    }
    const c: Conn = { source, busy: 0, served: 0, idleSince: performance.now(), timer: null };
    this.conns.set(socket, c);
    this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
    const first = this.limits.firstRequestMs ?? 0;
    if (first > 0) {
      c.timer = setTimeout(() => {
        c.timer = null;
        if (c.served === 0 && c.busy === 0) {
          this.closedIdle++;
          socket.destroy();
        }
      }, first);
      c.timer.unref();
    }
    socket.once('close', () => this.forget(socket));
    return true;
  }

  /** Closes the longest-idle connection without a request in flight (of `source`, or any); false if there is none. */
  private makeRoom(source: string | null): boolean {
    if (!this.opts.evictIdle) return false;
    let victim: net.Socket | null = null;
    let best: Conn | null = null;
    for (const [s, c] of this.conns) {
      if (c.busy > 0 || (source !== null && c.source !== source)) continue;
      // Silent connections (no request yet) go first, then the longest idle.
      if (
        !best ||
        (c.served === 0 && best.served > 0) ||
        (c.served > 0 === best.served > 0 && c.idleSince < best.idleSince)
      ) {
        best = c;
        victim = s;
      }
    }
    if (!victim) return false;
    this.forget(victim);
    victim.destroy();
    this.closedIdle++;
    return true;
  }

  private refuse(socket: net.Socket, source: string, why: string): void {
    this.refused++;
    socket.destroy();
    const now = performance.now();
    if (now - this.lastLog < LOG_EVERY_MS) {
      this.unlogged++;
      return;
    }
    this.log.warn(
      { source, why, refusedSinceLastWarning: this.unlogged, open: this.conns.size },
      `${this.opts.what}: connection refused`,
    );
    this.lastLog = now;
    this.unlogged = 0;
  }

  private forget(socket: net.Socket): void {
    const c = this.conns.get(socket);
    if (!c) return;
    this.conns.delete(socket);
    if (c.timer) clearTimeout(c.timer);
    const n = (this.perSource.get(c.source) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(c.source);
    else this.perSource.set(c.source, n);
  }

  /** Follows the requests of an HTTP server's connections (and admits them): call before it listens. */
  attachHttp(server: http.Server): void {
    server.prependListener('connection', (socket: net.Socket) => {
      this.admit(socket);
    });
    server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const c = this.conns.get(req.socket);
      if (!c) return;
      c.busy++;
      if (c.timer) {
        clearTimeout(c.timer);
        c.timer = null;
      }
      res.once('close', () => {
        c.busy--;
        c.served++;
        c.idleSince = performance.now();
      });
    });
  }

  /** Closes every connection (the end of a shutdown). */
  destroyAll(): void {
    for (const s of [...this.conns.keys()]) {
      this.forget(s);
      s.destroy();
    }
  }
}
