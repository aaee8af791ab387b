/**
 * Reading the small files a server is configured with (tokens, certificates, configs) without
 * being hung or flooded by them: only regular files are read (a FIFO, a device or a directory is
 * refused before any read, and the open itself never waits for a FIFO's writer), at most
 * `maxBytes`, and the asynchronous form never blocks the event loop.
 */
import * as fs from 'node:fs';

/** Why a file was not read. */
export type FileReadProblem = 'missing' | 'not-regular' | 'too-large' | 'unreadable';

export class FileReadError extends Error {
  override readonly name = 'FileReadError';
  constructor(
    readonly problem: FileReadProblem,
    message: string,
    /** The errno code (`ENOENT`, `EACCES`, ...) when the open or read failed. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** What was read, with the facts a caller may warn about (mode, owner). */
export interface FileContents {
  readonly data: Buffer;
  /** Permission bits (e.g. 0o600). */
  readonly mode: number;
  readonly uid: number;
}

export interface ReadFileOptions {
  /** Largest size accepted, bytes. */
  readonly maxBytes: number;
  /** What the file is, for messages ("token file", "CA certificate"). */
  readonly what: string;
}

// O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer (reads of regular
// files are unaffected); O_NOCTTY: a terminal device never becomes our controlling terminal.
const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;

function kindOf(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function openError(file: string, what: string, err: unknown): FileReadError {
  const errno = (err as NodeJS.ErrnoException).code;
  const code = errno ?? (err as Error).message;
  return new FileReadError(
    code === 'ENOENT' ? 'missing' : 'unreadable',
    `${what} ${file}: cannot read (${code})`,
    errno,
  );
}

function checkStat(file: string, opts: ReadFileOptions, st: fs.Stats): void {
  if (!st.isFile())
    throw new FileReadError('not-regular', `${opts.what} ${file} is ${kindOf(st)}; only a regular file is read`);
  if (st.size > opts.maxBytes)
    throw new FileReadError(
      'too-large',
      `${opts.what} ${file} is ${st.size} bytes; at most ${opts.maxBytes} are accepted`,
    );
}

function tooLarge(file: string, opts: ReadFileOptions): FileReadError {
  return new FileReadError('too-large', `${opts.what} ${file} is larger than ${opts.maxBytes} bytes`);
}

/** Reads a small regular file (for start-up, before the event loop serves anyone). */
export function readRegularFileSync(file: string, opts: ReadFileOptions): FileContents {
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (err) {
    throw openError(file, opts.what, err);
  }
  try {
    const st = fs.fstatSync(fd);
    checkStat(file, opts, st);
    // One byte more than allowed tells a file that grew since the stat.
    const buf = Buffer.alloc(opts.maxBytes + 1);
    let n = 0;
    for (;;) {
      const r = fs.readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > opts.maxBytes) throw tooLarge(file, opts);
    }
    return { data: buf.subarray(0, n), mode: st.mode & 0o7777, uid: st.uid };
  } catch (err) {
    if (err instanceof FileReadError) throw err;
    throw openError(file, opts.what, err);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads a small regular file off the event loop (SIGHUP reloads, anything while serving). */
export async function readRegularFile(file: string, opts: ReadFileOptions): Promise<FileContents> {
  let h: fs.promises.FileHandle;
  try {
    h = await fs.promises.open(file, OPEN_FLAGS);
  } catch (err) {
    throw openError(file, opts.what, err);
  }
  try {
    const st = await h.stat();
    checkStat(file, opts, st);
    const buf = Buffer.alloc(opts.maxBytes + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await h.read(buf, n, buf.length - n, null);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > opts.maxBytes) throw tooLarge(file, opts);
    }
    return { data: buf.subarray(0, n), mode: st.mode & 0o7777, uid: st.uid };
  } catch (err) {
    if (err instanceof FileReadError) throw err;
    throw openError(file, opts.what, err);
  } finally {
    await h.close();
  }
}
