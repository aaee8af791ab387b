/**
 * The qemu driver with real QEMU guests (TCG: no usable KVM on these machines), driven through a
 * real magrathead. The guest is built by test/setup.sh from Debian packages: its init prints
 * MAGRATHEA-GUEST-READY, then "tick N" every second on the serial console, which the tests read
 * to see whether a guest runs, is stopped, or continues where it stopped.
 *
 * Written to hold on a loaded machine: nothing waits for a fixed time and then checks (every
 * condition is waited for, with generous limits), and after every test the node is put back to
 * idle (afterEach), so one failure does not leave a priority job running into the next test.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import {
  endAllJobs,
  getNode,
  nodeClient,
  spawnDaemon,
  statesOf,
  tmpDir,
  unary,
  until as waitUntil,
} from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';
import { GUEST, hasQemuGuest } from '../helpers/guest';

const hasQemu = hasQemuGuest();
const cgroupOk = (() => {
  try {
    fs.accessSync('/sys/fs/cgroup/cpu', fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
})();
if (!hasQemu || !cgroupOk) {
  const why = !hasQemu
    ? 'qemu-system-x86_64 or the test guest is missing (run sh test/setup.sh)'
    : 'cgroup v1 cpu is not writable';
  if (process.env.MAGRATHEA_REQUIRE_QEMU === '1') throw new Error(`QEMU tests required but ${why}`);
  process.stdout.write(`qemu driver tests skipped: ${why}\n`);
}
const maybe = hasQemu && cgroupOk ? describe : describe.skip;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

maybe('qemu driver (real QEMU guests under TCG)', () => {
  const root = `magrathea-qtest-${process.pid}`;
  let dir: string;
  let runDir: string;
  let d: DaemonProcess;
  let c: NodeServiceClient;
  const vm = (mode: string, mem = 160) =>
    `preemption: ${mode}, vm: { kernel: ${GUEST}/vmlinux, initrd: ${GUEST}/initrd.cpio.gz, memoryMiB: ${mem}, readyLine: MAGRATHEA-GUEST-READY }`;
  const serial = (dom: string) => {
    try {
      return fs.readFileSync(path.join(runDir, `${dom}.serial.log`), 'utf8');
    } catch {
      return '';
    }
  };
  const lastTick = (dom: string): number => {
    const ticks = [...serial(dom).matchAll(/^tick (\d+)/gm)];
    return ticks.length ? Number(ticks[ticks.length - 1]![1]) : 0;
  };
  const pidOf = (dom: string) => Number(fs.readFileSync(path.join(runDir, `${dom}.pid`), 'utf8').trim());
  const domainOf = async (name: string) => (await getNode(c)).domains.find((x) => x.name === name)!;
  // Generous: guests share two cores with the rest of the test suite.
  const until = (pred: () => Promise<boolean> | boolean, what: string, ms = 60_000) => waitUntil(pred, what, ms);
  /** The daemon's QMP timeout (config below): a call that waited for a hung QEMU would take this long. */
  const QMP_TIMEOUT_MS = 3000;

  beforeAll(async () => {
    dir = tmpDir('mg-q-');
    runDir = path.join(dir, 'run');
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `
driver:
  kind: qemu
  qemu: { accel: auto, runDir: ${runDir}, cgroup: { root: ${root} }, powerdownTimeoutMs: 3000, qmpTimeoutMs: ${QMP_TIMEOUT_MS} }
reconcileCron: "*/2 * * * * *"
domains:
  - { name: bp, class: normal, ${vm('pause')} }
  - { name: bt, class: normal, ${vm('throttle')} }
  - { name: bs, class: normal, ${vm('save')} }
  - { name: prio, class: priority, ${vm('pause')} }
`,
    });
    c = nodeClient(d.admin);
    await until(
      async () => {
        const s = statesOf(await getNode(c));
        return ['bp', 'bt', 'bs', 'prio'].every((x) => s[x] === 'free');
      },
      'four guests booted',
      90_000,
    );
  }, 120_000);

  // A test that failed half-way must not leave its jobs (a priority job above all) to the next one.
  afterEach(async () => {
    if (c) await endAllJobs(c);
  }, 120_000);

  afterAll(async () => {
    c?.close();
    await d?.stop();
    for (const dom of ['bp', 'bt', 'bs', 'prio']) {
      try {
        process.kill(pidOf(dom), 'SIGKILL');
      } catch {
        // not running
      }
    }
    await sleep(300);
    for (const dom of ['bp', 'bt', 'bs', 'prio', '']) {
      try {
        fs.rmdirSync(path.join('/sys/fs/cgroup/cpu', root, dom));
      } catch {
        // already gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('TCG is chosen because /dev/kvm here is not usable KVM; every guest is observed running', async () => {
    await until(async () => (await getNode(c)).domains.every((x) => x.observed?.power === 'running'), 'observed');
    for (const dom of (await getNode(c)).domains) expect(dom.observed?.detail).toMatch(/tcg/);
    expect(serial('bp')).toMatch(/MAGRATHEA-GUEST-READY/);
  });

  /** Runs a batch job in `dom`, preempts it with a priority job, checks, ends the priority job. */
  const preemptRound = async (dom: string, whilePreempted: (pidBefore: number) => Promise<void>) => {
    await unary(c, c.StartJob, { domain: dom, job_id: `batch.${dom}`, preemptible: true });
    const pidBefore = pidOf(dom);
    await until(() => lastTick(dom) >= 1, `${dom} ticking`);
    const r = await unary<object, { preempted: string[]; phases: { name: string; millis: number }[] }>(c, c.StartJob, {
      domain: 'prio',
      job_id: `prio.${dom}`,
    });
    expect(r.preempted).toEqual([dom]);
    expect(r.phases.map((p) => p.name)).toEqual([`preempt:${dom}`, 'grow:prio']);
    expect(statesOf(await getNode(c))[dom]).toBe('preempted');
    await whilePreempted(pidBefore);
    // Observed as preempted without drift (the observation is refreshed every reconcile pass).
    await until(async () => (await domainOf(dom)).observed?.drift === false, `${dom} observed without drift`);
    const t = lastTick(dom);
    await unary(c, c.EndJob, { domain: 'prio', job_id: `prio.${dom}` });
    expect(statesOf(await getNode(c))[dom]).toBe('running-preemptible');
    // It continues where it stopped (a restored guest does not boot again).
    await until(() => serial(dom).includes(`tick ${t + 1} `), `${dom} continues after tick ${t}`);
    expect(serial(dom).split('MAGRATHEA-GUEST-READY').length).toBe(2);
    await unary(c, c.EndJob, { domain: dom, job_id: `batch.${dom}` });
  };

  test('pause: the guest stops (not a single tick), keeps its RAM (0 bytes released, reported so), and continues after', async () => {
    await preemptRound('bp', async () => {
      expect((await domainOf('bp')).last_release).toMatchObject({ mode: 'pause', cpu_weight_after: 2 });
      expect(Number((await domainOf('bp')).last_release!.memory_released_bytes)).toBeLessThan(8 * 1024 * 1024);
      const t = lastTick('bp');
      await sleep(2500);
      expect(lastTick('bp')).toBe(t);
      await until(async () => (await domainOf('bp')).observed?.power === 'paused', 'bp observed paused');
    });
  }, 150_000);

  test('throttle: the guest keeps running at 2 CPU shares and the balloon takes back what the guest can spare', async () => {
    await preemptRound('bt', async () => {
      const rel = (await domainOf('bt')).last_release!;
      expect(rel).toMatchObject({ mode: 'throttle', cpu_weight_after: 2 });
      expect(fs.readFileSync(path.join('/sys/fs/cgroup/cpu', root, 'bt', 'cpu.shares'), 'utf8').trim()).toBe('2');
      // Still running (QMP status running, at 2 shares): observed throttled, not paused.
      await until(async () => (await domainOf('bt')).observed?.power === 'throttled', 'bt observed throttled');
    });
  }, 150_000);

  test('save: the guest is written to disk and QEMU exits (all its memory released), then restored', async () => {
    await preemptRound('bs', async (pidBefore) => {
      const rel = (await domainOf('bs')).last_release!;
      expect(rel.mode).toBe('save');
      expect(Number(rel.memory_released_bytes)).toBeGreaterThan(50 * 1024 * 1024);
      expect(fs.existsSync(path.join(runDir, 'bs.state'))).toBe(true);
      expect(() => process.kill(pidBefore, 0)).toThrow();
      await until(async () => (await domainOf('bs')).observed?.power === 'saved', 'bs observed saved');
    });
    expect(fs.existsSync(path.join(runDir, 'bs.state'))).toBe(false);
  }, 150_000);

  test('freeze saves the priority domain to a file and defrost restores it, still running its job', async () => {
    await unary(c, c.StartJob, { domain: 'prio', job_id: 'prio.f' });
    await unary(c, c.DomainAction, { domain: 'prio', action: 'freeze' }, 60_000); // a save under TCG on a busy machine
    expect(statesOf(await getNode(c)).prio).toBe('frozen');
    expect(fs.existsSync(path.join(runDir, 'prio.state'))).toBe(true);
    const t = lastTick('prio');
    await unary(c, c.DomainAction, { domain: 'prio', action: 'defrost' }, 60_000);
    expect(statesOf(await getNode(c)).prio).toBe('running-priority');
    await until(() => serial('prio').includes(`tick ${t + 1} `), 'prio continues after defrost');
    expect(fs.existsSync(path.join(runDir, 'prio.state'))).toBe(false);
    await unary(c, c.EndJob, { domain: 'prio', job_id: 'prio.f' });
  }, 150_000);

  test('QEMU killed under the daemon: the domain goes down at once with the reason, the daemon keeps serving', async () => {
    await unary(c, c.StartJob, { domain: 'bt', job_id: 'doomed.1', preemptible: true });
    process.kill(pidOf('bt'), 'SIGKILL');
    await until(async () => ['down', 'down-bootable'].includes(statesOf(await getNode(c)).bt ?? ''), 'bt down');
    const bt = await domainOf('bt');
    expect(bt.down_reason).toMatch(/vanished/);
    expect(bt.jobs).toEqual([]);
    expect(d.logs.some((l) => l.msg === 'job lost: its domain vanished' && l.jobId === 'doomed.1')).toBe(true);
    await unary(c, c.StartJob, { domain: 'bp', job_id: 'after.1', preemptible: true });
    expect(statesOf(await getNode(c)).bp).toBe('running-preemptible');
    await unary(c, c.EndJob, { domain: 'bp', job_id: 'after.1' });
  }, 150_000);

  test('a QEMU that hangs (SIGSTOP): its QMP calls time out, the domain is observed unknown, the daemon keeps answering', async () => {
    const pid = pidOf('prio');
    process.kill(pid, 'SIGSTOP');
    try {
      await until(async () => {
        const t0 = Date.now();
        const o = (await domainOf('prio')).observed;
        // GetNode never waits for the hung VM: a call that did would take the whole QMP timeout.
        expect(Date.now() - t0).toBeLessThan(QMP_TIMEOUT_MS);
        return o?.power === 'unknown' && /QMP/.test(o.detail);
      }, 'prio observed unknown');
      expect(statesOf(await getNode(c)).prio).toBe('free'); // nothing rewritten
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await until(async () => (await domainOf('prio')).observed?.power === 'running', 'prio observed running again');
  }, 150_000);

  test('shutdown powers the guest off through ACPI', async () => {
    const pid = pidOf('bp');
    await unary(c, c.DomainAction, { domain: 'bp', action: 'down' });
    expect(['down', 'down-bootable']).toContain(statesOf(await getNode(c)).bp);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(d.logs.some((l) => l.msg === 'job lost: its domain vanished' && l.domain === 'bp')).toBe(false);
  }, 150_000);
});

maybe('qemu driver: bad input leaves the daemon serving with the domain down and the reason', () => {
  test('a missing QEMU binary and a missing kernel', async () => {
    const dir = tmpDir('mg-qbad-');
    const d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `
driver: { kind: qemu, qemu: { binary: /nonexistent/qemu-system-x86_64, runDir: ${dir}/run, cgroup: false } }
domains:
  - { name: a, class: normal, preemption: pause, vm: { kernel: ${GUEST}/vmlinux } }
`,
    });
    const d2 = await spawnDaemon({
      stateDir: path.join(dir, 'state2'),
      config: `
driver: { kind: qemu, qemu: { runDir: ${dir}/run2, cgroup: false } }
domains:
  - { name: b, class: normal, preemption: pause, vm: { kernel: ${dir}/no-such-vmlinux } }
`,
    });
    const c1 = nodeClient(d.admin);
    const c2 = nodeClient(d2.admin);
    try {
      const wait = async (cl: NodeServiceClient, name: string) => {
        const down = async () => (await getNode(cl)).domains.find((y) => y.name === name)!;
        await waitUntil(async () => (await down()).state.startsWith('down'), `${name} down`, 60_000, 50);
        return down();
      };
      expect((await wait(c1, 'a')).down_reason).toMatch(/cannot start \/nonexistent\/qemu-system-x86_64: .*ENOENT/);
      expect((await wait(c2, 'b')).down_reason).toMatch(/no-such-vmlinux does not exist/);
    } finally {
      c1.close();
      c2.close();
      await d.stop();
      await d2.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
