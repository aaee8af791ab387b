/**
 * Append-only JSONL journal with a CRC-32 per record, fsynced on demand, plus a snapshot.
 *
 * - Every write is checked: a short write (a full disk) or a failed fsync takes the partial
 *   record back out of the file and throws StorageError, so nothing half-written is ever followed
 *   by an acknowledged record, and a command whose record is not on disk is not acknowledged.
 * - A snapshot is written to a new temporary file (created exclusively, never through a symbolic
 *   link), fsynced, read back and compared, and only then renamed over the old one; the journal
 *   after it starts with a `base` record naming the snapshot it continues.
 * - A torn last record (the daemon died in the middle of a write) is cut off; a bad record
 *   anywhere else, or a gap in the sequence numbers (records missing), is corruption and stops the
 *   start-up with the position, rather than silently dropping acknowledged work.
 * - The state directory and the journal file are remembered as they were opened: a directory
 *   deleted or replaced under the daemon makes every append throw StateDirLostError.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import type { NodeState } from '../domain';
import { JournalCorruptError, StateDirError, StateDirLostError, StorageError } from '../errors';
import type { Journal, JournalRecord, Recovered } from './journal';
import { recoverFrom } from './recover';
import type { FileIdentity } from './state-dir';
import { checkStateFile, identityOf, prepareStateDir, sameFile } from './state-dir';

const JOURNAL = 'journal.jsonl';
const SNAPSHOT = 'snapshot.json';
const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_APPEND, O_NOFOLLOW } = fs.constants;

function frame(obj: unknown): Buffer {
  const json = JSON.stringify(obj);
  return Buffer.from(`${crc32(json).toString(16).padStart(8, '0')} ${json}\n`, 'utf8');
}

function unframe(line: string): unknown {
  const sp = line.indexOf(' ');
  if (sp !== 8) throw new Error('no checksum');
  const json = line.slice(9);
  if (crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) throw new Error('checksum mismatch');
  return JSON.parse(json) as unknown;
}

function isRecord(x: unknown): x is JournalRecord {
  if (typeof x !== 'object' || x === null) return false;
  const r = x as Record<string, unknown>;
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 0) return false;
  if (r.t === 'abort') return true;
  if (r.t === 'base') return typeof r.generation === 'number';
  return (r.t === 'intent' || r.t === 'commit') && typeof r.cmd === 'object' && r.cmd !== null;
}

const codeOf = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

/** Writes all of `buf` (a short write is retried; no progress is an error). */
function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    const n = fs.writeSync(fd, buf, off, buf.length - off);
    if (n <= 0) throw Object.assign(new Error('short write (no progress)'), { code: 'EIO' });
    off += n;
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, O_RDONLY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A fresh file beside `target`, created exclusively (a planted file or link makes this fail, never followed). */
function createTemp(target: string): { fd: number; file: string } {
  const file = `${target}.${randomBytes(6).toString('hex')}.tmp`;
  return { fd: fs.openSync(file, fs.constants.O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600), file };
}

/** Writes `buf` to a new temporary file beside `target`, fsyncs it, reads it back; returns its name. */
function writeVerified(target: string, buf: Buffer): string {
  const { fd, file } = createTemp(target);
  try {
    writeAll(fd, buf);
    fs.fsyncSync(fd);
    const back = Buffer.alloc(buf.length + 1);
    const n = fs.readSync(fd, back, 0, back.length, 0);
    if (n !== buf.length || !back.subarray(0, n).equals(buf))
      throw Object.assign(new Error(`read back ${n} of ${buf.length} bytes, not what was written`), { code: 'EIO' });
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  return file;
}

export class FileJournal implements Journal {
  private fd: number | null = null;
  private records = 0;
  /** Bytes of the journal file that hold whole records (appends go after them). */
  private size = 0;
  private uid = -1;
  private dirId: FileIdentity | null = null;
  private fileId: FileIdentity | null = null;
  /** Set when a failed write could not be taken back: the journal's tail is unknown, nothing more is appended. */
  private broken: string | null = null;
  readonly journalPath: string;
  readonly snapshotPath: string;

  constructor(readonly dir: string) {
    this.journalPath = path.join(dir, JOURNAL);
    this.snapshotPath = path.join(dir, SNAPSHOT);
  }

  private readSnapshot(): Recovered['snapshot'] {
    let text: string;
    try {
      const fd = fs.openSync(this.snapshotPath, O_RDONLY | O_NOFOLLOW);
      try {
        text = fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
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

  /** Temporary files left by a crash in the middle of a compaction (their names are random). */
  private removeStaleTemps(): void {
    for (const f of fs.readdirSync(this.dir)) {
      if (/^(?:journal\.jsonl|snapshot\.json)\.[0-9a-f]{12}\.tmp$/.test(f))
        fs.rmSync(path.join(this.dir, f), { force: true });
    }
  }

  open(): Recovered {
    this.uid = prepareStateDir(this.dir);
    checkStateFile(this.journalPath, this.uid);
    checkStateFile(this.snapshotPath, this.uid);
    this.removeStaleTemps();
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
    const recovered = recoverFrom(snapshot, records, `journal ${this.journalPath}`);
    try {
      if (tornBytes > 0) fs.truncateSync(this.journalPath, offset);
      this.fd = fs.openSync(this.journalPath, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0o600);
      this.dirId = identityOf(fs.statSync(this.dir));
      this.fileId = identityOf(fs.fstatSync(this.fd));
    } catch (err) {
      throw new StateDirError(`cannot open ${this.journalPath} for writing: ${(err as Error).message}`, { cause: err });
    }
    this.size = offset;
    this.records = records.length;
    return { ...recovered, tornBytes };
  }

  verify(): void {
    if (this.fd === null || !this.dirId || !this.fileId) return;
    // The common case costs one lstat (it runs before every append): while the journal's path
    // still leads to the file the daemon writes, that file is reachable where a restart reads
    // it. Anything else is told apart below for a precise message.
    const at = fs.lstatSync(this.journalPath, { throwIfNoEntry: false });
    if (at !== undefined && sameFile(identityOf(at), this.fileId)) return;
    let why: string | null = null;
    try {
      if (!sameFile(identityOf(fs.statSync(this.dir)), this.dirId)) why = 'was replaced by another directory';
      else if (fs.fstatSync(this.fd).nlink === 0) why = 'lost its journal (the file was deleted)';
      else if (!sameFile(identityOf(fs.lstatSync(this.journalPath)), this.fileId))
        why = 'holds another journal file than the one the daemon writes';
    } catch (err) {
      why = `is gone (${codeOf(err)})`;
    }
    if (why !== null)
      throw new StateDirLostError(
        `the state directory ${this.dir} ${why} while the daemon was running: nothing written now would survive a restart`,
      );
  }

  append(record: JournalRecord, sync: boolean): void {
    if (this.fd === null) throw new Error('journal is not open');
    this.verify();
    if (this.broken !== null) throw new StorageError(this.broken);
    const buf = frame(record);
    try {
      writeAll(this.fd, buf);
      if (sync) fs.fdatasyncSync(this.fd);
    } catch (err) {
      // Take the partial record back out, so that no later record follows half a record.
      try {
        fs.ftruncateSync(this.fd, this.size);
        fs.fdatasyncSync(this.fd);
      } catch (undoErr) {
        this.broken = `the journal ${this.journalPath} could not be repaired after a failed write (${codeOf(undoErr)}); restart the daemon once the disk is fixed`;
      }
      throw new StorageError(`cannot write the journal ${this.journalPath} (${codeOf(err)})`, { cause: err });
    }
    this.size += buf.length;
    this.records++;
  }

  compact(state: NodeState, seq: number): void {
    if (this.fd === null) throw new Error('journal is not open');
    this.verify();
    if (this.broken !== null) throw new StorageError(this.broken);
    let snapTmp: string | null = null;
    let journalTmp: string | null = null;
    try {
      snapTmp = writeVerified(this.snapshotPath, frame({ seq, state }));
      // The new journal is ready (and verified) before the snapshot replaces the old one.
      journalTmp = writeVerified(this.journalPath, frame({ t: 'base', seq, generation: state.generation }));
    } catch (err) {
      if (snapTmp) fs.rmSync(snapTmp, { force: true });
      throw new StorageError(
        `cannot write a snapshot in ${this.dir} (${codeOf(err)}); the journal keeps every record`,
        {
          cause: err,
        },
      );
    }
    try {
      fs.renameSync(snapTmp, this.snapshotPath);
      fsyncDir(this.dir);
    } catch (err) {
      fs.rmSync(snapTmp, { force: true });
      fs.rmSync(journalTmp, { force: true });
      throw new StorageError(`cannot replace ${this.snapshotPath} (${codeOf(err)}); the journal keeps every record`, {
        cause: err,
      });
    }
    // The snapshot now covers every record. A crash (or a failure) before the journal's rename
    // leaves the old journal, whose records at or below `seq` replay skips.
    let fd: number;
    try {
      fs.renameSync(journalTmp, this.journalPath);
      fsyncDir(this.dir);
      fd = fs.openSync(this.journalPath, O_WRONLY | O_APPEND | O_NOFOLLOW);
    } catch (err) {
      fs.rmSync(journalTmp, { force: true });
      this.broken = `the journal ${this.journalPath} could not be reopened after a snapshot (${codeOf(err)}); restart the daemon`;
      throw new StorageError(this.broken, { cause: err });
    }
    fs.closeSync(this.fd);
    this.fd = fd;
    this.fileId = identityOf(fs.fstatSync(fd));
    this.size = fs.fstatSync(fd).size;
    this.records = 0;
  }

  get sizeRecords(): number {
    return this.records;
  }

  close(): void {
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      try {
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
}
