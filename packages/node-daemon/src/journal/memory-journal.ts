/** An in-memory Journal for unit tests; same contract as FileJournal, nothing on disk. */
import type { NodeState } from '../domain';
import type { Journal, JournalRecord, Recovered } from './journal';
import { recoverFrom } from './recover';

export class MemoryJournal implements Journal {
  records: JournalRecord[] = [];
  snapshot: { seq: number; state: NodeState } | null = null;
  syncs = 0;

  open(): Recovered {
    return { ...recoverFrom(this.snapshot, this.records), tornBytes: 0 };
  }

  append(record: JournalRecord, sync: boolean): void {
    this.records.push(structuredClone(record));
    if (sync) this.syncs++;
  }

  compact(state: NodeState, seq: number): void {
    this.snapshot = { seq, state: structuredClone(state) };
    this.records = [];
  }

  get sizeRecords(): number {
    return this.records.length;
  }

  verify(): void {}

  close(): void {}
}
