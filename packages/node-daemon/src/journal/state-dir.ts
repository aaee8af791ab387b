/**
 * The state directory as a trust boundary: it is created private (0700), refused when another
 * local user could change it or anything on the way to it, locked so that one daemon uses it at
 * a time, and watched so that a directory deleted or replaced under the daemon is noticed.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { StateDirError, StateDirLockedError, StateDirUnsafeError } from '../errors';

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

/**
 * One daemon per state directory. The lock is a Linux abstract-namespace Unix socket, bound for as
 * long as the daemon runs: the kernel releases it when the process dies however it dies (kill -9
 * included), so there is never a stale lock to clean up. Its name carries a random id kept in the
 * state directory (readable only by the daemon's user), so no other user can take it first.
 */
export class StateDirLock {
  private server: net.Server | null = null;

  constructor(private readonly dir: string) {}

  private lockId(): string {
    const file = path.join(this.dir, LOCK_ID);
    try {
      const fd = fs.openSync(
        file,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
        0o600,
      );
      try {
        fs.writeSync(fd, randomBytes(16).toString('hex'));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(64);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      const id = buf.subarray(0, n).toString('utf8').trim();
      if (!/^[0-9a-f]{32}$/.test(id))
        throw new Error(
          `${file} does not hold a lock id (another daemon may be starting; if none is, delete the file)`,
        );
      return id;
    } finally {
      fs.closeSync(fd);
    }
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
      throw new StateDirError(`state directory ${this.dir}: cannot read its lock id: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const server = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE')
          reject(
            new StateDirLockedError(
              `another magrathead is running on the state directory ${this.dir} (it holds the directory's lock); stop it first — two daemons on one state directory would both acknowledge jobs and lose half of them`,
            ),
          );
        else reject(new StateDirError(`cannot lock the state directory ${this.dir}: ${err.message}`, { cause: err }));
      });
      server.listen(name, () => resolve());
    });
    server.unref();
    this.server = server;
  }

  /** Releases the lock (the last step of a stop). */
  release(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => s.close(() => resolve()));
  }
}
