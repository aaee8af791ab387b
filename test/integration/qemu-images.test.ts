/**
 * Image-based domains on the qemu driver with real QEMU guests (TCG) and a real magrathead:
 * images served by an HTTP server in this test, cached on the node, each domain booting a qcow2
 * overlay on the shared base and a NoCloud context disk. The test guest (test/guest) prints
 * what it read from its context disk (host name, the digest and mode of its token, its host
 * certificate) and its root disk (the base's marker, the marker an earlier boot wrote).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import { GUEST, hasDiskGuest, rawImage, serialOf, killGuests } from '../helpers/guest';
import { serveImages } from '../helpers/image-server';
import type { Served } from '../helpers/image-server';
import {
  cli,
  getNode,
  nodeClient,
  spawnDaemon,
  statesOf,
  tmpDir,
  unary,
  until as waitUntil,
} from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const guestHasDisks = hasDiskGuest();
if (!guestHasDisks) {
  const why = 'qemu-system-x86_64, genisoimage or the test guest with disk support is missing (run sh test/setup.sh)';
  if (process.env.MAGRATHEA_REQUIRE_QEMU === '1') throw new Error(`QEMU tests required but ${why}`);
  process.stdout.write(`qemu image tests skipped: ${why}\n`);
}
const maybe = guestHasDisks ? describe : describe.skip;
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

maybe('image-based domains (real QEMU guests under TCG)', () => {
  let dir: string;
  let stateDir: string;
  let srv: Served;
  let d: DaemonProcess;
  let c: NodeServiceClient;
  const tokens: Record<string, string> = { a1: 'token-of-a1-0123456789', a2: 'token-of-a2-0123456789' };
  const alpha = rawImage('image-alpha');
  const disksDir = () => path.join(stateDir, 'disks');
  const serial = (dom: string): string => serialOf(path.join(dir, 'run'), dom);
  const lines = (dom: string, tag: string): string[] => serial(dom).match(new RegExp(`^${tag} .*$`, 'gm')) ?? [];
  const domainOf = async (name: string) => (await getNode(c)).domains.find((x) => x.name === name)!;
  const until = (pred: () => Promise<boolean> | boolean, what: string, ms = 120_000) => waitUntil(pred, what, ms);

  beforeAll(async () => {
    dir = tmpDir('mg-qi-');
    stateDir = path.join(dir, 'state');
    srv = await serveImages();
    srv.files.set('/alpha.img', alpha);
    // The catalogue says the digest of one image, the server sends another.
    srv.files.set('/tampered.img', rawImage('image-tampered'));
    const pki = path.join(dir, 'pki');
    expect((await cli(['pki', 'init', '--out', pki, '--node', 'n1'])).code).toBe(0);
    for (const [dom, t] of Object.entries(tokens)) fs.writeFileSync(path.join(dir, `${dom}.token`), t, { mode: 0o600 });
    const vm = `vm: { kernel: ${GUEST}/vmlinux, initrd: ${GUEST}/initrd.cpio.gz, memoryMiB: 128, readyLine: MAGRATHEA-GUEST-READY }`;
    d = await spawnDaemon({
      stateDir,
      config: `
node: { name: n1 }
driver:
  kind: qemu
  qemu: { accel: tcg, runDir: ${path.join(dir, 'run')}, cgroup: false, powerdownTimeoutMs: 2000 }
images:
  - { name: alpha, url: '${srv.url('/alpha.img')}', sha256: ${sha(alpha)}, format: raw }
  - { name: tampered, url: '${srv.url('/tampered.img')}', sha256: ${sha(rawImage('image-intended'))}, format: raw }
imageCache: { maxMiB: 64 }
context: { pkiDir: ${pki}, hookApiAddress: '10.0.2.2:5679' }
hookApi: { listen: "127.0.0.1:0" }
reconcileCron: "*/2 * * * * *"
domains:
  - { name: a1, image: alpha, hostName: a1.test, preemption: pause, tokenFile: ${dir}/a1.token, ${vm} }
  - { name: a2, image: alpha, preemption: pause, tokenFile: ${dir}/a2.token, ${vm} }
  - { name: bad, image: tampered, preemption: pause, ${vm} }
`,
    });
    c = nodeClient(d.admin);
    await until(async () => {
      const s = statesOf(await getNode(c));
      return s.a1 === 'free' && s.a2 === 'free' && s.bad?.startsWith('down') === true;
    }, 'a1 and a2 booted, bad down').catch(async (err: Error) => {
      const seen = (await getNode(c)).domains.map((x) => `${x.name}: ${x.state} ${x.down_reason}`);
      throw new Error(`${err.message}; domains: ${seen.join('; ')}`);
    });
  }, 240_000);

  afterAll(async () => {
    c?.close();
    await d?.stop();
    killGuests(path.join(dir, 'run'), ['a1', 'a2', 'bad']);
    await srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('two domains on one image: one download, one shared base that is never written', () => {
    expect(srv.requests.filter((r) => r.path === '/alpha.img')).toHaveLength(1);
    const blob = path.join(stateDir, 'images', 'blobs', sha(alpha));
    expect(fs.statSync(blob).mode & 0o777).toBe(0o444);
    for (const dom of ['a1', 'a2']) {
      const info = JSON.parse(
        execFileSync('qemu-img', ['info', '-U', '--output=json', path.join(disksDir(), dom, 'root.qcow2')], {
          encoding: 'utf8',
        }),
      ) as { format: string; 'backing-filename': string; 'backing-filename-format': string };
      expect(info).toEqual(
        expect.objectContaining({ format: 'qcow2', 'backing-filename': blob, 'backing-filename-format': 'raw' }),
      );
      expect(lines(dom, 'MAGRATHEA-DISK')[0]).toBe('MAGRATHEA-DISK base=MARKER image-alpha previous=');
      expect(lines(dom, 'MAGRATHEA-DISK')[1]).toMatch(/^MAGRATHEA-DISK wrote=written-at-boot-/);
    }
    // Both guests wrote into their overlays; the base is unchanged.
    expect(sha(fs.readFileSync(blob))).toBe(sha(alpha));
  });

  test('each guest reads its own context disk: host name, its token (root only), its host certificate', () => {
    const a1 = lines('a1', 'MAGRATHEA-CONTEXT')[0] ?? '';
    expect(a1).toContain('hostname=a1.test ');
    expect(a1).toContain(`token-sha256=${sha(tokens.a1!)} `);
    expect(a1).toContain('token-mode=400:0:0 ');
    expect(a1).toContain('key-mode=400 ');
    expect(a1).toContain('hook-api=http://10.0.2.2:5679 ');
    expect(a1).toMatch(/cert=.*a1\.test/);
    const a2 = lines('a2', 'MAGRATHEA-CONTEXT')[0] ?? '';
    expect(a2).toContain('hostname=n1-a2 ');
    expect(a2).toContain(`token-sha256=${sha(tokens.a2!)} `);
    // The certificate on the disk: issued for the host name by the site CA.
    const iso = path.join(disksDir(), 'a1', 'context.iso');
    const pem = execFileSync('isoinfo', ['-R', '-i', iso, '-x', '/magrathea/host.pem']);
    const certFile = path.join(dir, 'a1-host.pem');
    fs.writeFileSync(certFile, pem);
    expect(execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-subject'], { encoding: 'utf8' })).toMatch(
      /subject=CN ?= ?a1\.test/,
    );
    expect(
      execFileSync('openssl', ['verify', '-CAfile', path.join(dir, 'pki', 'ca.pem'), certFile], { encoding: 'utf8' }),
    ).toContain(': OK');
    // The tree with the secrets is not left on the host; only the ISO.
    expect(fs.readdirSync(path.join(disksDir(), 'a1')).sort()).toEqual(['context.iso', 'root.qcow2']);
  });

  test('a tampered image leaves its domain down with the reason, and nothing is cached', async () => {
    const bad = await domainOf('bad');
    expect(bad.state).toMatch(/^down/);
    expect(bad.down_reason).toContain('sha256');
    expect(bad.down_reason).toContain('nothing was cached');
    expect(fs.readdirSync(path.join(stateDir, 'images', 'blobs'))).toEqual([sha(alpha)]);
    expect(fs.readdirSync(path.join(stateDir, 'images', 'partial'))).toEqual([]);
  });

  test('the overlay keeps what the guest wrote across a reboot', async () => {
    const wrote = (lines('a1', 'MAGRATHEA-DISK')[1] ?? '').replace('MAGRATHEA-DISK wrote=', '');
    expect(wrote).toMatch(/^written-at-boot-/);
    await unary(c, c.DomainAction, { domain: 'a1', action: 'reboot', reason: 'test' }, 60_000);
    await until(() => lines('a1', 'MAGRATHEA-DISK').length >= 4, 'a1 booted again');
    expect(lines('a1', 'MAGRATHEA-DISK')[2]).toBe(`MAGRATHEA-DISK base=MARKER image-alpha previous=${wrote}`);
    await until(async () => (await domainOf('a1')).state === 'free', 'a1 free again');
    // A reboot does not download again.
    expect(srv.requests.filter((r) => r.path === '/alpha.img')).toHaveLength(1);
  });
});
