/**
 * One gRPC server-streaming call over a bare `node:http2` client session, for the relay's
 * per-daemon WatchNode streams: a grpc-js channel costs about twice the memory of the session
 * alone, and a relay holds thousands. It speaks just what that call needs of the gRPC wire
 * protocol (HTTP/2, `application/grpc`, `te: trailers`, 5-byte length-prefixed messages, status
 * in the trailers or a trailers-only answer) and hands each message on encoded, as its own
 * Buffer: the caller decodes what it needs and keeps the bytes it forwards.
 *
 * Failures end the call with a gRPC status (the shape grpc-js gives its stream errors), never
 * with a throw: UNAVAILABLE for the connection (refused, reset, keepalive pings unanswered),
 * INTERNAL for a peer that does not speak gRPC (no or bad status, a compressed or truncated
 * message, a non-gRPC answer), RESOURCE_EXHAUSTED for a message past `maxMessageBytes`.
 */
import { EventEmitter } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { Address } from '@magrathea/common';

/** How a call ended badly (the fields of a grpc-js ServiceError the watchers read). */
export interface CallError {
  readonly code: number;
  readonly details: string;
}

/** mTLS toward the server: one secure context (CA, our certificate and key) shared by every session. A server addressed by IP is checked against that IP. */
export interface H2Tls {
  readonly context: tls.SecureContext;
}

export interface H2CallOptions {
  /** Keepalive: a ping this often; unanswered for as long, the connection is dropped (UNAVAILABLE). */
  readonly pingMs: number;
  /** Largest message accepted, bytes (larger: RESOURCE_EXHAUSTED, the call is cancelled). */
  readonly maxMessageBytes: number;
  /**
   * A message begun must be complete within this, ms (else DEADLINE_EXCEEDED, the call is
   * cancelled): a server that announces a message and trickles it, or never sends the rest,
   * answers pings all the same. Default: no limit.
   */
  readonly messageTimeoutMs?: number;
}

/** gRPC status OK. */
const OK: number = grpcStatus.OK;

/** The TLS server name sent to a server addressed by IP (as the grpc-js clients do; servers ignore it). */
const SNI_FOR_IP = 'magrathea';

/** Frames `message` as one gRPC message (uncompressed). */
export function grpcFrame(message: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + message.length);
  b[0] = 0;
  b.writeUInt32BE(message.length, 1);
  b.set(message, 5);
  return b;
}

/**
 * Splits a stream of bytes into gRPC messages. `push` returns the complete messages (each a
 * Buffer of its own, not a view into a larger chunk) or a problem; `pending` tells whether a
 * message was cut short.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Length of the message being read, once its prefix is in. */
  private want = -1;

  constructor(private readonly maxMessageBytes: number) {}

  get pending(): boolean {
    return this.buffered > 0;
  }

  push(chunk: Buffer): { messages: Buffer[]; problem: CallError | null } {
    const messages: Buffer[] = [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.want < 0) {
        if (this.buffered < 5) break;
        const head = this.take(5);
        if (head[0] !== 0)
          return {
            messages,
            problem: {
              code: grpcStatus.INTERNAL,
              details:
                head[0] === 1
                  ? 'compressed message, but no compression was offered'
                  : `bad message prefix (flags ${head[0]})`,
            },
          };
        const len = head.readUInt32BE(1);
        if (len > this.maxMessageBytes)
          return {
            messages,
            problem: {
              code: grpcStatus.RESOURCE_EXHAUSTED,
              details: `received message larger than max (${len} vs. ${this.maxMessageBytes})`,
            },
          };
        this.want = len;
      }
      if (this.buffered < this.want) break;
      messages.push(this.take(this.want));
      this.want = -1;
    }
    return { messages, problem: null };
  }

  /** The first `n` buffered bytes, copied into a Buffer of their own (so no chunk stays referenced). */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafeSlow(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec). */
function decodeGrpcMessage(v: string | string[] | undefined): string {
  const s = Array.isArray(v) ? v.join(',') : (v ?? '');
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The gRPC status of a header block, or null when it has none (a valid one is 0..16). */
function statusOf(h: http2.IncomingHttpHeaders): CallError | null {
  const raw = h['grpc-status'];
  if (raw === undefined) return null;
  const code = Number(raw);
  if (!/^\d+$/.test(String(raw)) || code > 16)
    return { code: grpcStatus.UNKNOWN, details: `bad grpc-status ${JSON.stringify(raw)}` };
  return { code, details: decodeGrpcMessage(h['grpc-message']) };
}

/**
 * One server-streaming call. Events: `metadata` (the response headers: the server took the
 * call), `data` (one message, a Buffer), then exactly one of `end` (status OK) or `error`
 * (CallError). `cancel` ends it quietly (no event).
 */
export class H2StreamCall extends EventEmitter {
  private done = false;
  private readonly frames: FrameReader;
  private stream: http2.ClientHttp2Stream | null = null;
  /** Runs while a message is begun and not complete (with messageTimeoutMs). */
  private partial: NodeJS.Timeout | null = null;

  constructor(
    maxMessageBytes: number,
    private readonly messageTimeoutMs = 0,
  ) {
    super();
    this.frames = new FrameReader(maxMessageBytes);
  }

  /** Reads the call's answer from `stream`. */
  attach(stream: http2.ClientHttp2Stream): void {
    this.stream = stream;
    stream.on('response', (h) => this.onHeaders(h));
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('trailers', (h: http2.IncomingHttpHeaders) => this.onTrailers(h));
    stream.on('error', (err: Error) =>
      this.finish({ code: grpcStatus.UNAVAILABLE, details: `stream error: ${err.message}` }),
    );
    // (A closed stream no longer names its session.)
    const session = stream.session;
    stream.on('close', () => {
      if (this.done) return;
      // The connection went (a daemon killed, a network cut): its streams close before it says so.
      if (!session || session.destroyed || session.closed) {
        this.finish({ code: grpcStatus.UNAVAILABLE, details: 'connection closed' });
        return;
      }
      const rst = stream.rstCode;
      this.finish({
        code: rst === http2.constants.NGHTTP2_REFUSED_STREAM ? grpcStatus.UNAVAILABLE : grpcStatus.INTERNAL,
        details:
          rst !== undefined && rst !== http2.constants.NGHTTP2_NO_ERROR
            ? `stream reset by the server (HTTP/2 code ${rst})`
            : 'stream ended without a grpc-status',
      });
    });
  }

  private onHeaders(h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void {
    if (this.done) return;
    const st = statusOf(h);
    if (h[':status'] !== 200) {
      this.fail({
        code: st?.code ?? grpcStatus.UNKNOWN,
        details: st?.details || `not a gRPC answer: HTTP status ${h[':status']}`,
      });
      return;
    }
    const type = String(h['content-type'] ?? '');
    if (!type.startsWith('application/grpc')) {
      this.fail({ code: grpcStatus.UNKNOWN, details: `not a gRPC answer: content-type ${JSON.stringify(type)}` });
      return;
    }
    // Trailers-only: the status comes in the headers, with no message.
    if (st) {
      this.finishWith(st);
      return;
    }
    this.emit('metadata', h);
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
    const { messages, problem } = this.frames.push(chunk);
    for (const m of messages) {
      if (this.done) return;
      this.emit('data', m);
    }
    if (problem) {
      this.fail(problem);
      return;
    }
    if (this.done || this.messageTimeoutMs <= 0) return;
    if (!this.frames.pending) this.clearPartial();
    else if (messages.length > 0 || !this.partial) {
      // A new message begun: its own time (a message completed in this chunk restarts it).
      this.clearPartial();
      const ms = this.messageTimeoutMs;
      const timer = setTimeout(() => {
        // First let what waits to be read be read (after a stall of this process, the rest may be here).
        setImmediate(() => {
          if (this.partial !== timer || this.done) return;
          this.partial = null;
          this.fail({
            code: grpcStatus.DEADLINE_EXCEEDED,
            details: `a message from the daemon not complete within ${ms} ms`,
          });
        });
      }, ms);
      timer.unref();
      this.partial = timer;
    }
  }

  private clearPartial(): void {
    if (this.partial) clearTimeout(this.partial);
    this.partial = null;
  }

  private onTrailers(h: http2.IncomingHttpHeaders): void {
    if (this.done) return;
    const st = statusOf(h) ?? { code: grpcStatus.INTERNAL, details: 'trailers without a grpc-status' };
    if (st.code === OK && this.frames.pending) {
      this.fail({ code: grpcStatus.INTERNAL, details: 'stream ended inside a message' });
      return;
    }
    this.finishWith(st);
  }

  private finishWith(st: CallError): void {
    this.clearPartial();
    if (st.code === OK) {
      this.done = true;
      this.emit('end');
    } else this.finish(st);
  }

  /** Ends the call with `err` and cancels the stream. */
  private fail(err: CallError): void {
    this.finish(err);
    this.close();
  }

  private finish(err: CallError): void {
    this.clearPartial();
    if (this.done) return;
    this.done = true;
    this.emit('error', err);
  }

  private close(): void {
    const s = this.stream;
    if (s && !s.closed && !s.destroyed) s.close(http2.constants.NGHTTP2_CANCEL);
  }

  /** Ends the call without an event (the caller dropped it). */
  cancel(): void {
    this.done = true;
    this.clearPartial();
    this.close();
  }

  /** Ends the call with `err` (the session failed under it). */
  abort(err: CallError): void {
    this.finish(err);
    this.close();
  }
}

/**
 * The client session toward one server, opened when a call needs it and kept while it works;
 * it is dropped (and the call on it fails UNAVAILABLE) when the connection fails or a keepalive
 * ping goes unanswered for `pingMs`.
 */
export class H2Client {
  private session: http2.ClientHttp2Session | null = null;
  private calls = new Set<H2StreamCall>();
  private timer: NodeJS.Timeout | null = null;
  private pingOut = false;
  /** When the session being opened must be connected. */
  private connectBy = 0;

  constructor(
    private readonly address: Address,
    private readonly tlsFiles: H2Tls | null,
    private readonly opts: H2CallOptions,
  ) {}

  /** Starts a server-streaming call of `path` with one request message (encoded). */
  serverStream(path: string, request: Uint8Array): H2StreamCall {
    const session = this.open();
    const call = new H2StreamCall(this.opts.maxMessageBytes, this.opts.messageTimeoutMs);
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(
        {
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
          'user-agent': 'magrathea-relay',
        },
        { endStream: false },
      );
    } catch (err) {
      // The session is closing or destroyed: the call fails as the connection would.
      this.drop(session);
      const why = `cannot start the call: ${(err as Error).message}`;
      setImmediate(() => call.abort({ code: grpcStatus.UNAVAILABLE, details: why }));
      return call;
    }
    call.attach(stream);
    this.calls.add(call);
    const forget = (): void => {
      this.calls.delete(call);
    };
    call.once('end', forget);
    call.once('error', forget);
    stream.once('close', forget);
    stream.end(grpcFrame(request));
    return call;
  }

  private open(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const a = this.address;
    const files = this.tlsFiles;
    const ip = a.kind === 'tcp' && net.isIP(a.host) ? a.host : null;
    const authority =
      a.kind === 'unix' ? 'localhost' : a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
    const createConnection = (): net.Socket => {
      if (!files) return a.kind === 'unix' ? net.connect(a.path) : net.connect(a.port, a.host);
      const common: tls.ConnectionOptions = { secureContext: files.context, ALPNProtocols: ['h2'] };
      if (a.kind === 'unix') return tls.connect({ ...common, path: a.path, servername: 'localhost' });
      return tls.connect({
        ...common,
        host: a.host,
        port: a.port,
        // An IP is not a valid server name (RFC 6066): send a fixed one, check the certificate against the IP.
        servername: ip ? SNI_FOR_IP : a.host,
        ...(ip
          ? { checkServerIdentity: (_n: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(ip, cert) }
          : {}),
      });
    };
    const session = http2.connect(`${files ? 'https' : 'http'}://${authority}`, {
      createConnection,
      // One call per session: the smallest tables nghttp2 allows for what it does.
      settings: { enablePush: false, headerTableSize: 0, maxConcurrentStreams: 1 },
    });
    this.session = session;
    this.pingOut = false;
    this.connectBy = Date.now() + this.opts.pingMs * 2;
    session.on('error', (err: Error) => this.failSession(session, `connection failed: ${err.message}`));
    session.on('goaway', () => {
      // No new calls on it; the current one ends by the server's own status.
      if (this.session === session) this.session = null;
    });
    session.on('close', () => this.failSession(session, 'connection closed'));
    this.timer ??= setInterval(() => {
      const s = this.session;
      if (!s) return;
      if (s.connecting) {
        if (Date.now() > this.connectBy) this.failSession(s, 'connection not established within the keepalive time');
        return;
      }
      if (this.pingOut) {
        this.failSession(s, 'keepalive ping not answered');
        return;
      }
      this.pingOut = true;
      try {
        s.ping((err) => {
          if (!err && s === this.session) this.pingOut = false;
        });
      } catch {
        this.failSession(s, 'keepalive ping could not be sent');
      }
    }, this.opts.pingMs);
    this.timer.unref();
    return session;
  }

  /** The connection is gone: every call on it fails UNAVAILABLE, the next call opens another. */
  private failSession(session: http2.ClientHttp2Session, why: string): void {
    for (const c of [...this.calls]) c.abort({ code: grpcStatus.UNAVAILABLE, details: why });
    this.calls.clear();
    this.drop(session);
  }

  private drop(session: http2.ClientHttp2Session): void {
    if (this.session === session) this.session = null;
    if (!session.destroyed) session.destroy();
    if (!this.session && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Closes the session (cancel the calls on it first: they would fail UNAVAILABLE). */
  close(): void {
    if (this.session) this.failSession(this.session, 'client closed');
  }
}
