/**
 * Wake on demand with a real QEMU guest (TCG) and a real magrathead: a wakeOnDemand domain stays
 * down at start (no autostart), boots when asked (DomainAction boot, what the filter sends for a
 * queued job of its image), takes a job once up, and with no job for idleShutdownMs goes down
 * again: its QEMU process ends.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DomainMessage, NodeServiceClient } from '@magrathea/common';
import { serveImages } from '../helpers/image-server';
import type { Served } from '../helpers/image-server';
import { GUEST, hasQemuGuest } from '../helpers/guest';
import { cli, getNode, nodeClient, spawnDaemon, tmpDir, unary, until } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const ready = hasQemuGuest();
if (!ready) {
  const why = 'qemu-system-x86_64 or the test guest is missing (run sh test/setup.sh)';
  if (process.env.MAGRATHEA_REQUIRE_QEMU === '1') throw new Error(`QEMU tests required but ${why}`);
  process.stdout.write(`qemu wake tests skipped: ${why}\n`);
}
const maybe = ready ? describe : describe.skip;
const IDLE_MS = 4000;

const alive = (pidFile: string): boolean => {
  try {
    process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 0);
    return true;
  } catch {
    return false;
  }
};

maybe('wake on demand (real QEMU guest under TCG)', () => {
  let dir: string;
  let srv: Served;
  let d: DaemonProcess;
  let c: NodeServiceClient;
  const img = Buffer.alloc(4 * 1024 * 1024);
  img.write('MARKER wake\n');
  const domainOf = async (): Promise<DomainMessage> => (await getNode(c)).domains.find((x) => x.name === 'wk')!;

  beforeAll(async () => {
    dir = tmpDir('mg-wake19-');
    srv = await serveImages();
    srv.files.set('/w.img', img);
    const vm = `vm: { kernel: ${GUEST}/vmlinux, initrd: ${GUEST}/initrd.cpio.gz, memoryMiB: 128, readyLine: MAGRATHEA-GUEST-READY }`;
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `
node: { name: n1 }
driver:
  kind: qemu
  qemu: { accel: tcg, runDir: ${path.join(dir, 'run')}, cgroup: false, powerdownTimeoutMs: 2000, bootTimeoutMs: 180000 }
images:
  - { name: wimg, url: '${srv.url('/w.img')}', sha256: ${createHash('sha256').update(img).digest('hex')}, format: raw }
domains:
  - { name: wk, image: wimg, wakeOnDemand: true, idleShutdownMs: ${IDLE_MS}, autostart: false, preemption: pause, ${vm} }
`,
    });
    c = nodeClient(d.admin);
  }, 120_000);

  afterAll(async () => {
    c?.close();
    await d?.stop();
    try {
      process.kill(Number(fs.readFileSync(path.join(dir, 'run', 'wk.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // not running
    }
    await srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('down until woken; boots, runs a job, and goes down after idleShutdownMs with no job', async () => {
    const d0 = await domainOf();
    expect([d0.stored_state, d0.wake_on_demand, d0.idle_shutdown_ms]).toEqual(['down-bootable', true, String(IDLE_MS)]);
    const woke = await unary<object, { state: string }>(c, c.DomainAction, {
      domain: 'wk',
      action: 'boot',
      reason: 'wake on demand: job 1.s',
    });
    expect(woke.state).toBe('booting');
    await until(async () => (await domainOf()).state === 'free', 'wk up', 200_000, 200);
    const up = await domainOf();
    expect(up.last_boot?.policy).toBe('boot');
    expect(up.last_boot?.error).toBe('');
    expect(up.last_boot?.millis).toBeGreaterThan(0);
    const shown = await cli(['domain', 'show', 'wk', '--node', d.admin]);
    expect(shown.stdout).toMatch(/LastBoot=\d+ms Steps=boot:\d+ms/);
    expect(shown.stdout).toMatch(/WakeOnDemand=yes IdleShutdown=4000ms WakeBackoff=-/);
    const pidFile = path.join(dir, 'run', 'wk.pid');
    expect(alive(pidFile)).toBe(true);
    await unary(c, c.StartJob, { domain: 'wk', job_id: '1.s', preemptible: true, cpus: 1 });
    // With a job the domain stays up well past its idle time.
    await new Promise((r) => setTimeout(r, IDLE_MS + 2000));
    expect((await domainOf()).stored_state).toBe('running-preemptible');
    await unary(c, c.EndJob, { domain: 'wk', job_id: '1.s', exit_status: 0, has_exit_status: true });
    const ended = Date.now();
    await until(async () => (await domainOf()).stored_state === 'down-bootable', 'wk idle down', 60_000, 200);
    expect(Date.now() - ended).toBeGreaterThanOrEqual(IDLE_MS - 500);
    expect((await domainOf()).down_reason).toMatch(/^idle: no job for \d+ s \(idleShutdownMs 4000\)$/);
    await until(() => !alive(pidFile), 'the QEMU process gone', 30_000, 200);
  }, 400_000);
});
