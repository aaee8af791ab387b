/**
 * The status page's own listener (`web:` in the config): the page's static files from
 * `src/web`, its live feed `GET /api/events` (server-sent events), `GET /api/nodes` (every node
 * as JSON) and `GET /api/timeline?node=N&domain=D` (a domain's recent past). Read-only: every
 * other method is 405. Plain HTTP on loopback, or HTTPS where every request must carry a client
 * certificate from the site CA whose identity has a role (reader, operator or filter); a source
 * that fails too often is refused for a minute. Errors go through `toWebReply` only.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import type { TLSSocket } from 'node:tls';
import * as zlib from 'node:zlib';
import type { Logger } from 'pino';
import { closeHttpServer, FailureLimiter, listenHttp, PeerAuthenticator, readPem } from '@magrathea/common';
import type { ClusterView } from './cluster-view';
import type { WebConfig } from './config';
import type { FeedOutput, StatusFeed } from './status-feed';
import type { StatusHistory } from './status-history';

/** The page's files: `src/web` of this package (from `src/service` and from `dist/service` alike). */
export const WEB_DIR = path.resolve(__dirname, '..', '..', 'src', 'web');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Sent with every answer: nothing but this origin's own files, never framed. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export class WebError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    /** Answer this much later (a failed authentication from a source that keeps failing). */
    readonly delayMs = 0,
  ) {
    super(error);
  }
}

interface Reply {
  readonly status: number;
  readonly body: string | Buffer;
  readonly type: string;
  readonly headers?: Readonly<Record<string, string>>;
}

const json = (status: number, body: unknown): Reply => ({
  status,
  body: JSON.stringify(body),
  type: 'application/json',
});

/** THE mapping from errors to HTTP statuses for the status page's listener. Unknown errors: 500, details in the log. */
export function toWebReply(err: unknown, logger: Logger): Reply {
  if (err instanceof WebError) return json(err.status, { error: err.error });
  logger.error({ err }, 'status page request failed');
  return json(500, { error: 'internal error' });
}

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** Every file of the page, read once at start (a missing file is a start-up error, not a 404 later). */
export function loadWebFiles(dir = WEB_DIR): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of fs.readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (!type) continue;
    const body = fs.readFileSync(path.join(dir, name));
    files.set(name, { body, type, etag: `"${body.length.toString(36)}-${hash(body)}"` });
  }
  if (!files.has('index.html')) throw new Error(`${dir}/index.html is missing: the status page cannot be served`);
  return files;
}

function hash(b: Buffer): string {
  let h = 2166136261;
  for (const x of b) h = Math.imul(h ^ x, 16777619) >>> 0;
  return h.toString(36);
}

/** The status page's listener. */
export interface StatusServer {
  listen(): Promise<number>;
  /** Ends the feeds, then closes (forced after `graceMs`). */
  close(graceMs: number): Promise<void>;
}

export interface StatusServerDeps {
  readonly cfg: WebConfig;
  readonly view: ClusterView;
  readonly history: StatusHistory;
  readonly feed: StatusFeed;
  readonly logger: Logger;
  readonly now: () => number;
}

/** An HTTP response (gzip-compressed when the page accepts it) as the feed's output. */
function feedOutput(req: http.IncomingMessage, res: http.ServerResponse): FeedOutput {
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
  });
  res.socket?.setNoDelay(true);
  if (!gzip)
    return {
      write: (s) => res.write(s),
      onDrain: (cb) => res.once('drain', cb),
      end: () => res.end(),
      destroy: () => res.destroy(),
    };
  const z = zlib.createGzip({ level: 4 });
  z.pipe(res);
  return {
    write: (s) => {
      const ok = z.write(s);
      z.flush(zlib.constants.Z_SYNC_FLUSH);
      return ok && !res.writableNeedDrain;
    },
    onDrain: (cb) => {
      // Both the compressor and the socket must have room again.
      const check = (): void => {
        if (z.writableNeedDrain) z.once('drain', check);
        else if (res.writableNeedDrain) res.once('drain', check);
        else cb();
      };
      check();
    },
    end: () => z.end(),
    destroy: () => res.destroy(),
  };
}

export function createStatusServer(deps: StatusServerDeps): StatusServer {
  const { cfg, view, history, feed } = deps;
  const log = deps.logger.child({ component: 'status-page' });
  const files = loadWebFiles();
  const tls = cfg.tls;
  const authenticator = tls
    ? new PeerAuthenticator(readPem(tls.ca, 'web.tls.ca: CA certificate'), tls.clients, deps.now)
    : null;
  // Its windows run on the monotonic clock (a wall clock stepped back does not reset them).
  const limiter = new FailureLimiter(20, 60_000);

  const authorize = (req: http.IncomingMessage): void => {
    if (!authenticator) return;
    const cert = (req.socket as TLSSocket).getPeerCertificate?.();
    const r = authenticator.check(cert && 'raw' in cert ? cert.raw : null, 'WatchCluster');
    if (r.ok) return;
    // A valid certificate is always served at once; failures from a source that keeps failing
    // are answered later and later (never a lock-out that a guesser could inflict on others).
    const source = req.socket.remoteAddress ?? 'unknown';
    const delayMs = limiter.fail(source);
    log.warn({ source, code: r.code, reason: r.message, delayMs }, 'status page authentication failed');
    throw new WebError(r.code === 'unauthenticated' ? 401 : 403, r.message, delayMs);
  };

  const staticFile = (req: http.IncomingMessage, name: string): Reply => {
    const f = files.get(name);
    if (!f) throw new WebError(404, 'not-found');
    if (req.headers['if-none-match'] === f.etag)
      return { status: 304, body: '', type: f.type, headers: { etag: f.etag } };
    return { status: 200, body: f.body, type: f.type, headers: { etag: f.etag, 'cache-control': 'no-cache' } };
  };

  const route = (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Reply | null => {
    if (req.method !== 'GET' && req.method !== 'HEAD')
      throw new WebError(405, 'method-not-allowed (the status page is read-only)');
    authorize(req);
    const p = url.pathname;
    if (p === '/') return staticFile(req, 'index.html');
    if (p === '/api/events') {
      if (feed.size >= cfg.maxClients) {
        log.warn({ max: cfg.maxClients }, 'status page feed refused: too many pages connected');
        throw new WebError(503, `${cfg.maxClients} pages are connected already (web.maxClients)`);
      }
      res.on('close', feed.add(feedOutput(req, res)).closed);
      return null;
    }
    if (p === '/api/nodes') return { status: 200, body: feed.snapshotJson(), type: 'application/json' };
    if (p === '/api/timeline') {
      const node = url.searchParams.get('node') ?? '';
      const domain = url.searchParams.get('domain') ?? '';
      const n = view.nodes.get(node);
      if (!n || !n.domains.has(domain)) throw new WebError(404, 'no such node and domain');
      return json(200, { node, domain, nowMs: deps.now(), entries: history.timeline(node, domain) });
    }
    const m = /^\/assets\/([a-z0-9-]+\.(?:js|css|svg))$/.exec(p);
    if (m?.[1]) return staticFile(req, m[1]);
    throw new WebError(404, 'not-found');
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const send = (r: Reply): void => {
      if (res.headersSent) return;
      res.writeHead(r.status, {
        ...SECURITY_HEADERS,
        ...r.headers,
        'content-type': r.type,
        'content-length': Buffer.byteLength(r.body),
      });
      res.end(req.method === 'HEAD' ? undefined : r.body);
    };
    try {
      const r = route(req, res, new URL(req.url ?? '/', 'http://status'));
      if (r) send(r);
    } catch (err) {
      const delayMs = err instanceof WebError ? err.delayMs : 0;
      if (delayMs > 0) setTimeout(() => send(toWebReply(err, log)), delayMs).unref();
      else send(toWebReply(err, log));
    }
  };

  const server: http.Server = tls
    ? https.createServer(
        {
          ca: readPem(tls.ca, 'web.tls.ca: CA certificate'),
          cert: readPem(tls.cert, 'web.tls.cert: certificate'),
          key: readPem(tls.key, 'web.tls.key: private key'),
          // Asked for, checked per request above: a page without one gets a clear 401, not a failed handshake.
          requestCert: true,
          rejectUnauthorized: false,
        },
        handler,
      )
    : http.createServer(handler);
  server.requestTimeout = 0; // the feed is a long-lived response
  server.headersTimeout = 10_000;
  // Renewed certificates are taken without a restart, as the daemons do.
  const reload = tls
    ? setInterval(() => {
        try {
          (server as https.Server).setSecureContext({
            ca: readPem(tls.ca, 'web.tls.ca'),
            cert: readPem(tls.cert, 'web.tls.cert'),
            key: readPem(tls.key, 'web.tls.key'),
          });
          authenticator?.setCa(readPem(tls.ca, 'web.tls.ca'));
        } catch (err) {
          log.error({ err }, 'status page certificates could not be re-read; keeping the old ones');
        }
      }, 60_000)
    : null;
  reload?.unref();
  return {
    listen: () => listenHttp(server, cfg.host, cfg.port),
    close: async (graceMs) => {
      if (reload) clearInterval(reload);
      feed.close();
      await closeHttpServer(server, graceMs);
    },
  };
}
