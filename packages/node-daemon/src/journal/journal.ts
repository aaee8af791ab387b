/** The durable record of committed commands (ARCHITECTURE §4: journal + snapshot). */
import type { Command, NodeState } from '../domain';

export type JournalRecord =
  | { readonly t: 'intent'; readonly seq: number; readonly cmd: Command }
  | { readonly t: 'commit'; readonly seq: number; readonly cmd: Command }
  | { readonly t: 'abort'; readonly seq: number }
  /**
   * The first record of every journal started by a compaction: the journal continues the snapshot
   * with this `seq` (and node generation). A snapshot older than it (restored from a backup beside
   * a newer journal) is a gap, not something to replay onto.
   */
  | { readonly t: 'base'; readonly seq: number; readonly generation: number };

export interface Recovered {
  /** The last snapshot, or null when there is none. */
  readonly snapshot: { readonly seq: number; readonly state: NodeState } | null;
  /** Committed commands after the snapshot, in order. */
  readonly commits: readonly { readonly seq: number; readonly cmd: Command }[];
  /** Intents that never got an outcome (the daemon died during their driver operations). */
  readonly dangling: readonly { readonly seq: number; readonly cmd: Command }[];
  /** Bytes of a torn last record that were cut off (0 when the journal ended cleanly). */
  readonly tornBytes: number;
  /** The highest sequence number seen. */
  readonly lastSeq: number;
}

export interface Journal {
  /** Reads everything back; must be called once before any append. */
  open(): Recovered;
  /**
   * Appends one record; with `sync`, returns only once it is on disk. Throws StorageError when
   * it could not be written whole (nothing of it stays in the journal), StateDirLostError when
   * the state directory is no longer the one the journal was opened in.
   */
  append(record: JournalRecord, sync: boolean): void;
  /**
   * Writes a snapshot atomically and starts a new journal after it. Throws StorageError when the
   * snapshot could not be written and verified; the old snapshot and journal are then unchanged.
   */
  compact(state: NodeState, seq: number): void;
  /** Throws StateDirLostError when the state directory was deleted or replaced since `open`. */
  verify(): void;
  /** Records appended since the last compaction. */
  readonly sizeRecords: number;
  close(): void;
}
