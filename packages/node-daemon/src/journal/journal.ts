/** The durable record of committed commands (ARCHITECTURE §4: journal + snapshot). */
import type { Command, NodeState } from '../domain';

export type JournalRecord =
  | { readonly t: 'intent'; readonly seq: number; readonly cmd: Command }
  | { readonly t: 'commit'; readonly seq: number; readonly cmd: Command }
  | { readonly t: 'abort'; readonly seq: number };

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
  /** Appends one record; with `sync`, returns only once it is on disk. */
  append(record: JournalRecord, sync: boolean): void;
  /** Writes a snapshot atomically and starts an empty journal after it. */
  compact(state: NodeState, seq: number): void;
  /** Records appended since the last compaction. */
  readonly sizeRecords: number;
  close(): void;
}
