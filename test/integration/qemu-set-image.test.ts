/**
 * `magrathea domain set-image` with real QEMU guests (TCG) and a real magrathead: the guest
 * prints its root disk's marker (the first line of the base image), so a switch from image
 * alpha to image beta shows in the serial console, and the published image (GetNode) follows.
 * Bad input (unknown image, the same image, a domain without an image) changes nothing; a
 * running job drains the domain (no start meanwhile) unless --now ends it as lost; a daemon
 * killed (-9) in the middle of a switch comes back up on the new image.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { NodeServiceClient } from '@magrathea/common';
import { serveImages } from '../helpers/image-server';
import type { Served } from '../helpers/image-server';
import { GUEST, hasDiskGuest, rawImage, serialOf, killGuests } from '../helpers/guest';
import { cli, getNode, nodeClient, spawnDaemon, tmpDir, unary, until as waitUntil } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const guestHasDisks = hasDiskGuest();
if (!guestHasDisks) {
  const why = 'qemu-system-x86_64, genisoimage or the test guest with disk support is missing (run sh test/setup.sh)';
  if (process.env.MAGRATHEA_REQUIRE_QEMU === '1') throw new Error(`QEMU tests required but ${why}`);
  process.stdout.write(`qemu set-image tests skipped: ${why}\n`);
}
const maybe = guestHasDisks ? describe : describe.skip;
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

const reasonOf = (err: unknown): string =>
  String((err as grpc.ServiceError).metadata?.get('magrathea-reason')[0] ?? '');

maybe('magrathea domain set-image (real QEMU guests under TCG)', () => {
  let dir: string;
  let stateDir: string;
  let config: string;
  let srv: Served;
  let d: DaemonProcess;
  let c: NodeServiceClient;
  const alpha = rawImage('image-alpha');
  const beta = rawImage('image-beta');
  const serial = (dom: string): string => serialOf(path.join(dir, 'run'), dom);
  /** The base markers the guest printed, one per boot. */
  const bases = (dom: string): string[] =>
    (serial(dom).match(/^MAGRATHEA-DISK base=MARKER (\S+)/gm) ?? []).map((l) => l.split('MARKER ')[1] ?? '');
  const domainOf = async (name: string) => (await getNode(c)).domains.find((x) => x.name === name)!;
  const until = (pred: () => Promise<boolean> | boolean, what: string, ms = 180_000) => waitUntil(pred, what, ms);
  const start = async (): Promise<void> => {
    d = await spawnDaemon({ stateDir, config });
    c = nodeClient(d.admin);
  };

  beforeAll(async () => {
    dir = tmpDir('mg-si18-');
    stateDir = path.join(dir, 'state');
    srv = await serveImages();
    srv.files.set('/alpha.img', alpha);
    srv.files.set('/beta.img', beta);
    const vm = `vm: { kernel: ${GUEST}/vmlinux, initrd: ${GUEST}/initrd.cpio.gz, memoryMiB: 128, readyLine: MAGRATHEA-GUEST-READY }`;
    config = `
node: { name: n18 }
driver:
  kind: qemu
  qemu: { accel: tcg, runDir: ${path.join(dir, 'run')}, cgroup: false, powerdownTimeoutMs: 2000 }
images:
  - { name: alpha, url: '${srv.url('/alpha.img')}', sha256: ${sha(alpha)}, format: raw }
  - { name: beta, url: '${srv.url('/beta.img')}', sha256: ${sha(beta)}, format: raw }
imageCache: { maxMiB: 64 }
reconcileCron: "*/2 * * * * *"
domains:
  - { name: s1, image: alpha, preemption: pause, ${vm} }
  - { name: plain, autostart: false, preemption: pause, ${vm} }
`;
    await start();
    await until(async () => (await domainOf('s1')).state === 'free', 's1 booted');
  }, 240_000);

  afterAll(async () => {
    c?.close();
    await d?.stop();
    killGuests(path.join(dir, 'run'), ['s1', 'plain']);
    await srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('bad input is refused with the reason and changes nothing', async () => {
    const before = await getNode(c);
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ domain: 's1', image: 'gamma' }, 'unknown-image', /no image named "gamma"/],
      [{ domain: 's1', image: 'alpha' }, 'same-image', /runs image alpha already/],
      [{ domain: 'plain', image: 'beta' }, 'not-image-backed', /runs no catalogue image/],
    ];
    for (const [req, reason, message] of cases) {
      const err = await unary(c, c.SetImage, req).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).not.toBeNull();
      expect(reasonOf(err)).toBe(reason);
      expect((err as Error).message).toMatch(message);
    }
    const bad = await unary(c, c.SetImage, { domain: 's1', image: 'no/such' }).catch((e: unknown) => e);
    expect((bad as grpc.ServiceError).code).toBe(3); // INVALID_ARGUMENT
    // Operators only: plaintext TCP serves reads.
    const tcp = nodeClient(d.addr);
    try {
      const denied = await unary(tcp, tcp.SetImage, { domain: 's1', image: 'beta' }).catch((e: unknown) => e);
      expect((denied as grpc.ServiceError).code).toBe(7); // PERMISSION_DENIED
    } finally {
      tcp.close();
    }
    const after = await getNode(c);
    expect(after.generation).toBe(before.generation);
    expect(after.domains.find((x) => x.name === 's1')).toMatchObject({ image: 'alpha', pending_image: '' });
    // Nothing was downloaded for the refused requests.
    expect(srv.requests.filter((r) => r.path === '/beta.img')).toHaveLength(0);
  });

  test('a running job drains the domain (no start), and its end switches alpha → beta', async () => {
    expect(bases('s1')).toEqual(['image-alpha']);
    await unary(c, c.StartJob, { domain: 's1', job_id: '1.pbs18', preemptible: false, cpus: 1 }, 30_000);
    const r = await unary(c, c.SetImage, { domain: 's1', image: 'beta' }, 60_000);
    expect(r).toMatchObject({ waiting_for_jobs: true, lost_jobs: [] });
    expect(await domainOf('s1')).toMatchObject({ image: 'alpha', pending_image: 'beta', state: 'running' });
    const refused = await unary(c, c.StartJob, { domain: 's1', job_id: '2.pbs18', cpus: 1 }).catch((e: unknown) => e);
    expect(reasonOf(refused)).toBe('switching-image');
    // A second switch to another image while one is pending is refused.
    expect(reasonOf(await unary(c, c.SetImage, { domain: 's1', image: 'alpha' }).catch((e: unknown) => e))).toBe(
      'switching-image',
    );
    await unary(c, c.EndJob, { domain: 's1', job_id: '1.pbs18' }, 30_000);
    await until(async () => (await domainOf('s1')).state === 'free', 's1 up on beta');
    expect(await domainOf('s1')).toMatchObject({ image: 'beta', pending_image: '' });
    expect(bases('s1')).toEqual(['image-alpha', 'image-beta']);
    const info = JSON.parse(
      execFileSync('qemu-img', ['info', '-U', '--output=json', path.join(stateDir, 'disks', 's1', 'root.qcow2')], {
        encoding: 'utf8',
      }),
    ) as { 'backing-filename': string };
    expect(info['backing-filename']).toBe(path.join(stateDir, 'images', 'blobs', sha(beta)));
  }, 300_000);

  test('the CLI: flag errors, and --now --wait ends the job (lost) and waits for the new image', async () => {
    const node = ['--node', d.admin];
    const usage = await cli(['domain', 'set-image', 's1', ...node]);
    expect(usage.code).toBe(2);
    const badName = await cli(['domain', 'set-image', 's1', 'bad/name', ...node]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toMatch(/not an image name/);
    const badTimeout = await cli(['domain', 'set-image', 's1', 'alpha', '--wait', '--wait-timeout', 'soon', ...node]);
    expect(badTimeout.code).toBe(2);
    const unknown = await cli(['domain', 'set-image', 's1', 'gamma', '--json', ...node]);
    expect(unknown.code).toBe(3);
    expect(unknown.stdout).toMatch(/no image named/);
    expect((await domainOf('s1')).image).toBe('beta');

    await unary(c, c.StartJob, { domain: 's1', job_id: '3.pbs18', preemptible: false, cpus: 1 }, 30_000);
    const t0 = performance.now();
    const r = await cli(['domain', 'set-image', 's1', 'alpha', '--now', '--wait', '--json', ...node], 300_000);
    const seconds = (performance.now() - t0) / 1000;
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ domain: 's1', image: 'alpha', lostJobs: ['3.pbs18'], state: 'free' });
    process.stdout.write(`set-image --now --wait (shutdown, overlay, TCG boot): ${seconds.toFixed(1)} s\n`);
    expect(await domainOf('s1')).toMatchObject({ image: 'alpha', pending_image: '', job_count: 0 });
    expect(bases('s1')).toEqual(['image-alpha', 'image-beta', 'image-alpha']);
    expect(d.logs.some((l) => l.msg === 'job lost: set-image --now ended it' && l.jobId === '3.pbs18')).toBe(true);
  }, 330_000);

  test('a daemon killed (-9) in the middle of a switch comes back up on the new image', async () => {
    await unary(c, c.SetImage, { domain: 's1', image: 'beta' }, 60_000);
    await until(
      () => d.logs.some((l) => l.msg === 'switching domain image' && l.image === 'beta'),
      'switch begun',
      30_000,
    );
    c.close();
    await d.kill9();
    await start();
    await until(async () => {
      const s1 = await domainOf('s1');
      return s1.state === 'free' && s1.pending_image === '';
    }, 's1 up again after the restart');
    expect((await domainOf('s1')).image).toBe('beta');
    expect(bases('s1').at(-1)).toBe('image-beta');
  }, 300_000);
});
