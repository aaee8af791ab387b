/** Bookkeeping of long-lived server streams, so a server can end them all on shutdown. */
import type * as grpc from '@grpc/grpc-js';

export class StreamRegistry {
  private readonly streams = new Map<grpc.ServerWritableStream<unknown, unknown>, () => void>();

  /** Tracks `call` until it ends; `release` (e.g. an unsubscribe) runs once it does. */
  add(call: grpc.ServerWritableStream<unknown, unknown>, release: () => void): void {
    this.streams.set(call, release);
    const done = (): void => {
      if (!this.streams.delete(call)) return;
      release();
    };
    call.on('cancelled', done);
    call.on('close', done);
    call.on('error', done);
  }

  /** Ends every open stream (shutdown); each one's release runs first. */
  endAll(): void {
    for (const [s, release] of [...this.streams]) {
      this.streams.delete(s);
      release();
      s.end();
    }
  }

  get size(): number {
    return this.streams.size;
  }
}

/**
 * Writes messages to a server stream no faster than its reader takes them: grpc-js is handed one
 * message at a time (while the stream is writable), the others wait here, as references to
 * messages shared with every other stream. More than `maxQueued` waiting means the reader does
 * not keep up: `onOverflow` runs once (it should end the stream; the reader resumes from what it
 * has seen), and the queue is dropped, so one stalled reader holds a bounded amount of memory.
 * With `bytes`, the same holds for the bytes waiting (`sizeOf` each message) past `bytes.max`:
 * a count alone does not bound memory when messages may be megabytes each. Messages `exempt`
 * says true of (held elsewhere anyway, such as a stream's first catch-up) count toward neither.
 */
export class StreamPump<T> {
  private queue: (T | undefined)[] = [];
  private head = 0;
  private blocked = false;
  private overflowed = false;
  /** Bytes of the messages waiting (with `bytes`). */
  private queuedBytes = 0;
  /** Exempt messages waiting. */
  private exemptQueued = 0;

  constructor(
    private readonly call: grpc.ServerWritableStream<unknown, T>,
    private readonly maxQueued: number,
    private readonly onOverflow: () => void,
    private readonly bytes: { readonly max: number; readonly sizeOf: (m: T) => number } | null = null,
    private readonly exempt: ((m: T) => boolean) | null = null,
  ) {
    call.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
  }

  /** Messages waiting for the reader. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** False once the reader fell too far behind (the message is dropped, `onOverflow` has run). */
  push(message: T): boolean {
    if (this.overflowed) return false;
    this.queue.push(message);
    if (this.exempt?.(message)) this.exemptQueued++;
    else if (this.bytes) this.queuedBytes += this.bytes.sizeOf(message);
    if (
      this.queued - this.exemptQueued > this.maxQueued ||
      (this.bytes !== null && this.queuedBytes > this.bytes.max)
    ) {
      this.overflowed = true;
      this.queue = [];
      this.head = 0;
      this.queuedBytes = 0;
      this.exemptQueued = 0;
      this.onOverflow();
      return false;
    }
    this.flush();
    return true;
  }

  private flush(): void {
    while (!this.blocked && this.head < this.queue.length) {
      const m = this.queue[this.head] as T;
      this.queue[this.head++] = undefined;
      if (this.exempt?.(m)) this.exemptQueued--;
      else if (this.bytes) this.queuedBytes -= this.bytes.sizeOf(m);
      if (!this.call.write(m)) this.blocked = true;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
