/**
 * `magrathea image list|pull|rm` and the IMAGE column of `status`, against a real magrathead
 * (child process) whose catalogue is served by an HTTP server in this test.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { serveImages } from '../helpers/image-server';
import type { Served } from '../helpers/image-server';
import { cli, spawnDaemon, tmpDir } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('magrathea image', () => {
  let dir: string;
  let srv: Served;
  let d: DaemonProcess;
  const alpha = randomBytes(3 * 1024 * 1024);
  beforeAll(async () => {
    dir = tmpDir('mg-icli-');
    srv = await serveImages();
    srv.files.set('/alpha.img', alpha);
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `
images:
  - { name: alpha, url: '${srv.url('/alpha.img')}', sha256: ${sha(alpha)}, format: raw }
  - { name: gone, url: '${srv.url('/gone.img')}', sha256: '${'0'.repeat(64)}' }
imageCache: { maxMiB: 16 }
domains:
  - { name: meta, image: alpha }
  - { name: priv, class: priority }
`,
    });
  }, 60_000);
  afterAll(async () => {
    await d?.stop();
    await srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('list, pull (once), list again, rm', async () => {
    const before = await cli(['image', 'list', '--node', d.addr]);
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(/^IMAGE +FORMAT +STATE +SIZE +USERS +SHA256 +URL$/m);
    expect(before.stdout).toMatch(/^alpha +raw +absent +0B +0 /m);
    expect(before.stdout).toContain('cache: 0B of 16M');

    const pulled = await cli(['image', 'pull', 'alpha', '--node', d.admin]);
    expect(pulled).toEqual(expect.objectContaining({ code: 0, stdout: 'alpha: downloaded 3M, verified\n' }));
    const again = await cli(['image', 'pull', 'alpha', '--node', d.admin]);
    expect(again.stdout).toBe('alpha: cached\n');
    expect(srv.requests.filter((r) => r.path === '/alpha.img')).toHaveLength(1);

    const listed = await cli(['image', 'list', '--json', '--node', d.addr]);
    const j = JSON.parse(listed.stdout) as {
      images: { name: string; state: string; bytes: number }[];
      used_bytes: number;
    };
    expect(j.images.find((i) => i.name === 'alpha')).toEqual(
      expect.objectContaining({ state: 'cached', bytes: alpha.length }),
    );
    expect(j.used_bytes).toBe(alpha.length);

    expect((await cli(['image', 'rm', 'alpha', '--node', d.admin])).stdout).toBe('alpha: removed\n');
    expect((await cli(['image', 'rm', 'alpha', '--node', d.admin])).stdout).toBe('alpha: not in the cache\n');
  });

  test('status has an IMAGE column', async () => {
    const r = await cli(['status', '--node', d.addr]);
    expect(r.stdout).toMatch(/^DOMAIN +CLASS +IMAGE +STATE/m);
    expect(r.stdout).toMatch(/^meta +normal +alpha +/m);
    expect(r.stdout).toMatch(/^priv +priority +- +/m);
  });

  test('bad input: an unknown image, a failing download, a bad name, a write over plaintext TCP', async () => {
    const unknown = await cli(['image', 'pull', 'nope', '--node', d.admin]);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toContain('no image named "nope" in the catalogue (known: alpha, gone)');
    const gone = await cli(['image', 'pull', 'gone', '--node', d.admin]);
    expect(gone.code).toBe(5);
    expect(gone.stderr).toContain('HTTP 404');
    const bad = await cli(['image', 'rm', '../x', '--node', d.admin]);
    expect(bad.code).toBe(6);
    expect(bad.stderr).toContain('"../x" is not an image name');
    const denied = await cli(['image', 'pull', 'alpha', '--node', d.addr]);
    expect(denied.code).toBe(7);
    expect(fs.readdirSync(path.join(dir, 'state', 'images', 'blobs'))).toEqual([]);
  });
});
