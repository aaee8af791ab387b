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
