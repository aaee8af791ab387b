/** The quiet-limit watchdog of a watch stream (silence.ts), on jest's fake clock. */
import * as net from 'node:net';
import { ASSUMED_HEARTBEAT_MS, SilenceWatch, quietLimitMs } from '../src/service/silence';
import type { Silence } from '../src/service/silence';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

function watch(graceMs = 1500): { w: SilenceWatch; told: Silence[] } {
  const told: Silence[] = [];
  return { w: new SilenceWatch(graceMs, (s) => told.push(s)), told };
}

test('the quiet limit is the grace period, or three heartbeat intervals if longer', () => {
  expect(quietLimitMs(10_000, 5000)).toBe(15_000);
  expect(quietLimitMs(10_000, 2000)).toBe(10_000);
});

test('no message at all: silent once, after the limit of the assumed interval; then the assumed interval doubles', () => {
  const { w, told } = watch();
  w.open();
  jest.advanceTimersByTime(3 * ASSUMED_HEARTBEAT_MS);
  expect(told).toEqual([]);
  jest.advanceTimersByTime(2);
  expect(told).toHaveLength(1);
  expect(told[0]).toMatchObject({ limitMs: 15_000, heartbeatMs: 5000 });
  expect(told[0]!.why).toMatch(/^no message from the daemon for 1500\d ms on an open stream/);
  jest.advanceTimersByTime(60_000);
  expect(told).toHaveLength(1); // told once per stream
  w.open();
  jest.advanceTimersByTime(29_000);
  expect(told).toHaveLength(1);
  jest.advanceTimersByTime(1_002);
  expect(told[1]).toMatchObject({ limitMs: 30_000, heartbeatMs: 10_000 });
});

test('messages within the limit keep a stream; a heartbeat announcing a short interval shortens the pending check', () => {
  const { w, told } = watch();
  w.open();
  for (let i = 0; i < 20; i++) {
    jest.advanceTimersByTime(200);
    w.message(200);
  }
  expect(told).toEqual([]);
  jest.advanceTimersByTime(1502);
  expect(told).toHaveLength(1);
  expect(told[0]).toMatchObject({ limitMs: 1500, heartbeatMs: 200 });
  expect(told[0]!.quietMs).toBeLessThan(1600); // not the 15 s of the assumed interval
});

test('other messages and a heartbeat naming no interval do not change the interval; a closed stream is never told', () => {
  const { w, told } = watch();
  w.open();
  w.message();
  w.message(0);
  w.message(Number.NaN);
  jest.advanceTimersByTime(10_000);
  w.message();
  jest.advanceTimersByTime(14_000);
  expect(told).toEqual([]);
  w.close();
  jest.advanceTimersByTime(100_000);
  expect(told).toEqual([]);
  w.open();
  w.message(10_000_000); // past the daemons' maximum: capped
  jest.advanceTimersByTime(3 * 600_000 + 2);
  expect(told).toHaveLength(1);
  expect(told[0]).toMatchObject({ limitMs: 1_800_000, heartbeatMs: 600_000 });
});

test('a call never answered is told apart from a silent stream, and does not double the assumed interval', () => {
  const { w, told } = watch();
  w.connecting();
  jest.advanceTimersByTime(15_002);
  expect(told).toHaveLength(1);
  expect(told[0]).toMatchObject({ answered: false, limitMs: 15_000, heartbeatMs: 5000 });
  expect(told[0]!.why).toMatch(/^the daemon did not answer the watch within 1500\d ms$/);
  w.connecting();
  w.open(); // headers: from now on a silent stream, by the same (undoubled) limit
  jest.advanceTimersByTime(15_002);
  expect(told).toHaveLength(2);
  expect(told[1]).toMatchObject({ answered: true, limitMs: 15_000 });
});

test('after a stall of this process, a message that waited to be read keeps the stream (real socket, real timers)', async () => {
  jest.useRealTimers();
  const server = net.createServer();
  const sockets: net.Socket[] = [];
  server.on('connection', (s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  try {
    await new Promise<void>((r) => client.once('connect', () => r()));
    while (sockets.length === 0) await new Promise((r) => setImmediate(r));
    const { w, told } = watch(300);
    client.on('data', () => w.message());
    w.open();
    w.message(100); // limit: max(300, 3 × 100) ms
    const stall = (ms: number): void => {
      const end = performance.now() + ms;
      while (performance.now() < end); // the event loop is blocked: timers expire, data waits
    };
    // A message arrives while the process is stalled past the limit: it is read before the verdict.
    sockets[0]!.write('x');
    stall(450);
    await new Promise((r) => setTimeout(r, 100));
    expect(told).toEqual([]);
    // Nothing arrives during the next stall: silent.
    stall(450);
    await new Promise((r) => setTimeout(r, 100));
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ answered: true, limitMs: 300 });
    w.close();
  } finally {
    client.destroy();
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
});
