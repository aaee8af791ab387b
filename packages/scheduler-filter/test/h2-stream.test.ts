/**
 * The relay's gRPC-over-bare-HTTP/2 call (h2-stream.ts) against in-process HTTP/2 servers that
 * answer well and badly, and against a real grpc-js server; and the relay's codecs (wire.ts)
 * against the proto-loader ones the filter reads them with.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { loadMagratheaApi, loadPackageDefinition } from '@magrathea/common';
import { FrameReader, H2Client, grpcFrame } from '../src/relay/h2-stream';
import type { CallError, H2StreamCall } from '../src/relay/h2-stream';
import { NodeEventCodec, encodeRelayEvent } from '../src/relay/wire';

const PATH = '/magrathea.v1.NodeService/WatchNode';
const OPTS = { pingMs: 200, maxMessageBytes: 1024 };

interface Outcome {
  metadata: boolean;
  messages: Buffer[];
  end: 'ok' | CallError;
}

/** Runs one call to completion (its end or error). */
function outcome(call: H2StreamCall): Promise<Outcome> {
  const o: Omit<Outcome, 'end'> = { metadata: false, messages: [] };
  call.on('metadata', () => (o.metadata = true));
  call.on('data', (m: Buffer) => o.messages.push(m));
  return new Promise((resolve) => {
    call.on('end', () => resolve({ ...o, end: 'ok' }));
    call.on('error', (e: CallError) => resolve({ ...o, end: e }));
  });
}

/** An HTTP/2 server answering every stream with `answer`; the request body it got is recorded. */
async function h2Server(
  answer: (s: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): Promise<{ port: number; bodies: Buffer[]; close(): Promise<void> }> {
  const server = http2.createServer();
  const bodies: Buffer[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  server.on('stream', (s, h) => {
    s.on('error', () => undefined);
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => bodies.push(Buffer.concat(chunks)));
    answer(s, h);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    bodies,
    close: () =>
      new Promise((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

const ok = { ':status': 200, 'content-type': 'application/grpc' };

describe('FrameReader', () => {
  test('messages split across chunks and several in one chunk, each in a Buffer of its own', () => {
    const r = new FrameReader(100);
    const a = grpcFrame(Buffer.from('hello'));
    const b = grpcFrame(Buffer.from(''));
    const c = grpcFrame(Buffer.from('world!'));
    const all = Buffer.concat([a, b, c]);
    const got: string[] = [];
    for (let i = 0; i < all.length; i += 3) {
      const { messages, problem } = r.push(all.subarray(i, i + 3));
      expect(problem).toBeNull();
      for (const m of messages) {
        expect(m.buffer.byteLength).toBe(m.length);
        got.push(m.toString());
      }
    }
    expect(got).toEqual(['hello', '', 'world!']);
    expect(r.pending).toBe(false);
    expect(r.push(a.subarray(0, 7)).messages).toEqual([]);
    expect(r.pending).toBe(true);
  });

  test('a compressed or badly flagged message and one past the limit are problems', () => {
    const z = grpcFrame(Buffer.from('x'));
    z[0] = 1;
    expect(new FrameReader(100).push(z).problem).toEqual({
      code: grpc.status.INTERNAL,
      details: 'compressed message, but no compression was offered',
    });
    z[0] = 7;
    expect(new FrameReader(100).push(z).problem?.details).toBe('bad message prefix (flags 7)');
    expect(new FrameReader(4).push(grpcFrame(Buffer.alloc(5))).problem).toEqual({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: 'received message larger than max (5 vs. 4)',
    });
  });
});

describe('H2Client server streams', () => {
  const clients: H2Client[] = [];
  const client = (port: number, opts = OPTS): H2Client => {
    const c = new H2Client({ kind: 'tcp', host: '127.0.0.1', port }, null, opts);
    clients.push(c);
    return c;
  };
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  test('the request is one framed message with the gRPC headers; messages, then OK in the trailers', async () => {
    let headers: http2.IncomingHttpHeaders = {};
    const srv = await h2Server((s, h) => {
      headers = h;
      s.respond(ok, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.write(Buffer.concat([grpcFrame(Buffer.from('a')), grpcFrame(Buffer.from('bc')).subarray(0, 3)]));
      setTimeout(() => s.end(grpcFrame(Buffer.from('bc')).subarray(3)), 20);
    });
    const o = await outcome(client(srv.port).serverStream(PATH, Buffer.from('req')));
    expect(o).toEqual({ metadata: true, messages: [Buffer.from('a'), Buffer.from('bc')], end: 'ok' });
    expect(headers).toMatchObject({
      ':method': 'POST',
      ':path': PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    expect(srv.bodies[0]).toEqual(grpcFrame(Buffer.from('req')));
    await srv.close();
  });

  test('an error status in the trailers (message percent-decoded) or trailers-only; a bad status', async () => {
    const answers: http2.OutgoingHttpHeaders[] = [
      { 'grpc-status': '5', 'grpc-message': 'no%20such%20node' },
      { ...ok, 'grpc-status': '16', 'grpc-message': 'who are you' },
      { 'grpc-status': 'banana' },
      { 'x-other': 'no status' },
    ];
    let n = 0;
    const srv = await h2Server((s) => {
      const a = answers[n++]!;
      if ('content-type' in a) {
        s.respond(a, { endStream: true });
        return;
      }
      s.respond(ok, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers(a));
      s.end(grpcFrame(Buffer.from('m')));
    });
    const c = client(srv.port);
    const call = (): Promise<Outcome> => outcome(c.serverStream(PATH, Buffer.alloc(0)));
    expect(await call()).toEqual({
      metadata: true,
      messages: [Buffer.from('m')],
      end: { code: grpc.status.NOT_FOUND, details: 'no such node' },
    });
    expect(await call()).toEqual({
      metadata: false,
      messages: [],
      end: { code: grpc.status.UNAUTHENTICATED, details: 'who are you' },
    });
    expect((await call()).end).toEqual({ code: grpc.status.UNKNOWN, details: 'bad grpc-status "banana"' });
    expect((await call()).end).toEqual({ code: grpc.status.INTERNAL, details: 'trailers without a grpc-status' });
    await srv.close();
  });

  test('not a gRPC answer, a malformed or oversized message, a stream cut inside a message, no status', async () => {
    const answers: ((s: http2.ServerHttp2Stream) => void)[] = [
      (s) => s.respond({ ':status': 404, 'content-type': 'text/html' }, { endStream: true }),
      (s) => {
        s.respond({ ':status': 200, 'content-type': 'text/html' });
        s.end('<html>');
      },
      (s) => {
        s.respond(ok);
        s.write(Buffer.from([9, 0, 0, 0, 1, 0]));
      },
      (s) => {
        s.respond(ok);
        s.write(grpcFrame(Buffer.alloc(2000)));
      },
      (s) => {
        s.respond(ok, { waitForTrailers: true });
        s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
        s.end(grpcFrame(Buffer.from('abc')).subarray(0, 6));
      },
      (s) => {
        s.respond(ok);
        s.end();
      },
    ];
    let n = 0;
    const srv = await h2Server((s) => answers[n++]!(s));
    const c = client(srv.port);
    const ends: (CallError | 'ok')[] = [];
    for (let i = 0; i < answers.length; i++) ends.push((await outcome(c.serverStream(PATH, Buffer.alloc(0)))).end);
    expect(ends).toEqual([
      { code: grpc.status.UNKNOWN, details: 'not a gRPC answer: HTTP status 404' },
      { code: grpc.status.UNKNOWN, details: 'not a gRPC answer: content-type "text/html"' },
      { code: grpc.status.INTERNAL, details: 'bad message prefix (flags 9)' },
      { code: grpc.status.RESOURCE_EXHAUSTED, details: 'received message larger than max (2000 vs. 1024)' },
      { code: grpc.status.INTERNAL, details: 'stream ended inside a message' },
      { code: grpc.status.INTERNAL, details: 'stream ended without a grpc-status' },
    ]);
    await srv.close();
  });

  test('connection refused, and a peer that never answers the keepalive ping, are UNAVAILABLE', async () => {
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise<void>((r) => free.close(() => r()));
    const refused = await outcome(client(port).serverStream(PATH, Buffer.alloc(0)));
    expect(refused.end).toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect((refused.end as CallError).details).toMatch(/ECONNREFUSED/);

    // Accepts TCP and stays silent: no HTTP/2 ever, so no ping comes back.
    const accepted: net.Socket[] = [];
    const silent = net.createServer((sock) => accepted.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const t0 = Date.now();
    const mute = await outcome(client((silent.address() as net.AddressInfo).port).serverStream(PATH, Buffer.alloc(0)));
    expect(mute.end).toEqual({ code: grpc.status.UNAVAILABLE, details: 'keepalive ping not answered' });
    expect(Date.now() - t0).toBeLessThan(2000);
    for (const sock of accepted) sock.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  test('the connection dropped mid-stream (a daemon killed): UNAVAILABLE after the messages it sent', async () => {
    const srv = await h2Server((s) => {
      s.respond(ok);
      s.write(grpcFrame(Buffer.from('last')), () => setTimeout(() => s.session?.destroy(), 20));
    });
    const o = await outcome(client(srv.port).serverStream(PATH, Buffer.alloc(0)));
    expect(o.messages).toEqual([Buffer.from('last')]);
    expect(o.end).toMatchObject({ code: grpc.status.UNAVAILABLE });
    await srv.close();
  });

  test('a cancelled call ends without an event; the next call on the client works', async () => {
    const srv = await h2Server((s) => {
      s.respond(ok, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.write(grpcFrame(Buffer.from('x')));
      setTimeout(() => !s.closed && s.end(), 100);
    });
    const c = client(srv.port);
    const first = c.serverStream(PATH, Buffer.alloc(0));
    let events = 0;
    first.on('error', () => events++);
    first.on('end', () => events++);
    await new Promise((r) => first.once('data', r));
    first.cancel();
    const second = await outcome(c.serverStream(PATH, Buffer.alloc(0)));
    expect(second.end).toBe('ok');
    expect(events).toBe(0);
    await srv.close();
  });
});

describe('against a real grpc-js NodeService, with the relay codecs', () => {
  test('WatchNode resumes after since_generation; events decode; RelayEvents read like the proto-loader ones', async () => {
    const api = loadMagratheaApi();
    const server = new grpc.Server();
    let asked = '';
    server.addService(api.magrathea.v1.NodeService.service, {
      WatchNode: (call: grpc.ServerWritableStream<{ since_generation: string }, unknown>) => {
        asked = call.request.since_generation;
        call.write({ generation: '8', heartbeat: { at_ms: '1', interval_ms: 5 } });
        call.write({ generation: '9', change: { cause: 'start-job', domain: 'meta', job_id: '1.x' } });
        call.end();
      },
    });
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    const codec = new NodeEventCodec();
    const c = new H2Client({ kind: 'tcp', host: '127.0.0.1', port }, null, { pingMs: 1000, maxMessageBytes: 1 << 20 });
    const o = await outcome(c.serverStream(PATH, codec.request(7)));
    c.close();
    server.forceShutdown();
    expect(asked).toBe('7');
    expect(o.end).toBe('ok');
    expect(o.messages.map((m) => codec.inspect(m))).toEqual([
      { kind: 'heartbeat', generation: 8, heartbeatMs: 5 },
      { kind: 'change', generation: 9 },
    ]);
    expect(codec.inspect(Buffer.from([0x12, 0x05, 0x01]))).toEqual({
      problem: expect.stringMatching(/^malformed NodeEvent: /),
    });

    const def = loadPackageDefinition()['magrathea.v1.RelayService'] as unknown as {
      WatchNodes: { responseDeserialize(b: Buffer): unknown };
    };
    const read = (b: Buffer): unknown => def.WatchNodes.responseDeserialize(b);
    expect(read(encodeRelayEvent({ node: 'n1', event: o.messages[1]! }))).toMatchObject({
      node: 'n1',
      kind: 'event',
      event: { generation: '9', kind: 'change', change: { cause: 'start-job', domain: 'meta', job_id: '1.x' } },
    });
    expect(read(encodeRelayEvent({ node: 'n2', down: { error: 'gone: é' } }))).toMatchObject({
      node: 'n2',
      kind: 'down',
      down: { error: 'gone: é' },
    });
    expect(read(encodeRelayEvent({ node: 'n3', event: codec.heartbeat(12, 1234) }))).toMatchObject({
      event: { generation: '12', kind: 'heartbeat', heartbeat: { at_ms: '1234', interval_ms: 0 } },
    });
  });
});
