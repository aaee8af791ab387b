/**
 * The grace period of one watched node: armed when its stream is lost, cleared when the node is
 * heard from; when it runs out, `onExpire` marks the node unreachable. Monotonic (setTimeout).
 */
export class GraceTimer {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ms: number,
    private readonly onExpire: () => void,
  ) {}

  /** Starts the wait unless it is already running. */
  arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.onExpire();
    }, this.ms);
    this.timer.unref();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * The wait before re-reading a node whose events came out of order: reconnect.initialMs,
 * doubling each time it happens again (up to reconnect.maxMs), back to the start after a quiet
 * spell of twice maxMs. Never a tight loop.
 */
export class ResyncBackoff {
  private count = 0;
  private lastMs = -Infinity;

  constructor(
    private readonly cfg: { readonly reconnectInitialMs: number; readonly reconnectMaxMs: number },
    private readonly mono: () => number = () => performance.now(),
  ) {}

  /** The delay for the re-read that is due now. */
  next(): number {
    const now = this.mono();
    if (now - this.lastMs > 2 * this.cfg.reconnectMaxMs) this.count = 0;
    this.lastMs = now;
    this.count++;
    return Math.min(this.cfg.reconnectMaxMs, this.cfg.reconnectInitialMs * 2 ** Math.min(this.count - 1, 20));
  }
}
