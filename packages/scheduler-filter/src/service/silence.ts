/**
 * Silence on an open watch stream to a daemon (the filter's, a relay's): a stream whose
 * connection still answers pings but that brings no complete message, not even a heartbeat, for
 * the quiet limit — the daemon's publication stalled, a proxy holds messages back — is lost too.
 * A call not yet answered (no response headers: a host that drops packets, a daemon whose event
 * loop hangs) is given the same limit, told apart (`answered: false`): it is not a silent stream.
 * One timer per stream, re-armed once per limit (not once per message). Monotonic clock; past the
 * limit the verdict waits for the I/O already pending (after a stall of this process, the
 * messages that arrived meanwhile are read first).
 */

/** The heartbeat interval assumed of a daemon until one of its heartbeats says (its default). */
export const ASSUMED_HEARTBEAT_MS = 5000;
/** The longest heartbeat interval a daemon may announce (its heartbeatMs maximum). */
const MAX_HEARTBEAT_MS = 600_000;

/**
 * How long an open stream may bring no message before it is treated as lost: the grace period,
 * or three heartbeat intervals if that is longer (a daemon set to send heartbeats seldom).
 */
export function quietLimitMs(graceMs: number, heartbeatMs: number): number {
  return Math.max(graceMs, 3 * heartbeatMs);
}

/** What a silent stream is told with: for its log line and its error. */
export interface Silence {
  /** False: the call was never answered (no headers); true: an open stream went quiet. */
  readonly answered: boolean;
  readonly quietMs: number;
  readonly limitMs: number;
  readonly heartbeatMs: number;
  readonly why: string;
}

export class SilenceWatch {
  private heartbeatMs = ASSUMED_HEARTBEAT_MS;
  private heartbeatSeen = false;
  private lastAt = 0;
  private answered = false;
  private timer: NodeJS.Timeout | null = null;
  /** Which stream the timer is for: a check of a closed one does nothing. */
  private opened = 0;
  /** The watched stream's check, or null. */
  private check: (() => void) | null = null;

  /** `onSilent` is called once per silent stream; it should drop that stream. */
  constructor(
    private readonly graceMs: number,
    private readonly onSilent: (s: Silence) => void,
  ) {}

  /** True between `connecting`/`open` and `close` (or the silence told). */
  get watching(): boolean {
    return this.check !== null;
  }

  /** A call was made: it must be answered (its headers) within the limit. */
  connecting(): void {
    this.start(false);
  }

  /** The stream is open (its headers came, or its first message): its silence counts from now. */
  open(): void {
    this.start(true);
  }

  private start(answered: boolean): void {
    this.close();
    this.answered = answered;
    this.lastAt = performance.now();
    const token = ++this.opened;
    let pending = false;
    const check = (): void => {
      this.timer = null;
      if (token !== this.opened) return;
      const limitMs = quietLimitMs(this.graceMs, this.heartbeatMs);
      const quiet = performance.now() - this.lastAt;
      if (quiet < limitMs) {
        pending = false;
        return this.schedule(check, limitMs - quiet + 1);
      }
      // Past the limit: first let what waits to be read be read (timers run before I/O).
      if (!pending) {
        pending = true;
        setImmediate(check);
        return;
      }
      pending = false;
      const s: Silence = {
        answered: this.answered,
        quietMs: Math.round(quiet),
        limitMs,
        heartbeatMs: this.heartbeatMs,
        why: this.answered
          ? `no message from the daemon for ${Math.round(quiet)} ms on an open stream (not even a heartbeat)`
          : `the daemon did not answer the watch within ${Math.round(quiet)} ms`,
      };
      // Never heard a heartbeat on an open stream: they may come less often than assumed; allow twice as long next time.
      if (this.answered && !this.heartbeatSeen) this.heartbeatMs = Math.min(this.heartbeatMs * 2, MAX_HEARTBEAT_MS);
      this.close();
      this.onSilent(s);
    };
    this.check = check;
    this.schedule(check, quietLimitMs(this.graceMs, this.heartbeatMs) + 1);
  }

  /**
   * A complete message came on the open stream; `heartbeatIntervalMs`: the interval a heartbeat
   * announces (0 or absent for other messages, and for a relay's own heartbeats).
   */
  message(heartbeatIntervalMs?: number): void {
    this.lastAt = performance.now();
    this.answered = true;
    if (heartbeatIntervalMs === undefined || !Number.isInteger(heartbeatIntervalMs) || heartbeatIntervalMs <= 0) return;
    this.heartbeatSeen = true;
    const ms = Math.min(heartbeatIntervalMs, MAX_HEARTBEAT_MS);
    if (ms === this.heartbeatMs) return;
    // A shorter limit than the pending check was armed for: check by the new one.
    const shorter = ms < this.heartbeatMs;
    this.heartbeatMs = ms;
    if (shorter && this.check) this.schedule(this.check, quietLimitMs(this.graceMs, ms) + 1);
  }

  /** The stream ended or was dropped: nothing to watch until the next `connecting` or `open`. */
  close(): void {
    this.opened++;
    this.check = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(check: () => void, ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(check, ms);
    this.timer.unref();
  }
}
