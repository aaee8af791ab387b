/** A real HTTP server for image tests (127.0.0.1:0): serves buffers, honours Range, counts requests. */
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Served {
  /** Bytes served per path. */
  files: Map<string, Buffer>;
  /** Every request: path and Range header. */
  requests: { path: string; range: string | undefined }[];
  /** Pause between 64 KiB chunks, ms (0: send at once). */
  delayMs: number;
  /** Ignore Range headers (answer 200 with the whole file). */
  ignoreRange: boolean;
  url(p: string): string;
  close(): Promise<void>;
}

export async function serveImages(): Promise<Served> {
  const s: Omit<Served, 'url' | 'close'> = { files: new Map(), requests: [], delayMs: 0, ignoreRange: false };
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const p = req.url ?? '/';
    s.requests.push({ path: p, range: req.headers.range });
    const data = s.files.get(p);
    if (!data) {
      res.writeHead(404).end('no such image');
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && !s.ignoreRange) {
      start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
        return;
      }
      res.writeHead(206, {
        'content-length': data.length - start,
        'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
      });
    } else res.writeHead(200, { 'content-length': data.length, 'accept-ranges': 'bytes' });
    let pos = start;
    const step = (): void => {
      if (res.destroyed) return;
      if (pos >= data.length) {
        res.end();
        return;
      }
      const end = Math.min(data.length, pos + 64 * 1024);
      const ok = res.write(data.subarray(pos, end));
      pos = end;
      if (s.delayMs > 0) setTimeout(step, s.delayMs);
      else if (ok) step();
      else res.once('drain', step);
    };
    step();
  });
  server.on('connection', (c) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const served = s as Served;
  served.url = (p) => `http://127.0.0.1:${port}${p}`;
  served.close = () =>
    new Promise<void>((r) => {
      for (const c of sockets) c.destroy();
      server.close(() => r());
    });
  return served;
}
