/** The trace replay's hook client against a real node:http server: keep-alive, the server's idle close, bad answers. */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HookClient } from '../../bench/sim/hook-client';
import type { SimNode } from '../../bench/sim/placement';

/** A server answering each POST with its body echoed back; `handler` may replace the answer. */
async function server(
  handler?: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void,
): Promise<{ srv: http.Server; port: number; requests: { url: string; auth: string; body: string }[] }> {
  const requests: { url: string; auth: string; body: string }[] = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      requests.push({ url: req.url ?? '', auth: req.headers.authorization ?? '', body });
      if (handler) return handler(req, res, body);
      const text = JSON.stringify({ ok: true, echo: JSON.parse(body) as unknown });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, port: (srv.address() as AddressInfo).port, requests };
}

const simNode = (port: number): SimNode =>
  ({
    name: 'n',
    hookPort: port,
    tokens: { batch: 'tok-b', prio: 'tok-p' },
    chain: Promise.resolve(),
  }) as unknown as SimNode;

test('requests go in order on one kept-alive connection, with the bearer token of the domain', async () => {
  const { srv, port, requests } = await server();
  const c = new HookClient();
  try {
    let connections = 0;
    srv.on('connection', () => connections++);
    const n = simNode(port);
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
    expect(connections).toBe(1);
  } finally {
    c.destroy();
    srv.closeAllConnections();
    srv.close();
  }
});

test('a connection the server closed while idle is replaced: the next request is answered', async () => {
  const { srv, port } = await server();
  srv.keepAliveTimeout = 30;
  const c = new HookClient();
  try {
    const n = simNode(port);
    for (let i = 0; i < 5; i++) {
      expect((await c.post(n, 'batch', '/v1/jobs/end', { job_id: `${i}.x` })).status).toBe(200);
      // Longer than the server's keep-alive: it closes the connection in between.
      await new Promise((r) => setTimeout(r, 80));
    }
  } finally {
    c.destroy();
    srv.closeAllConnections();
    srv.close();
  }
});

test('a server that closes the connection after each answer: every request is answered, on a new connection each', async () => {
  const { srv, port } = await server((_req, res, body) => {
    const text = JSON.stringify({ ok: true, echo: JSON.parse(body) as unknown });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      connection: 'close',
    });
    res.end(text);
  });
  const c = new HookClient();
  try {
    let connections = 0;
    srv.on('connection', () => connections++);
    const n = simNode(port);
    // Back to back: the next request goes out while the closed socket's events are still due.
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => c.post(n, 'batch', '/v1/jobs/end', { job_id: `${i}.x` })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(connections).toBeGreaterThanOrEqual(10);
  } finally {
    c.destroy();
    srv.closeAllConnections();
    srv.close();
  }
});

test('an answer without content-length, or a connection dropped before the answer, fails that request', async () => {
  const { srv, port } = await server((req, res, body) => {
    if (body.includes('drop')) {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.end('{}');
  });
  const c = new HookClient();
  try {
    const n = simNode(port);
    await expect(c.post(n, 'batch', '/v1/jobs/start', { job_id: 'chunked' })).rejects.toThrow(/content-length/);
    await expect(c.post(n, 'batch', '/v1/jobs/start', { job_id: 'drop' })).rejects.toThrow(/closed|ECONNRESET/);
  } finally {
    c.destroy();
    srv.closeAllConnections();
    srv.close();
  }
});
