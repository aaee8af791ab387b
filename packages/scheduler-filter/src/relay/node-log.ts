/**
 * What a relay holds of one node, so that a reader resumes after any generation without loss
 * and without duplicates: the node's last snapshot and the changes that followed it, in
 * generation order. Pure (no I/O, no clock).
 *
 * - A reader at the node's generation missed nothing: it gets no event (the relay sends a
 *   heartbeat at that generation to say so).
 * - A reader at 0 gets the snapshot and every change after it (0 asks for a snapshot).
 * - A reader at or after the snapshot gets the changes after its position.
 * - Any other reader (before the snapshot, unknown, or past what the relay has seen: a relay
 *   that restarted, a daemon whose state was replaced) gets the snapshot and every change after it.
 *
 * The changes since the snapshot are bounded: past `maxChanges`, or past `maxChangeBytes` of them
 * (`sizeOf` each event: a daemon may send changes of megabytes), the relay should ask the daemon
 * for a fresh snapshot (`wantsSnapshot`), which replaces them all.
 */

/** One WatchNode event as the log sees it. */
export interface LogEvent<E> {
  readonly kind: 'snapshot' | 'change' | 'heartbeat';
  readonly generation: number;
  readonly event: E;
}

/** What accepting an event means for the readers. */
export type Accepted =
  /** Stored: every reader should be brought up to date (`since`). */
  | 'stored'
  /** A heartbeat at the node's generation: readers that are up to date may be told. */
  | 'alive'
  /** Out of order (a change before any snapshot or not after the last one, a heartbeat of another generation): re-read the node from a snapshot. */
  | 'resync';

export class NodeLog<E> {
  private snapshot: LogEvent<E> | null = null;
  private changes: LogEvent<E>[] = [];
  private changeBytes = 0;

  constructor(
    private readonly maxChanges: number,
    private readonly bytes: { readonly maxChangeBytes: number; readonly sizeOf: (e: E) => number } | null = null,
  ) {}

  /** The generation of the last event stored, or null before the first snapshot. */
  get generation(): number | null {
    if (!this.snapshot) return null;
    return this.changes.length > 0 ? this.changes[this.changes.length - 1]!.generation : this.snapshot.generation;
  }

  /** Changes stored after the snapshot. */
  get changeCount(): number {
    return this.changes.length;
  }

  /** Bytes of the changes stored after the snapshot (0 without `sizeOf`). */
  get changeByteCount(): number {
    return this.changeBytes;
  }

  /** True when the changes have grown past maxChanges or maxChangeBytes: a fresh snapshot should replace them. */
  get wantsSnapshot(): boolean {
    return this.whySnapshot !== null;
  }

  /** Why a fresh snapshot should replace the changes, or null. */
  get whySnapshot(): string | null {
    if (this.changes.length > this.maxChanges) return 'changes since the last snapshot past maxChangesPerNode';
    if (this.bytes && this.changeBytes > this.bytes.maxChangeBytes)
      return 'bytes of changes since the last snapshot past maxChangeBytesPerNode';
    return null;
  }

  accept(e: LogEvent<E>): Accepted {
    const gen = this.generation;
    if (e.kind === 'snapshot') {
      this.snapshot = e;
      this.changes = [];
      this.changeBytes = 0;
      return 'stored';
    }
    if (e.kind === 'heartbeat') return gen === e.generation ? 'alive' : 'resync';
    if (gen === null || e.generation <= gen) return 'resync';
    this.changes.push(e);
    if (this.bytes) this.changeBytes += this.bytes.sizeOf(e.event);
    return 'stored';
  }

  /**
   * The events a reader after generation `since` needs to be up to date, in order; null while
   * the relay has no snapshot of the node (the reader waits).
   */
  since(since: number): E[] | null {
    const gen = this.generation;
    if (!this.snapshot || gen === null) return null;
    // 0 asks for a snapshot (WatchNodesRequest), even of a node whose snapshot is at generation 0.
    if (since === 0) return [this.snapshot.event, ...this.changes.map((c) => c.event)];
    if (since === gen) return [];
    if (since >= this.snapshot.generation && since < gen) {
      // The changes are in generation order: find the first after `since` from the end (a reader
      // that is up to date but one is the common case).
      let i = this.changes.length;
      while (i > 0 && this.changes[i - 1]!.generation > since) i--;
      return this.changes.slice(i).map((c) => c.event);
    }
    return [this.snapshot.event, ...this.changes.map((c) => c.event)];
  }
}
