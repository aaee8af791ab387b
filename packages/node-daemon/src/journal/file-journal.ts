/**
 * Append-only JSONL journal with a CRC-32 per record, fsynced on demand, plus a snapshot
 * written by temp file + fsync + rename + directory fsync. A torn last record (the daemon died
 * in the middle of a write) is cut off; a bad record anywhere else is corruption and stops
 * the start-up with the line number, rather than silently dropping acknowledged work.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import type { NodeState } from '../domain';
import { JournalCorruptError, StateDirError } from '../errors';
import type { Journal, JournalRecord, Recovered } from './journal';
import { recoverFrom } from './recover';

const JOURNAL = 'journal.jsonl';
const SNAPSHOT = 'snapshot.json';

function frame(obj: unknown): string {
  const json = JSON.stringify(obj);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

function unframe(line: string): unknown {
  const sp = line.indexOf(' ');
  if (sp !== 8) throw new Error('no checksum');
  const json = line.slice(9);
  if (crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) throw new Error('checksum mismatch');
  return JSON.parse(json) as unknown;
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function isRecord(x: unknown): x is JournalRecord {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  if (typeof r.seq !== 'number') return false;
  if (r.t === 'abort') return true;
  return (r.t === 'intent' || r.t === 'commit') && typeof r.cmd === 'object' && r.cmd !== null;
}

export class FileJournal implements Journal {
  private fd: number | null = null;
  private records = 0;
  readonly journalPath: string;
  readonly snapshotPath: string;

  constructor(readonly dir: string) {
    this.journalPath = path.join(dir, JOURNAL);
    this.snapshotPath = path.join(dir, SNAPSHOT);
  }

  /** Creates the state directory (mode 0700) and checks that it is writable. */
  private prepareDir(): void {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      fs.accessSync(this.dir, fs.constants.W_OK | fs.constants.R_OK | fs.constants.X_OK);
    } catch (err) {
      throw new StateDirError(`state directory ${this.dir} is not usable: ${(err as Error).message}`, { cause: err });
    }
  }

  private readSnapshot(): Recovered['snapshot'] {
    let text: string;
    try {
      text = fs.readFileSync(this.snapshotPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StateDirError(`cannot read ${this.snapshotPath}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const snap = unframe(text.trimEnd()) as { seq: number; state: NodeState };
      if (typeof snap.seq !== 'number' || !Array.isArray(snap.state?.domains)) throw new Error('bad shape');
      return snap;
    } catch (err) {
      throw new JournalCorruptError(`snapshot ${this.snapshotPath} is corrupt (${(err as Error).message})`);
    }
  }

  open(): Recovered {
    this.prepareDir();
    const snapshot = this.readSnapshot();
    let buf: Buffer;
    try {
      buf = fs.existsSync(this.journalPath) ? fs.readFileSync(this.journalPath) : Buffer.alloc(0);
    } catch (err) {
      throw new StateDirError(`cannot read ${this.journalPath}: ${(err as Error).message}`, { cause: err });
    }
    const records: JournalRecord[] = [];
    let offset = 0;
    let tornBytes = 0;
    let lineNo = 0;
    while (offset < buf.length) {
      lineNo++;
      const nl = buf.indexOf(0x0a, offset);
      const end = nl < 0 ? buf.length : nl;
      const line = buf.subarray(offset, end).toString('utf8');
      let rec: unknown;
      let bad: string | null = null;
      try {
        rec = unframe(line);
        if (!isRecord(rec)) bad = 'not a journal record';
      } catch (err) {
        bad = (err as Error).message;
      }
      const isLast = nl < 0 || nl + 1 >= buf.length;
      if (bad !== null || nl < 0) {
        if (!isLast) {
          throw new JournalCorruptError(
            `journal ${this.journalPath} line ${lineNo} is corrupt (${bad ?? 'unterminated'})`,
          );
        }
        tornBytes = buf.length - offset;
        break;
      }
      records.push(rec as JournalRecord);
      offset = nl + 1;
    }
    try {
      if (tornBytes > 0) fs.truncateSync(this.journalPath, offset);
      this.fd = fs.openSync(this.journalPath, 'a', 0o600);
    } catch (err) {
      throw new StateDirError(`cannot open ${this.journalPath} for writing: ${(err as Error).message}`, { cause: err });
    }
    this.records = records.length;
    return { ...recoverFrom(snapshot, records), tornBytes };
  }

  append(record: JournalRecord, sync: boolean): void {
    if (this.fd === null) throw new Error('journal is not open');
    fs.writeSync(this.fd, frame(record));
    if (sync) fs.fdatasyncSync(this.fd);
    this.records++;
  }

  compact(state: NodeState, seq: number): void {
    const tmp = `${this.snapshotPath}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, frame({ seq, state }));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.snapshotPath);
    fsyncDir(this.dir);
    // The snapshot now covers every record: start an empty journal. A crash before this
    // rename leaves the old journal, whose records at or below `seq` replay skips.
    const jtmp = `${this.journalPath}.tmp`;
    fs.closeSync(fs.openSync(jtmp, 'w', 0o600));
    fs.renameSync(jtmp, this.journalPath);
    fsyncDir(this.dir);
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = fs.openSync(this.journalPath, 'a', 0o600);
    this.records = 0;
  }

  get sizeRecords(): number {
    return this.records;
  }

  close(): void {
    if (this.fd !== null) {
      fs.fdatasyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}
