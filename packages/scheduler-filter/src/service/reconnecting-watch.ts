/**
 * The part every long-lived watch stream shares (the filter's to a daemon or a relay, a relay's
 * to a daemon): one stream at a time (events of a replaced stream are ignored), reconnection
 * with a back-off that doubles up to reconnect.maxMs, and a stop that cancels everything.
 * Subclasses open the stream in `connect`. The back-off starts again after a stream that
 * brought messages and then ended in a way that can be resumed (resumableLoss), or that lived
 * reconnect.maxMs from its first message: a daemon that sends a good message and then breaks
 * the protocol, every time, is retried ever more slowly, not every reconnect.initialMs.
 */
import * as grpc from '@grpc/grpc-js';

/** What a watch needs of its stream: a grpc-js ClientReadableStream, or the relay's H2StreamCall. */
export interface WatchStream {
  /** 'data' (a message), 'error' ({ code, details }: a gRPC status), 'end' (status OK). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the listener type of EventEmitter.on, which both streams have
  on(event: string, listener: (...args: any[]) => void): unknown;
  cancel(): void;
}

/**
 * True when a watch stream that ended with `why` may be resumed where it stopped: the connection
 * was lost (UNAVAILABLE, CANCELLED), the daemon cut a reader too slow for it (it says to resume),
 * or it ended the stream cleanly. Anything else — a message that did not decode, past the size
 * limit or not complete in time, a bad or unexpected status — is a daemon that broke the protocol:
 * it is read again from a snapshot, so that its merely accepting the next watch does not count it
 * as back (it would, each time, for a daemon that then breaks again).
 */
export function resumableLoss(why: string): boolean {
  return (
    why.startsWith('UNAVAILABLE: ') ||
    why.startsWith('CANCELLED: ') ||
    why.startsWith('RESOURCE_EXHAUSTED: watch stream too slow') ||
    why.startsWith('stream ended by the ')
  );
}

/** Longest peer-supplied text kept of a stream's end, characters. */
const MAX_DETAILS = 500;

/** `text` cut to MAX_DETAILS characters (saying how much was left out). */
export function boundedText(text: string): string {
  return text.length <= MAX_DETAILS
    ? text
    : `${text.slice(0, MAX_DETAILS)}… (${text.length - MAX_DETAILS} more characters)`;
}

export abstract class ReconnectingWatch<T, S extends WatchStream = grpc.ClientReadableStream<T>> {
  protected stream: S | null = null;
  protected stopped = false;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  /** When the current stream brought its first message (performance.now()), or null. */
  private heardSince: number | null = null;

  constructor(private readonly timing: { readonly reconnectInitialMs: number; readonly reconnectMaxMs: number }) {
    this.backoffMs = timing.reconnectInitialMs;
  }

  /** Opens the stream (with `watch`), unless stopped. */
  protected abstract connect(): void;
  /** Told before each reconnection is scheduled (metrics, a debug line). */
  protected abstract reconnecting(why: string, delayMs: number): void;
  /** Closes the client (after the stream is cancelled, on stop). */
  protected abstract closeClient(): void;

  /**
   * Makes `stream` the current one: `onData` gets its messages, `onEnded` its end or error (once,
   * and only while it is current; a reconnection is then scheduled).
   */
  protected watch(stream: S, onData: (m: T) => void, onEnded: (why: string) => void, endedBy: string): void {
    this.stream = stream;
    this.heardSince = null;
    stream.on('data', (m: T) => {
      if (stream === this.stream) onData(m);
    });
    const ended = (why: string): void => {
      if (stream !== this.stream) return;
      this.stream = null;
      const since = this.heardSince;
      if (since !== null && (resumableLoss(why) || performance.now() - since >= this.timing.reconnectMaxMs))
        this.backoffMs = this.timing.reconnectInitialMs;
      onEnded(why);
      this.scheduleReconnect(why);
    };
    // The details are the other side's text: bounded before they reach logs, node errors and readers.
    stream.on('error', (err: { code: number; details: string }) =>
      ended(`${grpc.status[err.code] ?? err.code}: ${boundedText(String(err.details ?? ''))}`),
    );
    stream.on('end', () => ended(`stream ended by the ${endedBy}`));
  }

  /** True when `stream` is the current stream. */
  protected current(stream: S): boolean {
    return stream === this.stream;
  }

  /** The current stream brought a message that decodes (see the class comment for what it resets). */
  protected heard(): void {
    this.heardSince ??= performance.now();
  }

  /** Drops the current stream and opens a new one after `delayMs`. */
  protected restart(why: string, delayMs: number): void {
    const s = this.stream;
    this.stream = null;
    s?.cancel();
    this.scheduleReconnect(why, delayMs);
  }

  private scheduleReconnect(why: string, delay = this.backoffMs): void {
    if (this.stopped || this.retryTimer) return;
    this.reconnecting(why, delay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
    this.retryTimer.unref();
    this.backoffMs = Math.min(this.backoffMs * 2, this.timing.reconnectMaxMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const s = this.stream;
    this.stream = null;
    s?.cancel();
    this.closeClient();
  }
}
