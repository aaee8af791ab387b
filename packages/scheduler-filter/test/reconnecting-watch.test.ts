/**
 * ReconnectingWatch's back-off (reconnecting-watch.ts) on jest's fake clock: which losses start it
 * again at reconnect.initialMs and which keep it doubling.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { boundedText, ReconnectingWatch } from '../src/service/reconnecting-watch';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

class FakeStream extends EventEmitter {
  cancel(): void {}
}

class Watch extends ReconnectingWatch<string, FakeStream> {
  readonly streams: FakeStream[] = [];
  readonly delays: number[] = [];
  protected connect(): void {
    const s = new FakeStream();
    this.streams.push(s);
    this.watch(
      s,
      () => this.heard(),
      () => undefined,
      'daemon',
    );
  }
  protected reconnecting(_why: string, delayMs: number): void {
    this.delays.push(delayMs);
  }
  protected closeClient(): void {}
  open(): void {
    this.connect();
  }
  get last(): FakeStream {
    return this.streams[this.streams.length - 1]!;
  }
}

const timing = { reconnectInitialMs: 100, reconnectMaxMs: 1600 };

test('a stream that brings a good message and then breaks the protocol keeps the back-off doubling', () => {
  const w = new Watch(timing);
  w.open();
  for (let i = 0; i < 6; i++) {
    w.last.emit('data', 'snapshot');
    w.last.emit('error', { code: grpc.status.INTERNAL, details: 'malformed NodeEvent' });
    jest.advanceTimersByTime(w.delays[w.delays.length - 1]!);
  }
  expect(w.delays).toEqual([100, 200, 400, 800, 1600, 1600]);
  w.stop();
});

test('a stream that brought messages and was then lost (resumable) starts the back-off again', () => {
  const w = new Watch(timing);
  w.open();
  w.last.emit('error', { code: grpc.status.UNAVAILABLE, details: 'refused' }); // nothing heard: 100
  jest.advanceTimersByTime(100);
  w.last.emit('error', { code: grpc.status.UNAVAILABLE, details: 'refused' }); // 200
  jest.advanceTimersByTime(200);
  w.last.emit('data', 'snapshot');
  w.last.emit('error', { code: grpc.status.UNAVAILABLE, details: 'daemon restarted' }); // heard: 100 again
  jest.advanceTimersByTime(100);
  w.last.emit('data', 'snapshot');
  w.last.emit('end'); // a clean end is resumable too
  expect(w.delays).toEqual([100, 200, 100, 100]);
  w.stop();
});

test('a stream that lived reconnect.maxMs from its first message starts it again, however it ends', () => {
  const w = new Watch(timing);
  w.open();
  w.last.emit('error', { code: grpc.status.INTERNAL, details: 'bad' });
  jest.advanceTimersByTime(100);
  w.last.emit('error', { code: grpc.status.INTERNAL, details: 'bad' });
  jest.advanceTimersByTime(200);
  w.last.emit('data', 'snapshot');
  jest.advanceTimersByTime(1600);
  w.last.emit('error', { code: grpc.status.INTERNAL, details: 'one bad message after a long good run' });
  expect(w.delays).toEqual([100, 200, 100]);
  w.stop();
});

test("the other side's text of a stream's end is bounded (a daemon's 10 KB grpc-message)", () => {
  const ends: string[] = [];
  class Recording extends Watch {
    protected override connect(): void {
      const s = new FakeStream();
      this.streams.push(s);
      this.watch(
        s,
        () => this.heard(),
        (why) => ends.push(why),
        'daemon',
      );
    }
  }
  const w = new Recording(timing);
  w.open();
  w.last.emit('error', { code: grpc.status.INTERNAL, details: 'x'.repeat(10_000) });
  expect(ends[0]!.length).toBeLessThan(600);
  expect(ends[0]).toMatch(/^INTERNAL: x+… \(9500 more characters\)$/);
  expect(boundedText('short')).toBe('short');
  w.stop();
});
