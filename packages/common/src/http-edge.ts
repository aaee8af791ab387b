/** Small pieces both HTTP edges use (the daemon's hook API, the filter's admission and metrics server). */
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConnectionGuard } from './connection-guard';
import { closeHttpServer } from './shutdown';

/** What a `GET /metrics` route serves: the Prometheus exposition and its content type. */
export interface MetricsExposition {
  text(): Promise<string>;
  readonly contentType: string;
}

/** Binds `server` to `host:port` (port 0 picks one); resolves with the bound port. */
export function listenHttp(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** An HTTP server behind its ConnectionGuard, as an edge hands it to its owner. */
export interface GuardedHttpServer {
  /** Binds to `host:port` (port 0 picks one); returns the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** Graceful close, forced after `graceMs`; then every connection the guard still holds is dropped. */
  close(graceMs: number): Promise<void>;
  /** Connections refused over a cap. */
  readonly refusedConnections: number;
}

/** Attaches `guard` to `server` and wraps both. */
export function guardedHttpServer(server: http.Server, guard: ConnectionGuard): GuardedHttpServer {
  guard.attachHttp(server);
  return {
    listen: (host, port) => listenHttp(server, host, port),
    close: async (graceMs) => {
      await closeHttpServer(server, graceMs);
      guard.destroyAll();
    },
    get refusedConnections() {
      return guard.refused;
    },
  };
}

/**
 * Parses a request body that must be a JSON object (a JSON array too with `allowArrays`).
 * `invalid` makes the edge's own 400 error from the message.
 */
export function parseJsonObject(
  text: string,
  invalid: (message: string) => Error,
  opts: { readonly allowArrays?: boolean } = {},
): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw invalid('the body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || (Array.isArray(v) && opts.allowArrays !== true))
    throw invalid('the body must be a JSON object');
  const dup = duplicateKey(text);
  if (dup !== null) throw invalid(`the body has the field ${JSON.stringify(dup)} twice`);
  return v as Record<string, unknown>;
}

/**
 * The first key that an object of `text` (already valid JSON) has twice, or null. JSON.parse
 * keeps the last one silently, while another reader (a proxy, a log tool) may keep the first:
 * a request must mean one thing.
 */
function duplicateKey(text: string): string | null {
  const open: Set<string>[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x7b /* { */) open.push(new Set());
    else if (ch === 0x7d /* } */) open.pop();
    else if (ch === 0x5b /* [ */)
      open.push(new Set()); // arrays: a placeholder, never a key
    else if (ch === 0x5d /* ] */) open.pop();
    else if (ch === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      let k = j + 1;
      while (k < text.length && /\s/.test(text.charAt(k))) k++;
      if (text.charAt(k) === ':') {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const keys = open[open.length - 1];
        if (keys?.has(key)) return key;
        keys?.add(key);
      }
      i = j;
    }
  }
  return null;
}

/** How an edge turns body problems into its own errors. */
export interface BodyErrors {
  /** The body is larger than the limit (answer 413 and close the connection). */
  readonly tooLarge: (limit: number) => Error;
  /** The client went away (or timed out) before the body was complete. */
  readonly incomplete: () => Error;
}

/**
 * Reads a request body of at most `limit` bytes. A body announced (Content-Length) or found to
 * be larger is refused at once: reading stops there, nothing more is buffered, and the caller
 * answers 413 with `connection: close` (see `closeAfter`), so a huge upload costs a bounded
 * amount of memory and time.
 */
export function readLimitedBody(req: http.IncomingMessage, limit: number, errors: BodyErrors): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > limit) {
      req.pause();
      reject(errors.tooLarge(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > limit) {
        settled = true;
        req.off('data', onData);
        req.pause();
        chunks.length = 0;
        reject(errors.tooLarge(limit));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (err) => {
      if (settled) return;
      settled = true;
      reject(err);
    });
    req.on('close', () => {
      if (settled) return;
      settled = true;
      reject(errors.incomplete());
    });
  });
}

/** Closes the connection once the response is sent (after a 413 the rest of the body is never read). */
export function closeAfter(res: http.ServerResponse): void {
  res.once('finish', () => res.socket?.destroy());
}
