/**
 * Per-job lifecycles (domains[].lifecycle) with real QEMU guests (TCG) and a real magrathead.
 * A "job" runs inside the guest through its guest agent: it prints the marker the previous job
 * left at sector 16 of the root disk (an overlay on a served image), writes its own, and ends
 * with an exit status. Under `revert` a job never sees the previous job's marker, under
 * `persistent` it does, under `reboot` it does not either; a failed job's overlay is kept and
 * listed (the oldest removed first); kill -9 of the daemon at random points of a revert
 * recovers to a clean domain and loses no job.
 *
 * MAGRATHEA_LIFECYCLE_JOBS (default 5; the figure is 30) sets the jobs per policy,
 * MAGRATHEA_LIFECYCLE_KILLS (default 3) the kill -9 rounds.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DomainMessage, NodeServiceClient } from '@magrathea/common';
import { GuestAgent } from '../../packages/node-daemon/src/hypervisor/guest-agent';
import { serveImages } from '../helpers/image-server';
import type { Served } from '../helpers/image-server';
import { GUEST, hasDiskGuest, killGuests } from '../helpers/guest';
import { cli, getNode, nodeClient, spawnDaemon, tmpDir, unary, until as waitUntil } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const ready = hasDiskGuest();
if (!ready) {
  const why = 'qemu-system-x86_64, genisoimage or the test guest with disk support is missing (run sh test/setup.sh)';
  if (process.env.MAGRATHEA_REQUIRE_QEMU === '1') throw new Error(`QEMU tests required but ${why}`);
  process.stdout.write(`qemu lifecycle tests skipped: ${why}\n`);
}
const maybe = ready ? describe : describe.skip;
const JOBS = Math.max(2, Number(process.env.MAGRATHEA_LIFECYCLE_JOBS ?? 5));
const KILLS = Math.max(1, Number(process.env.MAGRATHEA_LIFECYCLE_KILLS ?? 3));
const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * The job: finds the root disk by the base's marker, prints sector 16 as the disk has it, writes
 * its own marker there.
 */
const jobScript = (id: string, status: number): string =>
  [
    'root=',
    'for d in /dev/vd?; do [ "$(dd if=$d bs=512 count=1 2>/dev/null | head -c 6)" = MARKER ] && root=$d; done',
    '[ -n "$root" ] || { echo no-root; exit 99; }',
    // From the disk, not from the page cache (a restored guest's cache is the golden state's).
    'sync; echo 3 > /proc/sys/vm/drop_caches',
    'prev=$(dd if=$root bs=512 skip=16 count=1 2>/dev/null | tr -d "\\000" | head -1)',
    'echo "previous=$prev"',
    `printf 'job-%s\\n' '${id}' | dd of=$root bs=512 seek=16 conv=notrunc,fsync 2>/dev/null`,
    'sync',
    `exit ${status}`,
  ].join('\n');

maybe('per-job lifecycles (real QEMU guests under TCG)', () => {
  let dir: string;
  let stateDir: string;
  let config: string;
  let srv: Served;
  let d: DaemonProcess;
  let c: NodeServiceClient;
  const alpha = Buffer.alloc(4 * MiB);
  alpha.write('MARKER image-alpha\n');
  const until = (pred: () => Promise<boolean> | boolean, what: string, ms = 180_000) => waitUntil(pred, what, ms, 200);
  const domainOf = async (name: string): Promise<DomainMessage> =>
    (await getNode(c)).domains.find((x) => x.name === name)!;
  const free = (name: string, what: string) =>
    until(async () => (await domainOf(name)).state === 'free', what).catch(async (err: Error) => {
      const x = await domainOf(name);
      throw new Error(
        `${err.message}: ${name} is ${x.state} (${x.down_reason}); last reset ${JSON.stringify(x.last_reset)}`,
      );
    });

  /** Starts the job, runs it in the guest, ends it with its exit status; resolves with what it saw. */
  async function job(dom: string, id: string, status = 0): Promise<string> {
    await unary(c, c.StartJob, { domain: dom, job_id: id, preemptible: true, cpus: 1 });
    const agent = await GuestAgent.connect(path.join(dir, 'run', `${dom}.ga`), 60_000);
    let out: string;
    try {
      const r = await agent.exec(jobScript(id, status), 60_000);
      expect(r.exitCode).toBe(status);
      out = r.output;
    } finally {
      agent.close();
    }
    await unary(c, c.EndJob, { domain: dom, job_id: id, exit_status: status, has_exit_status: true });
    const m = /^previous=(.*)$/m.exec(out);
    if (!m) throw new Error(`job ${id} in ${dom} printed no marker: ${out}`);
    return m[1] ?? '';
  }

  beforeAll(async () => {
    dir = tmpDir('mg-lc-');
    stateDir = path.join(dir, 'state');
    srv = await serveImages();
    srv.files.set('/alpha.img', alpha);
    const vm = `vm: { kernel: ${GUEST}/vmlinux, initrd: ${GUEST}/initrd.cpio.gz, memoryMiB: 128, readyLine: MAGRATHEA-GUEST-READY, guestAgent: true }`;
    config = `
node: { name: n1 }
driver:
  kind: qemu
  qemu: { accel: tcg, runDir: ${path.join(dir, 'run')}, cgroup: false, powerdownTimeoutMs: 2000, bootTimeoutMs: 180000 }
images:
  - { name: alpha, url: '${srv.url('/alpha.img')}', sha256: ${sha(alpha)}, format: raw }
reconcileCron: "*/2 * * * * *"
domains:
  - { name: rv, image: alpha, lifecycle: revert, keepFailed: 2, preemption: pause, ${vm} }
  - { name: pe, image: alpha, lifecycle: persistent, preemption: pause, ${vm} }
  - { name: rb, image: alpha, lifecycle: reboot, preemption: pause, ${vm} }
`;
    d = await spawnDaemon({ stateDir, config });
    c = nodeClient(d.admin);
    for (const dom of ['rv', 'pe', 'rb']) await free(dom, `${dom} booted`);
  }, 400_000);

  afterAll(async () => {
    c?.close();
    await d?.stop();
    killGuests(path.join(dir, 'run'), ['rv', 'pe', 'rb']);
    await srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test(`revert: none of ${JOBS} jobs sees the previous job's marker, and the guest is restored, not booted`, async () => {
    const rv0 = await domainOf('rv');
    expect(rv0.lifecycle).toBe('revert');
    // Its first boot was cold, on a new overlay, and took the golden state.
    expect(rv0.last_boot!.steps.map((s) => s.name)).toEqual(['new-overlay', 'boot', 'golden']);
    expect((await domainOf('pe')).last_boot!.steps.map((s) => s.name)).toEqual(['boot']);
    for (let i = 1; i <= JOBS; i++) {
      expect(await job('rv', `r${i}`)).toBe('');
      await free('rv', `rv reset after job r${i}`);
      const r = (await domainOf('rv')).last_reset!;
      expect(r).toEqual(expect.objectContaining({ policy: 'revert', after_job: `r${i}`, error: '' }));
      expect(r.steps.map((s) => s.name)).toEqual(['stop', 'new-overlay', 'restore']);
    }
    // Taken down by hand, its overlay written behind its back (as a job would have), booted
    // again: the boot starts from the golden state and the golden disk, not from that overlay.
    await unary(c, c.DomainAction, { domain: 'rv', action: 'down', reason: 'test' }, 60_000);
    const overlay = path.join(stateDir, 'disks', 'rv', 'root.qcow2');
    const marker = Buffer.alloc(512);
    marker.write('job-dirty\n');
    fs.writeFileSync(path.join(dir, 'dirty.bin'), marker);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -s ${path.join(dir, 'dirty.bin')} ${16 * 512} 512`, overlay]);
    await unary(c, c.DomainAction, { domain: 'rv', action: 'boot', reason: 'test' });
    await free('rv', 'rv booted again');
    expect((await domainOf('rv')).last_boot!.steps.map((s) => s.name)).toEqual(['new-overlay', 'restore']);
    expect(await job('rv', 'after-boot')).toBe('');
    await free('rv', 'rv reset after after-boot');
  }, 900_000);

  test(`persistent: each of ${JOBS} jobs sees the previous job's marker`, async () => {
    let prev = '';
    for (let i = 1; i <= JOBS; i++) {
      expect(await job('pe', `p${i}`)).toBe(prev);
      prev = `job-p${i}`;
      expect((await domainOf('pe')).state).toBe('free'); // no reset: free at once
    }
    expect((await domainOf('pe')).last_reset).toBeNull();
  }, 900_000);

  test('reboot: a job never sees the previous one, the domain boots cold between them', async () => {
    const n = Math.min(JOBS, 3);
    for (let i = 1; i <= n; i++) {
      expect(await job('rb', `b${i}`)).toBe('');
      await free('rb', `rb rebooted after job b${i}`);
      expect((await domainOf('rb')).last_reset!.steps.map((s) => s.name)).toEqual(['stop', 'new-overlay', 'boot']);
    }
  }, 900_000);

  test('while a domain resets it takes no job; a failed job keeps its overlay, listed, oldest removed first', async () => {
    expect(await job('rv', 'f1', 3)).toBe('');
    // EndJob returned at once; the reset is under way.
    const during = await domainOf('rv');
    if (during.resetting) {
      expect(during.state).toBe('booting');
      await expect(
        unary(c, c.StartJob, { domain: 'rv', job_id: 'too-early', preemptible: true, cpus: 1 }),
      ).rejects.toThrow(/booting/);
    }
    await free('rv', 'rv reset after the failed job');
    let rv = await domainOf('rv');
    expect(rv.last_reset!.kept_for).toBe('f1');
    expect(rv.last_reset!.steps.map((s) => s.name)).toEqual(['stop', 'keep-overlay', 'restore']);
    expect(rv.kept_overlays.map((k) => k.job_id)).toEqual(['f1']);
    const kept = rv.kept_overlays[0]!.file;
    // The kept overlay is the failed job's disk: its marker is in it, on the cached base.
    const raw = path.join(dir, 'f1.raw');
    execFileSync('qemu-img', ['convert', '-U', '-O', 'raw', kept, raw]);
    const b = fs.readFileSync(raw);
    expect(b.subarray(0, 18).toString()).toBe('MARKER image-alpha');
    expect(b.subarray(16 * 512, 16 * 512 + 6).toString()).toBe('job-f1');
    // A succeeding job keeps nothing; two more failures push the oldest out (keepFailed: 2).
    expect(await job('rv', 'ok1', 0)).toBe('');
    await free('rv', 'rv reset after ok1');
    expect((await domainOf('rv')).kept_overlays.map((k) => k.job_id)).toEqual(['f1']);
    for (const id of ['f2', 'f3']) {
      expect(await job('rv', id, 1)).toBe('');
      await free('rv', `rv reset after ${id}`);
    }
    rv = await domainOf('rv');
    expect(rv.kept_overlays.map((k) => k.job_id)).toEqual(['f2', 'f3']);
    expect(fs.existsSync(kept)).toBe(false);
    const listed = await cli(['domain', 'snapshots', 'rv', '--node', d.admin]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/f2[\s\S]*f3/);
    expect(listed.stdout).not.toContain('f1');
    // Status and domain show tell what the last reset did and how long each step took.
    const shown = await cli(['domain', 'show', 'rv', '--node', d.admin]);
    expect(shown.stdout).toMatch(
      /Lifecycle=revert Resetting=no KeptOverlays=f2,f3 LastReset=revert After=f3 Took=\d+ms Steps=stop:\d+ms,keep-overlay:\d+ms,restore:\d+ms/,
    );
    expect((await cli(['status', '--node', d.admin])).stdout).toMatch(/reset \d+\.\ds \(stop:\d+ms,keep-overlay/);
  }, 900_000);

  test(`kill -9 at ${KILLS} random points of a revert: the domain comes back clean and no job is lost`, async () => {
    const times: number[] = (await domainOf('rv')).last_reset ? [(await domainOf('rv')).last_reset!.millis] : [2000];
    for (let k = 1; k <= KILLS; k++) {
      expect(await job('rv', `k${k}`, k % 2)).toBe('');
      const delay = Math.floor(Math.random() * Math.max(...times) * 1.2);
      await new Promise((r) => setTimeout(r, delay));
      c.close();
      await d.kill9();
      d = await spawnDaemon({ stateDir, config });
      c = nodeClient(d.admin);
      await free('rv', `rv recovered after kill -9 ${delay} ms into the reset of k${k}`);
      const rv = await domainOf('rv');
      // The ended job stays ended; nothing else was running.
      expect(rv.jobs).toEqual([]);
      // Clean: the next job sees no marker, and the domain kept taking jobs.
      expect(await job('rv', `after-k${k}`)).toBe('');
      await free('rv', `rv reset after after-k${k}`);
      times.push((await domainOf('rv')).last_reset!.millis);
      // The persistent domain's disk survived the crash as it was.
      expect((await domainOf('pe')).state).toBe('free');
    }
    expect(await job('pe', 'p-last')).toBe(`job-p${JOBS}`);
  }, 1_200_000);
});
