/**
 * The filter's HTTP server: `GET /metrics` (Prometheus) and `POST /v1/admit` (the runjob hook's
 * admission check). Errors go through `toHttpReply` only.
 */
import * as http from 'node:http';
import type { Logger } from 'pino';
import { closeAfter, ConnectionGuard, guardedHttpServer, parseJsonObject, readLimitedBody } from '@magrathea/common';
import type { ConnectionLimits, GuardedHttpServer, MetricsExposition } from '@magrathea/common';
import { admitRequest, InvalidRequestError } from './admission';
import type { ClusterView } from './cluster-view';

/** Largest admission request body, bytes. */
const MAX_BODY = 256 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
  ) {
    super(error);
  }
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly type: string;
}

const json = (status: number, body: unknown): Reply => ({
  status,
  body: JSON.stringify(body),
  type: 'application/json',
});

/** THE mapping from errors to HTTP statuses for the filter's HTTP server. Unknown errors: 500, details only in the log. */
export function toHttpReply(err: unknown, logger: Logger): Reply {
  if (err instanceof HttpError) return json(err.status, { error: err.error });
  if (err instanceof InvalidRequestError) return json(400, { error: err.message });
  logger.error({ err }, 'admit failed');
  return json(500, { error: 'internal error' });
}

/** The whole body; a body over the limit is refused as soon as it is seen to be (413, connection closed). */
function readBody(req: http.IncomingMessage): Promise<string> {
  return readLimitedBody(req, MAX_BODY, {
    tooLarge: () => new HttpError(413, 'too-large'),
    incomplete: () => new HttpError(408, 'timeout'),
  });
}

/** The filter's HTTP listener. */
export type FilterHttpServer = GuardedHttpServer;

/** What the HTTP server serves: the view (admission) and the metrics. */
export interface FilterHttpDeps {
  readonly view: ClusterView;
  readonly logger: Logger;
  readonly metrics: MetricsExposition;
  /** Caps on open connections (one that sends no request within 5 s is closed). */
  readonly connections: ConnectionLimits;
}

/** GET /metrics and POST /v1/admit; errors through toHttpReply. */
export function createHttpServer(deps: FilterHttpDeps): FilterHttpServer {
  const log = deps.logger.child({ component: 'http' });
  const route = async (req: http.IncomingMessage): Promise<Reply> => {
    if (req.method === 'GET' && req.url === '/metrics')
      return { status: 200, body: await deps.metrics.text(), type: deps.metrics.contentType };
    if (req.url !== '/v1/admit') throw new HttpError(404, 'not-found');
    if (req.method !== 'POST') throw new HttpError(405, 'method-not-allowed');
    // An array body gets through here and is refused by the field checks (as it always was).
    const body = parseJsonObject(await readBody(req), (m) => new InvalidRequestError(m), { allowArrays: true });
    return json(200, admitRequest(deps.view, body));
  };
  const server = http.createServer({ requestTimeout: 5000, connectionsCheckingInterval: 1000 }, (req, res) => {
    const send = (r: Reply): void => {
      if (res.headersSent) return;
      res.writeHead(r.status, {
        'content-type': r.type,
        'content-length': Buffer.byteLength(r.body),
        ...(r.status === 413 ? { connection: 'close' } : {}),
      });
      if (r.status === 413) closeAfter(res);
      res.end(r.body);
    };
    route(req).then(send, (err: unknown) => send(toHttpReply(err, log)));
  });
  const guard = new ConnectionGuard({ firstRequestMs: 5000, ...deps.connections }, log, {
    what: 'filter HTTP',
    evictIdle: true,
  });
  return guardedHttpServer(server, guard);
}
