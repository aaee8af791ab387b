/**
 * The state directory as a trust boundary: it is created private (0700), refused when another
 * local user could change it or anything on the way to it, locked so that one daemon uses it at
 * a time, and watched so that a directory deleted or replaced under the daemon is noticed.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { StateDirError, StateDirLockedError, StateDirUnsafeError, StorageError } from '../errors';
import { unixSocketAnswers } from '@magrathea/common';

const mode = (st: fs.Stats): string => (st.mode & 0o7777).toString(8).padStart(4, '0');

/** The effective uid of this process, learnt from a file it creates (no `process`, no passwd lookup). */
function ownUid(dir: string): number {
  const probe = path.join(dir, `.uid-${randomBytes(6).toString('hex')}`);
  const fd = fs.openSync(probe, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    return fs.fstatSync(fd).uid;
  } finally {
    fs.closeSync(fd);
    fs.unlinkSync(probe);
  }
}

/**
 * Creates the state directory (0700) when it is missing and checks that only this daemon's user
 * (and root) can change it: every symbolic link on the way must belong to root or that user, the
 * directory's ancestors must belong to root or that user and be writable by nobody else (unless
 * sticky, like /tmp), and the directory itself must belong to that user and be writable by nobody
 * else. Returns the daemon's uid. Throws StateDirUnsafeError (exit 77) or StateDirError (73).
 */
export function prepareStateDir(dir: string): number {
  let uid: number;
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.R_OK | fs.constants.X_OK);
    uid = ownUid(dir);
  } catch (err) {
    throw new StateDirError(`state directory ${dir} is not usable: ${(err as Error).message}`, { cause: err });
  }
  const trusted = (st: fs.Stats): boolean => st.uid === 0 || st.uid === uid;
  const abs = path.resolve(dir);
  // Symbolic links on the configured path: whoever owns one decides where it leads.
  let prefix = path.parse(abs).root;
  for (const part of abs.split(path.sep).filter(Boolean)) {
    prefix = path.join(prefix, part);
    const st = fs.lstatSync(prefix);
    if (st.isSymbolicLink() && !trusted(st))
      throw new StateDirUnsafeError(
        `state directory ${dir}: the symbolic link ${prefix} belongs to uid ${st.uid}, who can point it elsewhere; use a path without links owned by other users`,
      );
  }
  const real = fs.realpathSync(abs);
  const parts = real.split(path.sep).filter(Boolean);
  let at = path.parse(real).root;
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) at = path.join(at, parts[i - 1] as string);
    const st = fs.statSync(at);
    const self = i === parts.length;
    if (self) {
      if (st.uid !== uid)
        throw new StateDirUnsafeError(
          `state directory ${real} belongs to uid ${st.uid}, not to the daemon's uid ${uid}; chown it (or use another directory)`,
        );
      if ((st.mode & 0o022) !== 0)
        throw new StateDirUnsafeError(
          `state directory ${real} is writable by other users (mode ${mode(st)}): they could replace the journal; chmod 0700 ${real}`,
        );
      continue;
    }
    if (!trusted(st))
      throw new StateDirUnsafeError(
        `state directory ${real}: its parent ${at} belongs to uid ${st.uid}, who could replace it; use a directory whose parents belong to root`,
      );
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0)
      throw new StateDirUnsafeError(
        `state directory ${real}: its parent ${at} is writable by other users (mode ${mode(st)}) and not sticky, so they could replace the state directory; chmod go-w ${at}`,
      );
  }
  return uid;
}

/** A file of the state directory, as the daemon expects it: absent, or a regular file (no link) of its own. */
export function checkStateFile(file: string, uid: number): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!st.isFile())
    throw new StateDirUnsafeError(
      `${file} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; the daemon writes only its own regular files there — move it away`,
    );
  if (st.uid !== uid)
    throw new StateDirUnsafeError(`${file} belongs to uid ${st.uid}, not to the daemon's uid ${uid}; move it away`);
}

/** Where a file (or directory) is: it stays the same object while nobody replaces it. */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

export const identityOf = (st: fs.Stats): FileIdentity => ({ dev: st.dev, ino: st.ino });
export const sameFile = (a: FileIdentity, b: FileIdentity): boolean => a.dev === b.dev && a.ino === b.ino;

const LOCK_ID = 'lock.id';
/** The lock's socket in the state directory. */
const LOCK_SOCKET = 'lock.sock';

/** Binds `server` to `name` (an abstract name or a path); rejects with the listen error. */
function bindLock(server: net.Server, name: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(name, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * One daemon per state directory, held by two sockets bound for as long as the daemon runs (the
 * kernel releases both when the process dies however it dies, kill -9 included):
 * - `lock.sock` in the state directory (which only the daemon's user can enter, so nobody else can
 *   take it first): a Unix socket file is reached from every network namespace and whatever else
 *   the directory holds, so a daemon started in another namespace (a unit with PrivateNetwork=, a
 *   container sharing the directory) or after `lock.id` was deleted finds the first one answering
 *   on it. A socket file that nobody answers on is a dead daemon's, and is replaced.
 * - a Linux abstract-namespace socket named after a random id kept in `lock.id`, taken first: it
 *   makes two daemons starting at once on one host take turns at the socket file (an abstract
 *   name has no owner; the random id keeps other users from taking it first).
 */
export class StateDirLock {
  private server: net.Server | null = null;
  private fileServer: net.Server | null = null;

  constructor(private readonly dir: string) {}

  /**
   * The directory's lock id, made when missing. Written whole or not at all (a temporary file
   * linked into place), so a full disk or a kill -9 never leaves a `lock.id` that stops every
   * later start; one that does not hold an id (left by an older version) is replaced.
   */
  private lockId(): string {
    const file = path.join(this.dir, LOCK_ID);
    const read = (): string | null => {
      let fd: number;
      try {
        fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
      try {
        const buf = Buffer.alloc(64);
        const n = fs.readSync(fd, buf, 0, buf.length, 0);
        const id = buf.subarray(0, n).toString('utf8').trim();
        return /^[0-9a-f]{32}$/.test(id) ? id : '';
      } finally {
        fs.closeSync(fd);
      }
    };
    const found = read();
    if (found) return found;
    const tmp = path.join(this.dir, `.${LOCK_ID}-${randomBytes(6).toString('hex')}`);
    const fd = fs.openSync(
      tmp,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
      0o600,
    );
    try {
      try {
        fs.writeSync(fd, randomBytes(16).toString('hex'));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      if (found === null) {
        try {
          fs.linkSync(tmp, file);
        } catch (err) {
          // Another daemon starting at the same moment made it first: use its id.
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      } else fs.renameSync(tmp, file);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    const id = read();
    if (!id) throw new Error(`${file} does not hold a lock id after it was written`);
    return id;
  }

  /**
   * Prepares the state directory (prepareStateDir: created, checked safe) and takes the lock, or
   * throws StateDirLockedError (exit 75) when another daemon holds it.
   */
  async acquire(): Promise<void> {
    if (this.server) return;
    prepareStateDir(this.dir);
    let name: string;
    try {
      name = `\0magrathead-state-${this.lockId()}`;
    } catch (err) {
      const message = `state directory ${this.dir}: cannot read its lock id: ${(err as Error).message}`;
      // A full disk or an I/O error is the storage's failure (exit 74), as for the first snapshot.
      const code = (err as NodeJS.ErrnoException).code;
      throw code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO'
        ? new StorageError(message, { cause: err })
        : new StateDirError(message, { cause: err });
    }
    const locked = (): StateDirLockedError =>
      new StateDirLockedError(
        `another magrathead is running on the state directory ${this.dir} (it holds the directory's lock); stop it first — two daemons on one state directory would both acknowledge jobs and lose half of them`,
      );
    const failed = (err: Error): StateDirError =>
      new StateDirError(`cannot lock the state directory ${this.dir}: ${err.message}`, { cause: err });
    const server = net.createServer((s) => s.destroy());
    try {
      await bindLock(server, name);
    } catch (err) {
      throw (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? locked() : failed(err as Error);
    }
    server.unref();
    this.server = server;
    const sock = path.join(this.dir, LOCK_SOCKET);
    const fileServer = net.createServer((s) => s.destroy());
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await bindLock(fileServer, sock);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw failed(err as Error);
          if (attempt > 0 || (await unixSocketAnswers(sock))) throw locked();
          // A dead daemon's socket (nobody answers): replaced.
          if (!fs.lstatSync(sock).isSocket())
            throw new StateDirError(`${sock} exists and is not a socket; move it away`);
          fs.unlinkSync(sock);
        }
      }
    } catch (err) {
      await this.release();
      throw err;
    }
    fileServer.unref();
    this.fileServer = fileServer;
  }

  /** Releases the lock (the last step of a stop). */
  async release(): Promise<void> {
    const servers = [this.fileServer, this.server];
    this.fileServer = null;
    this.server = null;
    // The socket file first (it is the lock other namespaces see), the abstract name last.
    for (const s of servers) if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
