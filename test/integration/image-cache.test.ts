/**
 * The image cache against a real HTTP server in this test (node:http on 127.0.0.1:0) that
 * counts requests and records their Range headers: one download for concurrent users, a
 * tampered image refused with nothing cached, a download killed with SIGKILL in a child process
 * resumed with a Range request, LRU eviction that spares leased images, and bad input (unknown
 * image, bad URL, unreachable server, HTTP errors, a read-only cache directory, a full disk on a
 * small tmpfs).
 */
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ImageCache, ImageError } from '../../packages/node-daemon/src/images/image-cache';
import type { ImageSpec } from '../../packages/node-daemon/src/images/image-cache';
import { serveImages } from '../helpers/image-server';
import type { Served } from '../helpers/image-server';
import { ROOT, tmpDir, until } from '../helpers/processes';

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let srv: Served;
let dir: string;
const caches: ImageCache[] = [];
beforeEach(async () => {
  srv = await serveImages();
  dir = tmpDir('mg-images-');
});
afterEach(async () => {
  await srv.close();
  caches.length = 0;
  fs.rmSync(dir, { recursive: true, force: true });
});

function image(name: string, size: number): { spec: ImageSpec; data: Buffer } {
  const data = randomBytes(size);
  srv.files.set(`/${name}.img`, data);
  return { data, spec: { name, url: srv.url(`/${name}.img`), sha256: sha(data), format: 'raw' } };
}

async function cacheOf(images: ImageSpec[], maxBytes = 1 << 30, cacheDir = dir): Promise<ImageCache> {
  const c = new ImageCache({ dir: cacheDir, maxBytes, images, idleTimeoutMs: 10_000 });
  await c.open();
  caches.push(c);
  return c;
}

async function imageError(p: Promise<unknown>): Promise<ImageError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ImageError) return err;
    throw err;
  }
  throw new Error('expected an ImageError');
}

const blobs = (d = dir): string[] => fs.readdirSync(path.join(d, 'blobs'));
const partials = (d = dir): string[] => fs.readdirSync(path.join(d, 'partial'));

test('two domains asking for one image cause one download; the base is read-only and verified', async () => {
  const a = image('alpha', 3 * MiB);
  const cache = await cacheOf([a.spec]);
  const [l1, l2] = await Promise.all([cache.acquire('alpha'), cache.acquire('alpha')]);
  expect(srv.requests).toHaveLength(1);
  expect(l1.file).toBe(l2.file);
  expect(sha(fs.readFileSync(l1.file))).toBe(a.spec.sha256);
  expect(fs.statSync(l1.file).mode & 0o777).toBe(0o444);
  expect(cache.list()).toEqual([expect.objectContaining({ name: 'alpha', state: 'cached', bytes: 3 * MiB, users: 2 })]);
  // A later user finds it cached: no request at all.
  const l3 = await cache.acquire('alpha');
  expect(srv.requests).toHaveLength(1);
  l1.release();
  l2.release();
  l3.release();
  expect(cache.list()[0]?.users).toBe(0);
});

test('a tampered image is refused with the reason, and nothing is cached', async () => {
  const a = image('alpha', MiB);
  const bad = Buffer.from(a.data);
  bad[12345] = (bad[12345] ?? 0) ^ 0xff;
  srv.files.set('/alpha.img', bad);
  const cache = await cacheOf([a.spec]);
  const err = await imageError(cache.acquire('alpha'));
  expect(err.problem).toBe('digest-mismatch');
  expect(err.message).toContain(sha(bad));
  expect(err.message).toContain(a.spec.sha256);
  expect(blobs()).toEqual([]);
  expect(partials()).toEqual([]);
  expect(cache.list()[0]).toEqual(expect.objectContaining({ state: 'absent', users: 0 }));
});

test('a download killed with SIGKILL resumes where it stopped, with a Range request', async () => {
  const a = image('alpha', 8 * MiB);
  srv.delayMs = 5;
  const child = spawn(
    process.execPath,
    [path.join(ROOT, 'test/fixtures/pull-image.js'), dir, 'alpha', a.spec.url, a.spec.sha256],
    { stdio: 'ignore' },
  );
  const part = path.join(dir, 'partial', `${a.spec.sha256}.part`);
  try {
    await until(
      () => (fs.existsSync(part) ? fs.statSync(part).size >= MiB : false),
      'a partial download of 1 MiB',
      60_000,
    );
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
  }
  const have = fs.statSync(part).size;
  expect(have).toBeLessThan(8 * MiB);
  srv.delayMs = 0;
  const cache = await cacheOf([a.spec]);
  expect(cache.list()[0]).toEqual(expect.objectContaining({ state: 'partial', bytes: have }));
  const r = await cache.pull('alpha');
  expect(r).toEqual({ resumedFrom: have, downloadedBytes: 8 * MiB - have });
  expect(srv.requests.map((q) => q.range)).toEqual([undefined, `bytes=${have}-`]);
  expect(blobs()).toEqual([a.spec.sha256]);
  expect(sha(fs.readFileSync(path.join(dir, 'blobs', a.spec.sha256)))).toBe(a.spec.sha256);
  expect(partials()).toEqual([]);
});

test('a server that ignores the Range header gets the whole file again, still verified', async () => {
  const a = image('alpha', 2 * MiB);
  fs.mkdirSync(path.join(dir, 'partial'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'partial', `${a.spec.sha256}.part`), a.data.subarray(0, MiB));
  srv.ignoreRange = true;
  const cache = await cacheOf([a.spec]);
  const r = await cache.pull('alpha');
  expect(r).toEqual({ resumedFrom: 0, downloadedBytes: 2 * MiB });
  expect(srv.requests[0]?.range).toBe(`bytes=${MiB}-`);
  expect(sha(fs.readFileSync(path.join(dir, 'blobs', a.spec.sha256)))).toBe(a.spec.sha256);
});

test('eviction above the limit takes the least recently used image and never one in use', async () => {
  const a = image('alpha', MiB);
  const b = image('beta', MiB);
  const c = image('gamma', MiB);
  const cache = await cacheOf([a.spec, b.spec, c.spec], 2 * MiB + MiB / 2);
  const la = await cache.acquire('alpha');
  const lb = await cache.acquire('beta');
  lb.release();
  // alpha is older but in use; beta is the least recently used one nobody holds.
  fs.utimesSync(la.file, new Date(1000), new Date(1000));
  const lc = await cache.acquire('gamma');
  expect(blobs().sort()).toEqual([a.spec.sha256, c.spec.sha256].sort());
  expect(cache.list().map((e) => [e.name, e.state])).toEqual([
    ['alpha', 'cached'],
    ['beta', 'absent'],
    ['gamma', 'cached'],
  ]);
  // Both held: over the limit is allowed rather than removing an image in use.
  await cache.acquire('beta');
  expect(blobs()).toHaveLength(3);
  expect(cache.usedBytes()).toBe(3 * MiB);
  // Released, alpha and gamma may go; alpha was used less recently than gamma.
  la.release();
  await new Promise((r) => setTimeout(r, 20));
  lc.release();
  await cache.evict();
  expect(blobs().sort()).toEqual([b.spec.sha256, c.spec.sha256].sort());
});

test('rm refuses an image in use and removes one that is not', async () => {
  const a = image('alpha', MiB);
  const cache = await cacheOf([a.spec]);
  const l = await cache.acquire('alpha');
  const err = await imageError(cache.remove('alpha'));
  expect(err.problem).toBe('in-use');
  expect(blobs()).toEqual([a.spec.sha256]);
  l.release();
  expect(await cache.remove('alpha')).toBe(true);
  expect(blobs()).toEqual([]);
  expect(await cache.remove('alpha')).toBe(false);
});

test('a local path is a source too', async () => {
  const data = randomBytes(MiB);
  const src = path.join(dir, 'local.img');
  fs.writeFileSync(src, data);
  const cache = await cacheOf([{ name: 'local', url: src, sha256: sha(data), format: 'raw' }]);
  const l = await cache.acquire('local');
  expect(fs.readFileSync(l.file).equals(data)).toBe(true);
});

describe('bad input gets a clear error and changes nothing', () => {
  test('an unknown image names the known ones', async () => {
    const a = image('alpha', 1024);
    const cache = await cacheOf([a.spec]);
    const err = await imageError(cache.acquire('nope'));
    expect(err.problem).toBe('unknown-image');
    expect(err.message).toBe('no image named "nope" in the catalogue (known: alpha)');
    expect(srv.requests).toHaveLength(0);
  });

  test('a URL of another scheme, an unreachable server and an HTTP error', async () => {
    const cache = await cacheOf([
      { name: 'ftp', url: 'ftp://example.org/x.img', sha256: '0'.repeat(64), format: 'raw' },
      { name: 'closed', url: 'http://127.0.0.1:1/x.img', sha256: '0'.repeat(64), format: 'raw' },
      { name: 'missing', url: srv.url('/missing.img'), sha256: '0'.repeat(64), format: 'raw' },
      { name: 'nofile', url: path.join(dir, 'does-not-exist.img'), sha256: '0'.repeat(64), format: 'raw' },
    ]);
    expect((await imageError(cache.pull('ftp'))).message).toContain('only http, https and file URLs are supported');
    const closed = await imageError(cache.pull('closed'));
    expect(closed.problem).toBe('download-failed');
    expect(closed.message).toContain('ECONNREFUSED');
    const missing = await imageError(cache.pull('missing'));
    expect(missing.message).toContain('HTTP 404');
    expect((await imageError(cache.pull('nofile'))).message).toContain('ENOENT');
    expect(blobs()).toEqual([]);
    expect(partials()).toEqual([]);
  });

  test('an image larger than the cache limit is refused before it is written', async () => {
    const a = image('alpha', 2 * MiB);
    const cache = await cacheOf([a.spec], MiB);
    const err = await imageError(cache.pull('alpha'));
    expect(err.problem).toBe('too-large');
    expect(partials()).toEqual([]);
  });

  const asRoot = process.getuid?.() === 0 ? test : test.skip;
  asRoot('a cache directory that cannot be written (a read-only mount)', async () => {
    const mnt = path.join(dir, 'ro');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', mnt]);
    try {
      const cache = new ImageCache({ dir: path.join(mnt, 'cache'), maxBytes: MiB, images: [], idleTimeoutMs: 1000 });
      const err = await imageError(cache.open());
      expect(err.problem).toBe('cache-dir');
      expect(err.message).toContain('EROFS');
      expect(err.message).toContain(path.join(mnt, 'cache'));
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  asRoot('no space left: a clear error, the partial file removed', async () => {
    const mnt = path.join(dir, 'small');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    try {
      const a = image('alpha', 3 * MiB);
      const cache = await cacheOf([a.spec], 1 << 30, path.join(mnt, 'cache'));
      const err = await imageError(cache.pull('alpha'));
      expect(err.problem).toBe('no-space');
      expect(err.message).toContain('ENOSPC');
      expect(partials(path.join(mnt, 'cache'))).toEqual([]);
      expect(blobs(path.join(mnt, 'cache'))).toEqual([]);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
