/**
 * RelayWatcher's first catch-up (relay-watcher.ts) on jest's fake clock: a stand-in RelayService
 * client whose streams the test writes to, a view that takes every event (or refuses one as out
 * of order). Which nodes are judged silent, and when, through reconnects, resyncs, `down`s and stop.
 * The real filter against a fake relay is in test/fault/relay.test.ts.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { RelayEventMessage } from '@magrathea/common';
import { ClientChannels } from '@magrathea/common';
import type { FilterConfig, FilterNodeConfig } from '../src/service/config';
import type { WatcherDeps } from '../src/service/node-watcher';
import { RelayWatcher } from '../src/service/relay-watcher';

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

const GRACE = 1000;

class FakeStream extends EventEmitter {
  cancelled = false;
  cancel(): void {
    this.cancelled = true;
  }
}

interface Rig {
  w: RelayWatcher;
  streams: FakeStream[];
  lines: { msg: string; fields: Record<string, unknown> }[];
  refuse: Set<string>;
  /** A message of `node` on the newest stream: an event (a heartbeat announcing 100 ms), or `down`. */
  send(node: string, kind?: 'event' | 'down'): void;
  /** The relay's end of the first catch-up on the newest stream. */
  caughtUp(): void;
  silent(): string[];
}

function rig(names: readonly string[]): Rig {
  const streams: FakeStream[] = [];
  const lines: Rig['lines'] = [];
  const refuse = new Set<string>();
  const logger = {
    child: () => logger,
    warn: (fields: Record<string, unknown>, msg: string) => lines.push({ msg, fields }),
    debug: (fields: Record<string, unknown>, msg: string) => lines.push({ msg, fields }),
    info: () => undefined,
  };
  class Client {
    WatchNodes(): FakeStream {
      const s = new FakeStream();
      streams.push(s);
      return s;
    }
    close(): void {}
  }
  const counter = { inc: () => undefined };
  const deps = {
    api: { magrathea: { v1: { RelayService: Client } } },
    view: {
      apply: (name: string) => !refuse.delete(name),
      markUnreachable: () => undefined,
    },
    logger,
    metrics: { silentStreams: counter, reconnects: counter, resyncDelays: counter },
    channels: new ClientChannels(null),
  } as unknown as WatcherDeps;
  const cfg = { graceMs: GRACE, reconnectInitialMs: 50, reconnectMaxMs: 50 } as unknown as FilterConfig;
  const nodes = names.map((name) => ({ name }) as unknown as FilterNodeConfig);
  const w = new RelayWatcher(
    { name: 'rack1', address: { kind: 'tcp', host: '127.0.0.1', port: 1 } } as never,
    nodes,
    cfg,
    deps,
  );
  let gen = 1;
  return {
    w,
    streams,
    lines,
    refuse,
    send(node, kind = 'event') {
      const m: Partial<RelayEventMessage> =
        kind === 'down'
          ? { node, down: { error: 'daemon lost' } }
          : { node, event: { generation: String(gen++), heartbeat: { at_ms: '0', interval_ms: 100 } } };
      streams[streams.length - 1]!.emit('data', m);
    },
    caughtUp() {
      const m: Partial<RelayEventMessage> = { node: '', caught_up: {} };
      streams[streams.length - 1]!.emit('data', m);
    },
    silent: () => lines.filter((l) => l.msg === 'relayed node silent').map((l) => String(l.fields.node)),
  };
}

test('no node is judged while the catch-up comes, however long it takes between nodes; once every node is heard, silence counts', () => {
  const r = rig(['a', 'b', 'c']);
  r.w.start();
  jest.advanceTimersByTime(5 * GRACE); // no message yet: the catch-up has not begun
  r.send('a');
  jest.advanceTimersByTime(0.9 * GRACE);
  r.send('b');
  jest.advanceTimersByTime(0.9 * GRACE);
  expect(r.silent()).toEqual([]); // a: 1.8 s since its message, past its 1 s limit, but still catching up
  r.send('c');
  jest.advanceTimersByTime(GRACE - 10);
  expect(r.silent()).toEqual([]);
  jest.advanceTimersByTime(20);
  expect(r.silent().sort()).toEqual(['a', 'b', 'c']);
  expect(r.lines.filter((l) => l.msg.startsWith('relay catch-up'))).toEqual([]);
  r.w.stop();
});

test('a node heard again after another ends the catch-up (the relay sends live messages): the others count from then', () => {
  const r = rig(['a', 'b', 'c']);
  r.w.start();
  r.send('a');
  r.send('a'); // the same node again: still its catch-up
  r.send('b');
  jest.advanceTimersByTime(0.5 * GRACE);
  r.send('a'); // a after b: live; c was never sent
  const t = setInterval(() => r.send('a'), 100);
  jest.advanceTimersByTime(GRACE + 10);
  clearInterval(t);
  expect(r.silent()).toEqual(['b']);
  r.w.stop();
});

test("the relay's caught_up ends the catch-up at once, whoever was heard; nodes it did not send are not judged", () => {
  const r = rig(['a', 'b', 'c']);
  r.w.start();
  r.send('a');
  r.send('b', 'down');
  r.caughtUp(); // c not sent in the catch-up: not live, so never silent
  const t = setInterval(() => r.send('b'), 100); // b comes back and keeps talking
  jest.advanceTimersByTime(GRACE - 10);
  expect(r.silent()).toEqual([]);
  jest.advanceTimersByTime(20); // a: its limit counted from the caught_up, not from a stall after it
  clearInterval(t);
  expect(r.silent()).toEqual(['a']);
  expect(r.lines.filter((l) => l.msg.startsWith('relay catch-up'))).toEqual([]);
  r.w.stop();

  // As the first message (a relay asked for nodes it has nothing of yet), and a second one (ignored).
  const q = rig(['a']);
  q.w.start();
  q.caughtUp();
  q.send('a');
  q.caughtUp();
  jest.advanceTimersByTime(GRACE + 10);
  expect(q.silent()).toEqual(['a']);
  q.w.stop();
});

test('a catch-up that stops (graceMs without a message of it) is given up; one that keeps trickling, after 10 grace periods', () => {
  const r = rig(['a', 'b']);
  r.w.start();
  r.send('a');
  jest.advanceTimersByTime(GRACE + 10);
  expect(r.lines.find((l) => l.msg === 'relay catch-up stalled')?.fields).toMatchObject({ unheard: 1 });
  jest.advanceTimersByTime(GRACE + 10);
  expect(r.silent()).toEqual(['a']);
  r.w.stop();

  const names = Array.from({ length: 14 }, (_, i) => `n${i}`);
  const t = rig(names);
  t.w.start();
  for (const n of names.slice(0, 12)) {
    t.send(n);
    jest.advanceTimersByTime(0.9 * GRACE); // progress each time: never a stall
  }
  expect(t.lines.find((l) => l.msg === 'relay catch-up too long')?.fields).toMatchObject({
    unheard: 2,
    limitMs: 10_000,
  });
  expect(t.lines.find((l) => l.msg === 'relay catch-up stalled')).toBeUndefined();
  jest.advanceTimersByTime(GRACE + 10);
  expect(t.silent().length).toBe(12);
  t.w.stop();
});

test('downs count as heard (nobody live: nobody silent); a node heard live then down is not watched', () => {
  const r = rig(['a', 'b']);
  r.w.start();
  r.send('a');
  r.send('a', 'down');
  r.send('b', 'down');
  jest.advanceTimersByTime(20 * GRACE);
  expect(r.silent()).toEqual([]);
  expect(r.lines.filter((l) => l.msg.startsWith('relay catch-up'))).toEqual([]);
  r.w.stop();
});

test('each new stream has its own catch-up: after a loss, and after a resync of an event out of order', () => {
  const r = rig(['a', 'b']);
  r.w.start();
  r.send('a');
  r.send('b');
  r.streams[0]!.emit('error', { code: grpc.status.UNAVAILABLE, details: 'gone' });
  jest.advanceTimersByTime(60); // reconnects after reconnectInitialMs
  expect(r.streams).toHaveLength(2);
  r.send('a');
  jest.advanceTimersByTime(0.9 * GRACE);
  r.refuse.add('b');
  r.send('b'); // out of order: the stream is dropped and opened again later
  expect(r.streams[1]!.cancelled).toBe(true);
  jest.advanceTimersByTime(3 * GRACE); // the dropped stream's catch-up timers are gone with it
  expect(r.silent()).toEqual([]);
  expect(r.lines.filter((l) => l.msg.startsWith('relay catch-up'))).toEqual([]);
  expect(r.streams.length).toBeGreaterThanOrEqual(3);
  r.send('a');
  r.send('b');
  jest.advanceTimersByTime(GRACE + 10);
  expect(r.silent().sort()).toEqual(['a', 'b']);
  r.w.stop();
});

test('stop during the catch-up leaves no timer that tells anything', () => {
  const r = rig(['a', 'b']);
  r.w.start();
  r.send('a');
  r.w.stop();
  jest.advanceTimersByTime(20 * GRACE);
  expect(r.lines).toEqual([]);
  expect(jest.getTimerCount()).toBe(0);
});
