/**
 * The node's image cache: named template disks from the catalogue (`images:` in the config)
 * fetched from http(s) or a local path into a content-addressed directory.
 *
 *  - `blobs/<sha256>`: complete, verified images (mode 0444: a base is never written; the
 *    domains write into their own qcow2 overlays);
 *  - `partial/<sha256>.part`: a download in progress. Bytes are hashed while they stream in;
 *    when the stream ends the file is fsync'd, its digest compared and only then renamed into
 *    `blobs/` (and the directory fsync'd). A digest mismatch removes the partial: nothing is cached.
 *  - A partial left by a killed daemon or a cut connection is resumed: its bytes are hashed
 *    again and the rest is asked for with an HTTP Range request (a server that ignores the range
 *    answers 200 and the download starts over).
 *  - Any number of callers asking for one image share one download (single flight).
 *  - Leases count who uses an image; eviction (least recently used first, by the blob's mtime,
 *    which every lease and release touches) brings the cache under its size limit and never
 *    removes an image that is leased or being downloaded.
 *
 * One daemon owns a cache directory (the default is inside its locked state directory).
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { DaemonError } from '../errors';
import type { DaemonErrorCode } from '../errors';

export const IMAGE_FORMATS = ['qcow2', 'raw'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** One catalogue entry. */
export interface ImageSpec {
  /** Name the domains and PBS use (letters, digits, ._-). */
  readonly name: string;
  /** http:// or https:// URL, file:// URL or absolute path. */
  readonly url: string;
  /** Lower-case hex SHA-256 of the whole file. */
  readonly sha256: string;
  readonly format: ImageFormat;
}

export interface ImageCacheOptions {
  /** Cache directory (absolute). */
  readonly dir: string;
  /** Eviction brings the complete images under this many bytes (leased ones are never evicted). */
  readonly maxBytes: number;
  readonly images: readonly ImageSpec[];
  /** A download that receives nothing for this long fails (and can be resumed), ms. */
  readonly idleTimeoutMs: number;
}

export type ImageProblem =
  | 'unknown-image'
  | 'bad-url'
  | 'download-failed'
  | 'digest-mismatch'
  | 'no-space'
  | 'cache-dir'
  | 'too-large'
  | 'in-use';

const CODES: Record<ImageProblem, DaemonErrorCode> = {
  'unknown-image': 'not-found',
  'bad-url': 'invalid-argument',
  'download-failed': 'unavailable',
  'digest-mismatch': 'unavailable',
  'no-space': 'resource-exhausted',
  'cache-dir': 'unavailable',
  'too-large': 'resource-exhausted',
  'in-use': 'invalid-argument',
};

/** Why an image could not be provided or removed; the message names the image and the cause. */
export class ImageError extends DaemonError {
  override readonly name = 'ImageError';
  constructor(
    readonly problem: ImageProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(CODES[problem], message, options);
  }
}

/** A use of a cached image: its file stays in the cache until release(). */
export interface ImageLease {
  readonly name: string;
  readonly sha256: string;
  readonly format: ImageFormat;
  /** The verified base file (read-only). */
  readonly file: string;
  release(): void;
}

export type ImageState = 'cached' | 'downloading' | 'partial' | 'absent';

export interface ImageEntry {
  readonly name: string;
  readonly sha256: string;
  readonly format: ImageFormat;
  readonly url: string;
  readonly state: ImageState;
  /** Size of the complete image, or the bytes of the partial one. */
  readonly bytes: number;
  /** When it was last leased or released, ms since the epoch (0 when absent). */
  readonly lastUsedMs: number;
  /** Leases held now. */
  readonly users: number;
}

export interface PullResult {
  /** Bytes transferred by this pull (0: it was cached). */
  readonly downloadedBytes: number;
  /** The download resumed a partial file from this offset (0: from the start). */
  readonly resumedFrom: number;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;
const MAX_REDIRECTS = 3;
/** Bytes gathered before one write. */
const WRITE_BYTES = 4 * 1024 * 1024;
/**
 * Written bytes after which a data sync is started in the background: the disk writes the image
 * out while the rest arrives, so the final fsync has at most this much left to flush (the
 * download is no longer download time + flush time).
 */
const SYNC_BYTES = 32 * 1024 * 1024;

/** Classifies a catalogue URL; throws ImageError('bad-url') for anything else. */
export function parseImageSource(url: string): { kind: 'http'; url: URL } | { kind: 'file'; file: string } {
  if (path.isAbsolute(url)) return { kind: 'file', file: url };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ImageError('bad-url', `"${url}" is not a URL (http://, https://, file://) or an absolute path`);
  }
  if (u.protocol === 'file:') return { kind: 'file', file: decodeURIComponent(u.pathname) };
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new ImageError('bad-url', `"${url}": only http, https and file URLs are supported`);
  if (u.username || u.password) throw new ImageError('bad-url', `"${url}": credentials in the URL are not accepted`);
  return { kind: 'http', url: u };
}

function fsProblem(err: unknown): ImageProblem {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT' ? 'no-space' : 'cache-dir';
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code}: ${e.message}` : String(e.message ?? err);
}

interface Source {
  readonly stream: Readable;
  /** Where the stream starts in the file (0, or the resume offset when honoured). */
  readonly offset: number;
  /** Total size when known. */
  readonly total: number | null;
}

export class ImageCache {
  private readonly specs = new Map<string, ImageSpec>();
  private readonly users = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<PullResult>>();
  private readonly blobs: string;
  private readonly partials: string;

  constructor(private readonly opts: ImageCacheOptions) {
    for (const s of opts.images) this.specs.set(s.name, s);
    this.blobs = path.join(opts.dir, 'blobs');
    this.partials = path.join(opts.dir, 'partial');
  }

  /** Creates the directories; a cache directory that cannot be written is an ImageError('cache-dir'). */
  async open(): Promise<void> {
    try {
      await mkdirs(this.blobs, 0o755);
      await mkdirs(this.partials, 0o700);
      const probe = path.join(this.partials, '.write-probe');
      await fsp.writeFile(probe, '');
      await fsp.rm(probe);
    } catch (err) {
      throw new ImageError(
        fsProblem(err),
        `the image cache directory ${this.opts.dir} cannot be written (${describe(err)})`,
        { cause: err },
      );
    }
  }

  spec(name: string): ImageSpec {
    const s = this.specs.get(name);
    if (!s) {
      const known = [...this.specs.keys()];
      throw new ImageError(
        'unknown-image',
        `no image named "${name}" in the catalogue (${known.length > 0 ? `known: ${known.join(', ')}` : 'the catalogue is empty'})`,
      );
    }
    return s;
  }

  names(): string[] {
    return [...this.specs.keys()];
  }

  private blob(sha: string): string {
    return path.join(this.blobs, sha);
  }

  private partial(sha: string): string {
    return path.join(this.partials, `${sha}.part`);
  }

  /** Downloads the image unless it is cached (concurrent calls share one download). */
  pull(name: string): Promise<PullResult> {
    const spec = this.spec(name);
    const running = this.inflight.get(spec.sha256);
    if (running) return running.then(() => ({ downloadedBytes: 0, resumedFrom: 0 }));
    if (fs.existsSync(this.blob(spec.sha256))) return Promise.resolve({ downloadedBytes: 0, resumedFrom: 0 });
    const p = this.download(spec).finally(() => this.inflight.delete(spec.sha256));
    this.inflight.set(spec.sha256, p);
    return p;
  }

  /** Pulls the image if needed and leases it; then evicts what else is over the limit. */
  async acquire(name: string): Promise<ImageLease> {
    const spec = this.spec(name);
    // Counted before the download, so an eviction during it cannot take the image.
    this.users.set(spec.sha256, (this.users.get(spec.sha256) ?? 0) + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const n = (this.users.get(spec.sha256) ?? 1) - 1;
      if (n <= 0) this.users.delete(spec.sha256);
      else this.users.set(spec.sha256, n);
      this.touch(spec.sha256);
    };
    try {
      await this.pull(name);
      this.touch(spec.sha256);
      await this.evict();
    } catch (err) {
      release();
      throw err;
    }
    return { name, sha256: spec.sha256, format: spec.format, file: this.blob(spec.sha256), release };
  }

  private touch(sha: string): void {
    const now = new Date();
    try {
      fs.utimesSync(this.blob(sha), now, now);
    } catch {
      // evicted or never complete: nothing to touch
    }
  }

  /** Removes a cached (or partial) image; refused while a domain uses it. */
  async remove(name: string): Promise<boolean> {
    const spec = this.spec(name);
    if ((this.users.get(spec.sha256) ?? 0) > 0 || this.inflight.has(spec.sha256))
      throw new ImageError('in-use', `image "${name}" is in use; shut down or switch the domains that use it first`);
    let removed = false;
    for (const f of [this.blob(spec.sha256), this.partial(spec.sha256)]) {
      try {
        await fsp.rm(f);
        removed = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
          throw new ImageError('cache-dir', `cannot remove ${f} (${describe(err)})`, { cause: err });
      }
    }
    return removed;
  }

  /** The catalogue with what the cache holds of each image. */
  list(): ImageEntry[] {
    return [...this.specs.values()].map((s) => {
      const users = this.users.get(s.sha256) ?? 0;
      const st = statOrNull(this.blob(s.sha256));
      if (st) return { ...pick(s), state: 'cached', bytes: st.size, lastUsedMs: st.mtimeMs, users };
      const part = statOrNull(this.partial(s.sha256));
      const state: ImageState = this.inflight.has(s.sha256) ? 'downloading' : part ? 'partial' : 'absent';
      return { ...pick(s), state, bytes: part?.size ?? 0, lastUsedMs: 0, users };
    });
  }

  /** Bytes held by complete images. */
  usedBytes(): number {
    let sum = 0;
    for (const f of safeReaddir(this.blobs)) sum += statOrNull(path.join(this.blobs, f))?.size ?? 0;
    return sum;
  }

  /**
   * Removes least recently used images that nobody leases until the complete images fit in
   * maxBytes - reserve. Returns the digests removed.
   */
  async evict(reserve = 0): Promise<string[]> {
    const entries = safeReaddir(this.blobs)
      .filter((f) => SHA256_HEX.test(f))
      .map((f) => ({ sha: f, st: statOrNull(path.join(this.blobs, f)) }))
      .filter((e): e is { sha: string; st: fs.Stats } => e.st !== null)
      .sort((a, b) => a.st.mtimeMs - b.st.mtimeMs);
    let total = entries.reduce((s, e) => s + e.st.size, 0);
    const removed: string[] = [];
    for (const e of entries) {
      if (total + reserve <= this.opts.maxBytes) break;
      if ((this.users.get(e.sha) ?? 0) > 0 || this.inflight.has(e.sha)) continue;
      try {
        await fsp.rm(path.join(this.blobs, e.sha));
        total -= e.st.size;
        removed.push(e.sha);
      } catch {
        // gone already, or the directory broke: the next download reports it
      }
    }
    return removed;
  }

  // ---- download ----------------------------------------------------------------------------

  private async download(spec: ImageSpec): Promise<PullResult> {
    const part = this.partial(spec.sha256);
    let have = statOrNull(part)?.size ?? 0;
    const hash = createHash('sha256');
    if (have > 0) {
      // Resume: the digest covers the bytes we already hold.
      try {
        await hashFile(part, hash);
      } catch (err) {
        throw new ImageError(fsProblem(err), `cannot read the partial image ${part} (${describe(err)})`, {
          cause: err,
        });
      }
    }
    const src = await this.open_(spec, have);
    let h = hash;
    if (src.offset !== have) {
      // The source did not honour the range: start over.
      h = createHash('sha256');
      have = 0;
    }
    if (src.total !== null && src.total > this.opts.maxBytes) {
      src.stream.destroy();
      throw new ImageError(
        'too-large',
        `image "${spec.name}" is ${src.total} bytes, more than the cache limit of ${this.opts.maxBytes}`,
      );
    }
    await this.evict(src.total !== null ? src.total - have : 0);
    let fd: fs.promises.FileHandle;
    try {
      // A new partial is created exclusively; an existing one is continued (or truncated).
      fd = have > 0 ? await fsp.open(part, 'r+') : await openFresh(part);
      if (have === 0) await fd.truncate(0);
    } catch (err) {
      src.stream.destroy();
      throw new ImageError(fsProblem(err), `cannot write the image cache (${part}: ${describe(err)})`, {
        cause: err,
      });
    }
    let pos = have;
    try {
      // Writes of up to WRITE_BYTES go out while the next bytes arrive and are hashed (one in
      // flight: memory stays bounded when the disk is slower than the network).
      const out = fd;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let writing: Promise<void> = Promise.resolve();
      // One background data sync at a time, started every SYNC_BYTES; its failure is the write's.
      let syncing: Promise<void> = Promise.resolve();
      let unsynced = 0;
      const flush = async (): Promise<void> => {
        const buf = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
        const at = pos;
        pos += buf.length;
        pending = [];
        pendingBytes = 0;
        await writing;
        unsynced += buf.length;
        if (unsynced >= SYNC_BYTES) {
          await syncing;
          unsynced = 0;
          syncing = out.datasync();
          syncing.catch(() => undefined);
        }
        writing = writeAll(out, buf, at);
        // Awaited at the next flush or the end; until then a failure must not count as unhandled.
        writing.catch(() => undefined);
      };
      try {
        for await (const chunk of src.stream as AsyncIterable<Buffer>) {
          h.update(chunk);
          pending.push(chunk);
          pendingBytes += chunk.length;
          if (pendingBytes >= WRITE_BYTES) await flush();
        }
        if (pendingBytes > 0) await flush();
        await writing;
        await syncing;
      } catch (err) {
        await writing.catch(() => undefined);
        await syncing.catch(() => undefined);
        const syscall = (err as NodeJS.ErrnoException).syscall;
        const problem = syscall === 'write' || syscall === 'fdatasync' ? fsProblem(err) : 'download-failed';
        if (problem === 'no-space') await fsp.rm(part, { force: true });
        throw new ImageError(
          problem,
          problem === 'download-failed'
            ? `downloading image "${spec.name}" from ${spec.url} was interrupted after ${pos} bytes (${describe(err)}); the next pull resumes it`
            : `no space for image "${spec.name}" in ${this.opts.dir} (${describe(err)}); the partial file was removed`,
          { cause: err },
        );
      }
      if (src.total !== null && pos !== src.total)
        throw new ImageError(
          'download-failed',
          `image "${spec.name}" from ${spec.url} ended after ${pos} of ${src.total} bytes; the next pull resumes it`,
        );
      try {
        await fd.sync();
      } catch (err) {
        throw new ImageError(fsProblem(err), `cannot write the image cache (${describe(err)})`, { cause: err });
      }
    } finally {
      await fd.close().catch(() => undefined);
    }
    const digest = h.digest('hex');
    if (digest !== spec.sha256) {
      await fsp.rm(part, { force: true });
      throw new ImageError(
        'digest-mismatch',
        `image "${spec.name}" from ${spec.url} has sha256 ${digest}, the catalogue says ${spec.sha256}; nothing was cached`,
      );
    }
    try {
      await fsp.chmod(part, 0o444);
      await fsp.rename(part, this.blob(spec.sha256));
      await fsyncDir(this.blobs);
    } catch (err) {
      throw new ImageError(fsProblem(err), `cannot store image "${spec.name}" (${describe(err)})`, { cause: err });
    }
    return { downloadedBytes: pos - have, resumedFrom: have };
  }

  private open_(spec: ImageSpec, from: number): Promise<Source> {
    const src = parseImageSource(spec.url);
    if (src.kind === 'file') return openFile(spec, src.file, from);
    return this.openHttp(spec, src.url, from, 0);
  }

  private openHttp(spec: ImageSpec, url: URL, from: number, redirects: number): Promise<Source> {
    return new Promise<Source>((resolve, reject) => {
      const get = url.protocol === 'https:' ? https.get : http.get;
      const fail = (why: string, cause?: unknown): void =>
        reject(
          new ImageError('download-failed', `cannot download image "${spec.name}" from ${url.href}: ${why}`, { cause }),
        );
      const req = get(url, { headers: from > 0 ? { range: `bytes=${from}-` } : {} }, (res) => {
        const status = res.statusCode ?? 0;
        if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
          res.resume();
          if (redirects >= MAX_REDIRECTS) return fail(`more than ${MAX_REDIRECTS} redirects`);
          let next: URL;
          try {
            next = new URL(res.headers.location, url);
          } catch {
            return fail(`bad redirect to ${res.headers.location}`);
          }
          if (next.protocol !== 'http:' && next.protocol !== 'https:')
            return fail(`redirect to ${next.protocol} refused`);
          this.openHttp(spec, next, from, redirects + 1).then(resolve, reject);
          return;
        }
        if (status === 416 && from > 0) {
          // Our partial is as long as (or longer than) the file: fetch it whole again.
          res.resume();
          this.openHttp(spec, url, 0, redirects).then(resolve, reject);
          return;
        }
        const length = Number(res.headers['content-length']);
        if (status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers['content-range'] ?? '');
          if (!m || Number(m[1]) !== from) {
            res.resume();
            return fail(
              `the server answered the range request with Content-Range "${res.headers['content-range'] ?? ''}"`,
            );
          }
          return resolve({ stream: res, offset: from, total: m[3] === '*' ? null : Number(m[3]) });
        }
        if (status !== 200) {
          res.resume();
          return fail(`HTTP ${status} ${res.statusMessage ?? ''}`.trim());
        }
        resolve({ stream: res, offset: 0, total: Number.isFinite(length) ? length : null });
      });
      req.setTimeout(this.opts.idleTimeoutMs, () =>
        req.destroy(new Error(`no data for ${this.opts.idleTimeoutMs} ms`)),
      );
      req.on('error', (err) => fail(describe(err), err));
    });
  }
}

async function writeAll(fd: fs.promises.FileHandle, buf: Buffer, at: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fd.write(buf, off, buf.length - off, at + off);
    off += bytesWritten;
  }
}

function pick(s: ImageSpec): Pick<ImageEntry, 'name' | 'sha256' | 'format' | 'url'> {
  return { name: s.name, sha256: s.sha256, format: s.format, url: s.url };
}

function statOrNull(f: string): fs.Stats | null {
  try {
    return fs.statSync(f);
  } catch {
    return null;
  }
}

function safeReaddir(d: string): string[] {
  try {
    return fs.readdirSync(d);
  } catch {
    return [];
  }
}

/** mkdir -p one level at a time (a recursive mkdir reports ENOENT where the real cause is EROFS or EACCES). */
async function mkdirs(dir: string, mode: number): Promise<void> {
  const parent = path.dirname(dir);
  if (parent !== dir && !fs.existsSync(parent)) await mkdirs(parent, 0o755);
  try {
    await fsp.mkdir(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

async function openFresh(file: string): Promise<fs.promises.FileHandle> {
  try {
    return await fsp.open(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // An empty leftover: replace it.
    await fsp.rm(file, { force: true });
    return fsp.open(file, 'wx', 0o600);
  }
}

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of fs.createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
}

async function fsyncDir(dir: string): Promise<void> {
  const fd = await fsp.open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

async function openFile(spec: ImageSpec, file: string, from: number): Promise<Source> {
  let st: fs.Stats;
  try {
    st = await fsp.stat(file);
  } catch (err) {
    throw new ImageError('download-failed', `cannot read image "${spec.name}" at ${file} (${describe(err)})`, {
      cause: err,
    });
  }
  if (!st.isFile()) throw new ImageError('download-failed', `image "${spec.name}": ${file} is not a regular file`);
  const start = from > 0 && from <= st.size ? from : 0;
  return { stream: fs.createReadStream(file, { start }), offset: start, total: st.size };
}
