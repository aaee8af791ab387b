/**
 * The guest agent channel end to end: the daemon's qemu-guest-agent client against the reference
 * agent (test/guest/magrathea-ga.sh) inside a real QEMU guest (TCG), over the virtio-serial port
 * the qemu driver adds. Jobs are stopped and continued (their state read from the guest's /proc),
 * the swap disk goes on and off, a hung agent makes calls fail within their limit, and a session
 * abandoned mid-command does not confuse the next one.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GuestAgent, GuestControl } from '../../packages/node-daemon/src/hypervisor/guest-agent';
import { GUEST, hasQemuGuest } from '../helpers/guest';
import { tmpDir, until } from '../helpers/processes';

const hasQemu = hasQemuGuest();
if (!hasQemu) {
  if (process.env.MAGRATHEA_REQUIRE_QEMU === '1')
    throw new Error('QEMU tests required but QEMU or the guest is missing');
  process.stdout.write(
    'guest agent tests skipped: qemu-system-x86_64 or the test guest is missing (sh test/setup.sh)\n',
  );
}
const maybe = hasQemu ? describe : describe.skip;
/** Generous limits: TCG guests share two cores with the rest of the suite. */
const AGENT_MS = 20_000;

maybe('guest agent (reference agent in a real QEMU guest)', () => {
  let dir: string;
  let qemu: ChildProcess;
  const sock = () => path.join(dir, 'ga.sock');
  const connect = () => GuestAgent.connect(sock(), AGENT_MS);
  /** Runs a script over a fresh session. */
  const sh = async (script: string) => {
    const a = await connect();
    try {
      return await a.exec(script, AGENT_MS);
    } finally {
      a.close();
    }
  };

  beforeAll(async () => {
    dir = tmpDir('mg-ga-');
    const swap = path.join(dir, 'swap');
    fs.writeFileSync(swap, '');
    fs.truncateSync(swap, 64 * 1024 * 1024);
    qemu = spawn(
      'qemu-system-x86_64',
      [
        ...['-accel', 'tcg', '-m', '256', '-nodefaults', '-no-user-config', '-display', 'none'],
        ...['-chardev', `file,id=s0,path=${path.join(dir, 'serial.log')}`, '-serial', 'chardev:s0'],
        ...['-kernel', path.join(GUEST, 'vmlinux'), '-initrd', path.join(GUEST, 'initrd.cpio.gz')],
        ...['-append', 'console=ttyS0 quiet panic=-1'],
        ...['-chardev', `socket,id=ga0,path=${sock()},server=on,wait=off`, '-device', 'virtio-serial-pci,id=vser0'],
        ...['-device', 'virtserialport,bus=vser0.0,chardev=ga0,name=org.qemu.guest_agent.0'],
        ...['-drive', `file=${swap},if=none,id=swap0,format=raw,cache=none,aio=threads`],
        ...['-device', 'virtio-blk-pci,drive=swap0,serial=magrathea-swap'],
      ],
      { stdio: 'ignore' },
    );
    await until(
      () => {
        try {
          return fs.readFileSync(path.join(dir, 'serial.log'), 'utf8').includes('MAGRATHEA-GUEST-READY');
        } catch {
          return false;
        }
      },
      'guest booted',
      120_000,
    );
  }, 150_000);

  afterAll(async () => {
    if (qemu && qemu.exitCode === null) {
      const gone = new Promise((r) => qemu.once('exit', r));
      qemu.kill('SIGKILL');
      await gone;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('handshake, ping, an unknown command refused as qemu-ga does, a script’s output and exit code', async () => {
    const a = await connect();
    try {
      await a.ping();
      await expect(a.execute('guest-no-such-thing')).rejects.toMatchObject({ agentClass: 'CommandNotFound' });
      const info = (await a.execute('guest-info')) as { supported_commands: { name: string }[] };
      expect(info.supported_commands.map((c) => c.name)).toEqual(
        expect.arrayContaining(['guest-sync', 'guest-exec', 'guest-exec-status']),
      );
      expect(await a.exec('echo "out $((6 * 7))"; exit 5', AGENT_MS)).toEqual({ exitCode: 5, output: 'out 42\n' });
      await expect(a.execute('guest-exec', { path: '/bin/rm', arg: ['-rf', '/'] })).rejects.toThrow(/only \/bin\/sh/);
    } finally {
      a.close();
    }
  }, 120_000);

  test('jobs in the jobs cgroup are stopped (state T) and continued; processes outside are left alone', async () => {
    // A job (two processes) in /sys/fs/cgroup/jobs/j1 and a bystander outside it.
    const started = await sh(
      [
        'mkdir -p /sys/fs/cgroup/jobs/j1',
        "setsid sh -c 'echo $$ > /sys/fs/cgroup/jobs/j1/cgroup.procs; while true; do sleep 1; done' </dev/null >/dev/null 2>&1 &",
        "setsid sh -c 'while true; do sleep 1; done' </dev/null >/dev/null 2>&1 &",
        'echo "bystander $!"',
      ].join('\n'),
    );
    const bystander = Number(/bystander (\d+)/.exec(started.output)![1]);
    // QEMU's chardev serves one client at a time: everything below goes through this one session.
    const a = await connect();
    const run = async (script: string) => (await a.exec(script, AGENT_MS)).output;
    const procs = async () =>
      (await run('cat /sys/fs/cgroup/jobs/j1/cgroup.procs')).trim().split('\n').filter(Boolean).map(Number);
    const state = async (pid: number) => (await run(`cut -d' ' -f3 /proc/${pid}/stat`)).trim();
    try {
      await until(async () => (await procs()).length >= 1, 'job in its cgroup', 60_000);
      const g = new GuestControl(a, AGENT_MS);
      expect(await g.stopJobs({ cgroup: '/sys/fs/cgroup/jobs' })).toBeGreaterThanOrEqual(1);
      for (const p of await procs()) expect(await state(p)).toBe('T');
      expect(await state(bystander)).not.toBe('T');
      expect(await g.continueJobs({ cgroup: '/sys/fs/cgroup/jobs' })).toBeGreaterThanOrEqual(1);
      for (const p of await procs()) expect(await state(p)).not.toBe('T');
      // By process group too (the bystander leads its own: setsid).
      expect(await g.stopJobs({ processGroup: bystander })).toBe(1);
      expect(await state(bystander)).toBe('T');
      await g.continueJobs({ processGroup: bystander });
      expect(await state(bystander)).not.toBe('T');
      await expect(g.stopJobs({ cgroup: '/sys/fs/cgroup/none' })).rejects.toThrow(/no cgroup \/sys\/fs\/cgroup\/none/);
    } finally {
      a.close();
      await sh(`kill -9 -${bystander} $(cat /sys/fs/cgroup/jobs/j1/cgroup.procs) 2>/dev/null; true`);
    }
  }, 180_000);

  test('the swap disk (found by its serial) goes on and off; caches are dropped; meminfo is read', async () => {
    const a = await connect();
    try {
      const g = new GuestControl(a, AGENT_MS);
      await g.dropCaches();
      await g.swapOn();
      await g.swapOn(); // idempotent
      expect((await g.memInfo()).swapTotalBytes).toBeGreaterThan(60 * 1024 * 1024);
      await g.swapOff(AGENT_MS);
      expect((await g.memInfo()).swapTotalBytes).toBe(0);
      await g.swapOff(AGENT_MS); // idempotent
    } finally {
      a.close();
    }
  }, 120_000);

  test('a session abandoned in the middle of a command does not confuse the next one', async () => {
    const a = await connect();
    // Leave while the agent is about to answer; its late reply is stale for the next session.
    void a
      .execute('guest-exec', { path: '/bin/sh', 'input-data': Buffer.from('sleep 1').toString('base64') })
      .catch(() => undefined);
    a.close();
    const b = await connect();
    try {
      await b.ping();
      expect((await b.exec('echo fresh', AGENT_MS)).output).toBe('fresh\n');
    } finally {
      b.close();
    }
  }, 120_000);

  test('a hung agent: every call fails within its time limit with a clear error, nothing hangs', async () => {
    const a = await connect();
    // The agent stops itself: it cannot report the status of this command, nor answer anything.
    await expect(a.exec('kill -STOP $(cat /run/magrathea-ga/pid)', 1500)).rejects.toThrow(
      /did not (answer guest-exec-status|finish) within/,
    );
    a.close();
    await expect(GuestAgent.connect(sock(), 1500)).rejects.toThrow(
      /did not answer guest-sync-delimited within 1500 ms/,
    );
  }, 120_000);
});
