/** The trace replay's hook client against a real node:http server: keep-alive, the server's idle close, bad answers. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HookClient } from '../../bench/sim/hook-client';
import type { SimNode } from '../../bench/sim/placement';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** Answers with the request's JSON body echoed back, plus `headers`. */
function echo(res: http.ServerResponse, body: string, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify({ ok: true, echo: JSON.parse(body) as unknown });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

interface Fixture {
  readonly srv: http.Server;
  readonly c: HookClient;
  /** The node whose hook API is the server. */
  readonly n: SimNode;
  readonly requests: { url: string; auth: string; body: string }[];
  /** Connections the server accepted so far. */
  connections(): number;
}

/** Runs `fn` against a fresh server (answering with `handler`, by default an echo) and client; both are closed after, whatever happens. */
async function withServer(fn: (f: Fixture) => Promise<void>, handler: Handler = (_req, res, body) => echo(res, body)) {
  const requests: Fixture['requests'] = [];
  let connections = 0;
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      requests.push({ url: req.url ?? '', auth: req.headers.authorization ?? '', body });
      handler(req, res, body);
    });
  });
  srv.on('connection', () => connections++);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const c = new HookClient();
  const n = {
    name: 'n',
    hookPort: (srv.address() as AddressInfo).port,
    tokens: { batch: 'tok-b', prio: 'tok-p' },
    chain: Promise.resolve(),
  } as unknown as SimNode;
  try {
    await fn({ srv, c, n, requests, connections: () => connections });
  } finally {
    c.destroy();
    srv.closeAllConnections();
    srv.close();
  }
}

test('requests go in order on one kept-alive connection, with the bearer token of the domain', () =>
  withServer(async ({ c, n, requests, connections }) => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => c.post(n, i % 2 ? 'prio' : 'batch', '/v1/jobs/start', { job_id: `${i}.x` })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(answers.map((a) => (a.body.echo as { job_id: string }).job_id)).toEqual(
      Array.from({ length: 20 }, (_, i) => `${i}.x`),
    );
    expect(requests.map((r) => r.auth)).toEqual(
      Array.from({ length: 20 }, (_, i) => `Bearer tok-${i % 2 ? 'p' : 'b'}`),
    );
    expect(connections()).toBe(1);
  }));

test('a connection the server closed while idle is replaced: the next request is answered', () =>
  withServer(async ({ srv, c, n }) => {
    srv.keepAliveTimeout = 30;
    for (let i = 0; i < 5; i++) {
      expect((await c.post(n, 'batch', '/v1/jobs/end', { job_id: `${i}.x` })).status).toBe(200);
      // Longer than the server's keep-alive: it closes the connection in between.
      await new Promise((r) => setTimeout(r, 80));
    }
  }));

test('a server that closes the connection after each answer: every request is answered, on a new connection each', () =>
  withServer(
    async ({ c, n, connections }) => {
      // Back to back: the next request goes out while the closed socket's events are still due.
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => c.post(n, 'batch', '/v1/jobs/end', { job_id: `${i}.x` })),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
      expect(connections()).toBeGreaterThanOrEqual(10);
    },
    (_req, res, body) => echo(res, body, { connection: 'close' }),
  ));

test('an answer without content-length, or a connection dropped before the answer, fails that request', () =>
  withServer(
    async ({ c, n }) => {
      await expect(c.post(n, 'batch', '/v1/jobs/start', { job_id: 'chunked' })).rejects.toThrow(/content-length/);
      await expect(c.post(n, 'batch', '/v1/jobs/start', { job_id: 'drop' })).rejects.toThrow(/closed|ECONNRESET/);
    },
    (req, res, body) => {
      if (body.includes('drop')) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.end('{}');
    },
  ));
