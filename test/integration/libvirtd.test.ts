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
import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import { rawImage } from '../helpers/guest';
import { serveImages } from '../helpers/image-server';
import {
  cli,
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
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

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

  test('image-backed libvirt domains: overlays and context disks written into the definitions, one download, set-image, a missing bridge refused with its reason', async () => {
    // A third daemon on three more domains of the same libvirtd, defined without any disk: the
    // daemon writes the root overlay (vda), the context disk (vdb) and the NIC into them.
    const alpha = rawImage('image-alpha');
    const beta = rawImage('image-beta');
    const srv = await serveImages();
    srv.files.set('/alpha.img', alpha);
    srv.files.set('/beta.img', beta);
    let d3: DaemonProcess | undefined;
    let c3: NodeServiceClient | undefined;
    const serials: Record<string, string> = {};
    const serial = (n: string) => {
      try {
        return fs.readFileSync(serials[n]!, 'utf8');
      } catch {
        return '';
      }
    };
    const lines = (n: string, tag: string) => serial(n).match(new RegExp(`^${tag} .*$`, 'gm')) ?? [];
    try {
      for (const n of ['i1', 'i2', 'inet']) {
        serials[n] = path.join(dir, `${n}.serial`);
        fs.writeFileSync(path.join(dir, `${n}.xml`), domainXml(`lv-${n}`, serials[n]));
        virsh('define', path.join(dir, `${n}.xml`));
      }
      const pki = path.join(dir, 'pki');
      expect((await cli(['pki', 'init', '--out', pki, '--node', 'n1'])).code).toBe(0);
      const token = 'token-of-i1-0123456789';
      fs.writeFileSync(path.join(dir, 'i1.token'), token, { mode: 0o600 });
      const stateDir = path.join(dir, 'state3');
      d3 = await spawnDaemon({
        stateDir,
        config: `
node: { name: n1 }
driver: { kind: libvirt, libvirt: { uri: "${uri}", runDir: ${dir}/saved3, shutdownTimeoutMs: 3000 } }
images:
  - { name: alpha, url: '${srv.url('/alpha.img')}', sha256: ${sha(alpha)}, format: raw }
  - { name: beta, url: '${srv.url('/beta.img')}', sha256: ${sha(beta)}, format: raw }
imageCache: { maxMiB: 64 }
context: { pkiDir: ${pki}, hookApiAddress: '10.0.2.2:5679' }
hookApi: { listen: "127.0.0.1:0" }
reconcileCron: "*/2 * * * * *"
domains:
  - { name: i1, image: alpha, hostName: i1.test, preemption: pause, tokenFile: ${dir}/i1.token, libvirtName: lv-i1 }
  - { name: i2, image: alpha, preemption: pause, libvirtName: lv-i2 }
  - { name: inet, image: alpha, preemption: pause, libvirtName: lv-inet, network: { bridge: mgnobr0 } }
`,
      });
      const client = nodeClient(d3.admin);
      c3 = client;
      const dom = async (n: string) => (await getNode(client)).domains.find((x) => x.name === n)!;
      await until(async () => {
        const st = statesOf(await getNode(client));
        return st.i1 === 'free' && st.i2 === 'free' && st.inet?.startsWith('down') === true;
      }, 'i1 and i2 booted, inet down');
      await until(
        () => lines('i1', 'MAGRATHEA-DISK').length >= 2 && lines('i2', 'MAGRATHEA-DISK').length >= 2,
        'guests read their disks',
      );
      // One download for the three domains of the image; each boots its own overlay on it.
      expect(srv.requests.filter((r) => r.path === '/alpha.img')).toHaveLength(1);
      const blob = path.join(stateDir, 'images', 'blobs', sha(alpha));
      for (const n of ['i1', 'i2']) {
        const xml = virsh('dumpxml', `lv-${n}`, '--inactive');
        const root = path.join(stateDir, 'disks', n, 'root.qcow2');
        expect(xml).toMatch(new RegExp(`<source file='${root}'/>\\s*<target dev='vda' bus='virtio'/>`));
        expect(xml).toMatch(/<source file='[^']*context\.iso'\/>\s*<target dev='vdb' bus='virtio'\/>\s*<readonly\/>/);
        const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', root], { encoding: 'utf8' }));
        expect(info).toEqual(expect.objectContaining({ format: 'qcow2', 'backing-filename': blob }));
        expect(lines(n, 'MAGRATHEA-DISK')[0]).toBe('MAGRATHEA-DISK base=MARKER image-alpha previous=');
      }
      expect(sha(fs.readFileSync(blob))).toBe(sha(alpha));
      const ctx = lines('i1', 'MAGRATHEA-CONTEXT')[0] ?? '';
      expect(ctx).toContain('hostname=i1.test ');
      expect(ctx).toContain(`token-sha256=${sha(token)} `);
      expect(ctx).toContain('token-mode=400:0:0 ');
      expect(ctx).toMatch(/cert=.*i1\.test/);
      expect(lines('i2', 'MAGRATHEA-CONTEXT')[0]).toContain('hostname=n1-i2 ');
      // The NIC is in the definition with the stable MAC; the bridge does not exist here, so the
      // boot fails with libvirt's reason and the domain is down (no NIC is added twice on retries).
      const inet = virsh('dumpxml', 'lv-inet', '--inactive');
      expect(inet.match(/<interface type='bridge'>/g)).toHaveLength(1);
      expect(inet).toContain("<source bridge='mgnobr0'/>");
      expect(inet).toMatch(/<mac address='([0-9a-f]{2}:){5}[0-9a-f]{2}'\/>/);
      expect((await dom('inet')).down_reason).toMatch(/mgnobr0/);
      // set-image: i1 goes from alpha to beta; its definition now points at a new overlay on beta.
      await unary(client, client.SetImage, { domain: 'i1', image: 'beta' }, 120_000);
      await until(async () => {
        const x = await dom('i1');
        return x.image === 'beta' && x.pending_image === '' && x.state === 'free';
      }, 'i1 on beta').catch(async (err: Error) => {
        const x = await dom('i1');
        const logs = d3!.logs
          .filter((l) => Number(l.level) >= 40)
          .map((l) => JSON.stringify(l))
          .slice(-5);
        throw new Error(
          `${err.message}: ${x.state} ${x.image} pending=${x.pending_image} ${x.down_reason}; ${logs.join(' | ')}`,
        );
      });
      await until(
        () =>
          lines('i1', 'MAGRATHEA-DISK base=MARKER image-beta').length >= 1 ||
          serial('i1').includes('base=MARKER image-beta'),
        'i1 guest on beta',
      );
      const info = JSON.parse(
        execFileSync('qemu-img', ['info', '-U', '--output=json', path.join(stateDir, 'disks', 'i1', 'root.qcow2')], {
          encoding: 'utf8',
        }),
      );
      expect(info['backing-filename']).toBe(path.join(stateDir, 'images', 'blobs', sha(beta)));
      expect(virsh('dumpxml', 'lv-i1', '--inactive').match(/<target dev='vda'/g)).toHaveLength(1);
      expect((await dom('i2')).image).toBe('alpha');
    } finally {
      if (c3) await endAllJobs(c3).catch(() => undefined);
      c3?.close();
      await d3?.stop();
      destroy('i1', 'i2', 'inet');
      await srv.close();
    }
  }, 400_000);
});
