/**
 * The libvirt driver against a real libvirtd (qemu:///system) managing real TCG guests: started
 * by the test in a private mount namespace (test/fixtures/libvirtd/start-libvirtd.sh, the
 * workarounds of reference/hypervisors.md §2). Needs root, unshare and the libvirt-daemon
 * packages (installed by .ci/run and test/setup.sh).
 *
 * Written to hold on a loaded machine: every condition is waited for with generous limits (no
 * single sample after a fixed sleep), and after every test the node is put back to idle, so one
 * failure does not cascade into the next test.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import {
  endAllJobs,
  getNode,
  nodeClient,
  ROOT,
  spawnDaemon,
  statesOf,
  tmpDir,
  unary,
  until as waitUntil,
} from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const GUEST = path.join(ROOT, '.cache/guest');
const have = (cmd: string, args: string[]) => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const ok =
  have('libvirtd', ['--version']) &&
  have('virsh', ['--version']) &&
  have('unshare', ['--version']) &&
  fs.existsSync(path.join(GUEST, 'vmlinux')) &&
  process.getuid?.() === 0;
if (!ok) {
  const why = 'libvirtd, virsh, unshare, root or the test guest is missing';
  if (process.env.MAGRATHEA_REQUIRE_QEMU === '1') throw new Error(`libvirtd tests required but ${why}`);
  process.stdout.write(`libvirtd tests skipped: ${why}\n`);
}
const maybe = ok ? describe : describe.skip;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const domainXml = (name: string, serial: string) => `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>160</memory>
  <currentMemory unit='MiB'>160</currentMemory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>${GUEST}/vmlinux</kernel><initrd>${GUEST}/initrd.cpio.gz</initrd><cmdline>console=ttyS0 quiet panic=-1</cmdline></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <serial type='file'><source path='${serial}' append='on'/><target port='0'/></serial>
    <memballoon model='virtio'><stats period='1'/></memballoon>
  </devices>
</domain>
`;

maybe('libvirt driver against a real libvirtd with TCG guests', () => {
  let dir: string;
  let lv: ChildProcess;
  let uri: string;
  let d: DaemonProcess;
  let c: NodeServiceClient;
  const virsh = (...args: string[]) =>
    execFileSync('virsh', ['-c', uri, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const domainOf = async (name: string) => (await getNode(c)).domains.find((x) => x.name === name)!;
  /** Stops the test's VMs lv-NAME (those not running are skipped). */
  const destroy = (...names: string[]) => {
    for (const n of names) {
      try {
        virsh('destroy', `lv-${n}`);
      } catch {
        // not running
      }
    }
  };
  const ticks = (f: string) => {
    try {
      return [...fs.readFileSync(f, 'utf8').matchAll(/^tick (\d+)/gm)].map((m) => Number(m[1])).at(-1) ?? 0;
    } catch {
      return 0;
    }
  };
  // Generous: guests share two cores with the rest of the test suite.
  const until = (pred: () => Promise<boolean> | boolean, what: string, ms = 60_000) => waitUntil(pred, what, ms);

  beforeAll(async () => {
    dir = tmpDir('mg-lvd-');
    lv = spawn('sh', [path.join(ROOT, 'test/fixtures/libvirtd/start-libvirtd.sh'), path.join(dir, 'lv')], {
      stdio: 'ignore',
      detached: true,
    });
    uri = `qemu:///system?socket=${dir}/lv/run/libvirt-sock`;
    await until(() => fs.existsSync(`${dir}/lv/run/libvirt-sock`), 'libvirtd socket', 60_000);
    await until(() => have('virsh', ['-c', uri, 'version']), 'libvirtd answering', 60_000);
    for (const n of ['batch', 'prio']) {
      fs.writeFileSync(path.join(dir, `${n}.xml`), domainXml(`lv-${n}`, path.join(dir, `${n}.serial`)));
      virsh('define', path.join(dir, `${n}.xml`));
    }
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `
driver: { kind: libvirt, libvirt: { uri: "${uri}", runDir: ${dir}/saved, shutdownTimeoutMs: 3000 } }
reconcileCron: "*/1 * * * * *"
domains:
  - { name: batch, class: normal, preemption: throttle, libvirtName: lv-batch }
  - { name: prio, class: priority, preemption: pause, libvirtName: lv-prio }
`,
    });
    c = nodeClient(d.admin);
    await until(async () => Object.values(statesOf(await getNode(c))).every((s) => s === 'free'), 'domains booted');
    await until(() => ticks(path.join(dir, 'batch.serial')) >= 2, 'batch guest ticking');
  }, 300_000);

  // A test that failed half-way must not leave its jobs (a priority job above all) to the next one.
  afterEach(async () => {
    if (c) await endAllJobs(c);
  }, 120_000);

  afterAll(async () => {
    c?.close();
    await d?.stop();
    destroy('batch', 'prio');
    if (lv?.pid) {
      try {
        process.kill(-lv.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await sleep(300);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('throttle through libvirtd: cpu_shares 2 and the balloon lowered to what the guest can spare (release measured), resumed after', async () => {
    await unary(c, c.StartJob, { domain: 'batch', job_id: 'b1', preemptible: true });
    await unary(c, c.StartJob, { domain: 'prio', job_id: 'p1' });
    const rel = (await domainOf('batch')).last_release!;
    expect(rel.mode).toBe('throttle');
    expect(rel.cpu_weight_after).toBe(2);
    expect(virsh('schedinfo', 'lv-batch')).toMatch(/cpu_shares\s*:\s*2\b/);
    const actualKiB = Number(/actual (\d+)/.exec(virsh('dommemstat', 'lv-batch'))?.[1]);
    expect(actualKiB).toBeLessThan(160 * 1024);
    // What QEMU gave back is measured (rss before/after), not assumed: reported, possibly 0 when
    // the guest had not touched the pages the balloon took.
    expect(Number(rel.memory_released_bytes)).toBeGreaterThanOrEqual(0);
    process.stdout.write(
      `libvirtd throttle: balloon at ${actualKiB} KiB, released ${rel.memory_released_bytes} bytes\n`,
    );
    await until(async () => {
      const o = (await domainOf('batch')).observed;
      return o?.power === 'throttled' && !o.drift;
    }, 'observed throttled, without drift');
    await unary(c, c.EndJob, { domain: 'prio', job_id: 'p1' });
    expect(virsh('schedinfo', 'lv-batch')).toMatch(/cpu_shares\s*:\s*1024\b/);
    await unary(c, c.EndJob, { domain: 'batch', job_id: 'b1' });
  }, 180_000);

  test('freeze (virsh save) and defrost (virsh restore): the guest continues where it stopped', async () => {
    await unary(c, c.StartJob, { domain: 'prio', job_id: 'f1' });
    await unary(c, c.DomainAction, { domain: 'prio', action: 'freeze' });
    expect(virsh('domstate', 'lv-prio', '--reason')).toMatch(/shut off \(saved\)/);
    expect(fs.existsSync(path.join(dir, 'saved', 'prio.state'))).toBe(true);
    const t = ticks(path.join(dir, 'prio.serial'));
    await unary(c, c.DomainAction, { domain: 'prio', action: 'defrost' });
    expect(virsh('domstate', 'lv-prio')).toMatch(/running/);
    await until(() => ticks(path.join(dir, 'prio.serial')) > t, 'prio ticks again after restore');
    expect(fs.readFileSync(path.join(dir, 'prio.serial'), 'utf8').split('MAGRATHEA-GUEST-READY').length).toBe(2);
    await unary(c, c.EndJob, { domain: 'prio', job_id: 'f1' });
  }, 180_000);

  test('a VM destroyed behind the daemon’s back: down at the next reconciliation, jobs reported lost', async () => {
    await unary(c, c.StartJob, { domain: 'batch', job_id: 'doomed', preemptible: true });
    virsh('destroy', 'lv-batch');
    await until(async () => (statesOf(await getNode(c)).batch ?? '').startsWith('down'), 'batch down');
    expect((await domainOf('batch')).down_reason).toMatch(/vanished/);
    expect(d.logs.some((l) => l.msg === 'job lost: its domain vanished' && l.jobId === 'doomed')).toBe(true);
  }, 120_000);

  test('CPU-counting mode: each domain capped by global_quota to the CPUs its running jobs hold', async () => {
    // A second daemon on two more domains of the same libvirtd, in CPU-counting mode (2 CPUs).
    for (const n of ['cbatch', 'cprio']) {
      fs.writeFileSync(path.join(dir, `${n}.xml`), domainXml(`lv-${n}`, path.join(dir, `${n}.serial`)));
      virsh('define', path.join(dir, `${n}.xml`));
    }
    const quota = (name: string) => Number(/global_quota\s*:\s*(-?\d+)/.exec(virsh('schedinfo', name, '--live'))?.[1]);
    const period = (name: string) => Number(/global_period\s*:\s*(\d+)/.exec(virsh('schedinfo', name, '--live'))?.[1]);
    let d2: DaemonProcess | undefined;
    let c2: NodeServiceClient | undefined;
    try {
      d2 = await spawnDaemon({
        stateDir: path.join(dir, 'state2'),
        config: `
driver: { kind: libvirt, libvirt: { uri: "${uri}", runDir: ${dir}/saved2, shutdownTimeoutMs: 3000 } }
cpuCounting: { cpus: 2 }
domains:
  - { name: cbatch, class: normal, preemption: pause, libvirtName: lv-cbatch }
  - { name: cprio, class: priority, preemption: pause, libvirtName: lv-cprio }
`,
      });
      const client = nodeClient(d2.admin);
      c2 = client;
      await until(
        async () => Object.values(statesOf(await getNode(client))).every((s) => s === 'free'),
        'domains booted',
      );
      const p = period('lv-cbatch');
      expect(p).toBeGreaterThan(0);
      // Idle: the floor of one CPU.
      await until(() => quota('lv-cbatch') === p && quota('lv-cprio') === p, 'idle domains capped to 1 CPU');
      await unary(client, client.StartJob, { domain: 'cbatch', job_id: 'q1', preemptible: true, cpus: 1 });
      await unary(client, client.StartJob, { domain: 'cbatch', job_id: 'q2', preemptible: true, cpus: 1 });
      await until(() => quota('lv-cbatch') === 2 * p, 'batch capped to 2 CPUs');
      // The priority job suspends the batch domain (libvirt stops no single job): back to the floor.
      await unary(client, client.StartJob, { domain: 'cprio', job_id: 'q3', cpus: 1 });
      await until(() => quota('lv-cbatch') === p && quota('lv-cprio') === p, 'suspended batch back to the floor');
      await unary(client, client.EndJob, { domain: 'cprio', job_id: 'q3' });
      await until(() => quota('lv-cbatch') === 2 * p, 'batch capped to 2 CPUs');
      await unary(client, client.EndJob, { domain: 'cbatch', job_id: 'q1' });
      await unary(client, client.EndJob, { domain: 'cbatch', job_id: 'q2' });
      await until(() => quota('lv-cbatch') === p, 'idle batch back to the floor');
    } finally {
      if (c2) await endAllJobs(c2).catch(() => undefined);
      c2?.close();
      await d2?.stop();
      destroy('cbatch', 'cprio');
    }
  }, 300_000);
});
