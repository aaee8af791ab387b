/**
 * The hook API: small HTTP/JSON endpoints for the PBS hooks that run inside the domains (PBS's
 * embedded Python has no gRPC; its standard library speaks HTTP). Each domain authenticates
 * with its own bearer token and may act only on itself. Same validation and idempotency as
 * the gRPC `StartJob`/`EndJob`; bad input gets a 4xx and changes nothing.
 *
 *   POST /v1/jobs/start   {"domain", "job_id", "preemptible", "cpus", "expected_generation"?}
 *   POST /v1/jobs/end     {"domain", "job_id"}
 *   GET  /v1/domains/NAME  the domain's state and what it accepts (for the periodic hook)
 */
import * as http from 'node:http';
import type { Logger } from 'pino';
import {
  closeAfter,
  closeHttpServer,
  ConnectionGuard,
  eligibility,
  listenHttp,
  parseJsonObject,
  readLimitedBody,
} from '@magrathea/common';
import type { ConnectionLimits, FailureLimiter, MetricsExposition } from '@magrathea/common';
import type { CommandDone, CommandScope, DomainCommands } from '../engine/commands';
import type { DomainManager } from '../engine/domain-manager';
import type { DomainSummary } from '../engine/view';
import { jobRefView } from '../engine/view';
import { DaemonError, InvalidArgumentError } from '../errors';
import type { RefusedError } from '../errors';
import type { DomainTokens } from './tokens';

export interface HookServerOptions {
  /** Largest accepted request body, bytes. */
  readonly maxBodyBytes: number;
  /** Whole-request time limit (slow clients are cut off), ms. */
  readonly requestTimeoutMs: number;
  /** Caps on open connections (a connection that sends no request in time is closed). */
  readonly connections: ConnectionLimits;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
  }
}

type Reply =
  | { readonly status: number; readonly body: Record<string, unknown>; readonly type?: undefined }
  | { readonly status: number; readonly body: string; readonly type: string };

/**
 * THE mapping from errors to HTTP statuses for the hook API. Unknown errors: 500, details only
 * in the log. A refusal that carries its domain (a refused start) has the domain's status in
 * the 409 body, from `statusOf`.
 */
export function toHttpReply(
  err: unknown,
  logger: Logger,
  route: string,
  statusOf: (domain: string) => Record<string, unknown> = () => ({}),
): Reply {
  if (err instanceof HttpError)
    return { status: err.status, body: { ok: false, error: err.error, message: err.message } };
  if (err instanceof DaemonError) {
    switch (err.code) {
      case 'invalid-argument':
        return { status: 400, body: { ok: false, error: 'invalid-argument', message: err.message } };
      case 'not-found':
        return { status: 404, body: { ok: false, error: 'not-found', message: err.message } };
      case 'refused': {
        const { reason, domain } = err as RefusedError;
        return {
          status: 409,
          body: {
            ok: false,
            error: 'refused',
            reason,
            message: err.message,
            ...(domain !== null ? { status: statusOf(domain) } : {}),
          },
        };
      }
      case 'unavailable':
        return { status: 503, body: { ok: false, error: 'unavailable', message: err.message } };
      case 'config':
      case 'journal-corrupt':
      case 'state-dir':
      case 'state-dir-unsafe':
      case 'state-dir-locked':
      case 'storage':
      case 'state-dir-lost':
      case 'driver':
      case 'unauthenticated':
      case 'permission-denied':
      case 'resource-exhausted':
        break;
    }
  }
  logger.error({ err, route }, 'internal error while serving a hook request');
  return { status: 500, body: { ok: false, error: 'internal', message: 'internal error (see the daemon log)' } };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return readLimitedBody(req, limit, {
    tooLarge: (n) => new HttpError(413, 'too-large', `request body is larger than ${n} bytes`),
    incomplete: () => new HttpError(408, 'timeout', 'the request body did not arrive in time'),
  });
}

function onlyKeys(o: Record<string, unknown>, allowed: readonly string[]): void {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw new InvalidArgumentError(`unknown field(s): ${extra.slice(0, 5).join(', ')}`);
}

/** The status of one domain as the hooks publish it. */
export function domainStatus(d: DomainSummary): Record<string, unknown> {
  const e = eligibility({
    class: d.class,
    state: d.state,
    offline: d.offline,
    preemptedCpuSeconds: d.preemptedCpuSeconds,
    reachable: true,
    held: d.held,
    pendingImage: d.pendingImage,
  });
  return {
    domain: d.name,
    class: d.class,
    state: d.state,
    generation: d.generation,
    since_ms: d.sinceMs,
    offline: d.offline,
    jobs: [...d.jobIds],
    accepts: e.accepts,
    magrathea: e.token,
    rank: e.rank,
    image: d.image,
    comment: `magrathea: ${d.state}${d.offline ? ' (offline)' : ''}`,
  };
}

/** The hook API's listener. */
export interface HookServer {
  listen(host: string, port: number): Promise<number>;
  close(graceMs: number): Promise<void>;
  /** Connections refused over a cap. */
  readonly refusedConnections: number;
}

/** The hook API over the shared job commands; each request is authenticated by its domain's token. */
export function createHookServer(
  deps: {
    manager: DomainManager;
    /** The job commands (shared with gRPC). */
    commands: DomainCommands;
    tokens: DomainTokens;
    logger: Logger;
    /** Failed token checks: each is answered after a delay that grows with the failures (a valid token is never delayed). */
    limiter: FailureLimiter;
    /** Prometheus exposition for GET /metrics (loopback only by default, like the whole hook API). */
    metrics: MetricsExposition;
  },
  opts: HookServerOptions,
): HookServer {
  const log = deps.logger.child({ component: 'hook-api' });
  const { manager, commands, tokens } = deps;

  /** The token's domain. A valid token is always served at once; a bad one is answered 401 after the limiter's delay. */
  const authenticate = async (req: http.IncomingMessage): Promise<string> => {
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer ([\x21-\x7e]{1,4096})$/.exec(h) : null;
    const domain = m ? tokens.domainOf(m[1] as string) : null;
    if (domain) return domain;
    const source = req.socket.remoteAddress ?? 'unknown';
    const delayMs = deps.limiter.fail(source);
    log.warn({ remote: source, delayMs }, 'hook API authentication failed');
    if (delayMs > 0) await sleep(delayMs);
    throw new HttpError(401, 'unauthenticated', m ? 'unknown token' : 'missing bearer token');
  };

  /** A token acts on its own domain only: a request naming none means the token's. */
  const tokenScope = (tokenDomain: string): CommandScope => ({
    defaultDomain: tokenDomain,
    authorize: (domain) => {
      if (domain === tokenDomain) return;
      log.warn({ tokenDomain, requested: domain }, 'hook API token used for another domain');
      throw new HttpError(403, 'forbidden', `this token belongs to domain ${tokenDomain}, not ${domain}`);
    },
  });

  const statusOf = (domain: string): Record<string, unknown> => {
    const d = manager.domainSummary(domain);
    return d ? domainStatus(d) : {};
  };

  /** 200 with the command's result and the domain's status afterwards. */
  const done = (r: CommandDone, result: Record<string, unknown>): Reply => ({
    status: 200,
    body: { ok: true, generation: r.generation, state: r.state, ...result, status: statusOf(r.domain) },
  });

  const route = async (req: http.IncomingMessage): Promise<Reply> => {
    // The path without its query (no URL object per request: this runs for every job start and end).
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    if (req.method === 'GET' && path === '/metrics')
      return { status: 200, body: await deps.metrics.text(), type: deps.metrics.contentType };
    if (req.method === 'GET' && path.startsWith('/v1/domains/')) {
      const tokenDomain = await authenticate(req);
      let name: string;
      try {
        name = decodeURIComponent(path.slice('/v1/domains/'.length));
      } catch {
        throw new InvalidArgumentError('the domain in the path is not valid percent-encoding');
      }
      const domain = commands.domainOf(name, tokenScope(tokenDomain));
      return { status: 200, body: { ok: true, ...statusOf(domain) } };
    }
    if (path !== '/v1/jobs/start' && path !== '/v1/jobs/end') throw new HttpError(404, 'not-found', `no route ${path}`);
    if (req.method !== 'POST') throw new HttpError(405, 'method-not-allowed', `${path} takes POST`);
    const tokenDomain = await authenticate(req);
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
      throw new HttpError(415, 'unsupported-media-type', 'send the body as application/json');
    }
    const body = parseJsonObject(await readBody(req, opts.maxBodyBytes), (m) => new InvalidArgumentError(m));
    if (path === '/v1/jobs/start') {
      onlyKeys(body, ['domain', 'job_id', 'preemptible', 'cpus', 'expected_generation']);
      const r = await commands.startJob(body, tokenScope(tokenDomain));
      return done(r, {
        preempted: r.preempted,
        already_running: r.alreadyRunning,
        suspended_jobs: r.suspendedJobs.map(jobRefView),
      });
    }
    onlyKeys(body, ['domain', 'job_id', 'exit_status']);
    const r = await commands.endJob(body, tokenScope(tokenDomain));
    return done(r, { resumed: r.resumed, warning: r.warning, resumed_jobs: r.resumedJobs.map(jobRefView) });
  };

  const server = http.createServer(
    {
      requestTimeout: opts.requestTimeoutMs,
      headersTimeout: Math.min(opts.requestTimeoutMs, 5000),
      // Node checks those time limits on this timer (default 30 s): check every second.
      connectionsCheckingInterval: 1000,
      maxHeaderSize: 8192,
    },
    (req, res) => {
      const send = (r: Reply): void => {
        if (res.headersSent) return;
        const text = r.type !== undefined ? r.body : JSON.stringify(r.body);
        res.writeHead(r.status, {
          'content-type': r.type ?? 'application/json',
          'content-length': Buffer.byteLength(text),
          ...(r.status === 401 ? { 'www-authenticate': 'Bearer' } : {}),
          ...(r.status === 413 ? { connection: 'close' } : {}),
        });
        if (r.status === 413) closeAfter(res);
        res.end(text);
      };
      route(req).then(send, (err: unknown) => send(toHttpReply(err, log, req.url ?? '', statusOf)));
    },
  );
  server.keepAliveTimeout = 5000;
  const guard = new ConnectionGuard(
    { ...opts.connections, firstRequestMs: opts.connections.firstRequestMs ?? Math.min(opts.requestTimeoutMs, 5000) },
    log,
    { what: 'hook API', evictIdle: true },
  );
  guard.attachHttp(server);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT';
    if (socket.writable)
      socket.end(
        timeout
          ? 'HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n'
          : 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n',
      );
    log.debug({ err }, timeout ? 'hook API client too slow' : 'malformed hook API request');
  });

  return {
    listen: async (host, port) => {
      const bound = await listenHttp(server, host, port);
      log.info({ host, port: bound }, 'hook API listening');
      return bound;
    },
    close: async (graceMs) => {
      await closeHttpServer(server, graceMs);
      guard.destroyAll();
    },
    get refusedConnections() {
      return guard.refused;
    },
  };
}
