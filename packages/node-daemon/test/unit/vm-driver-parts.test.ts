/** The qemu driver's pure and I/O parts that do not need QEMU: accelerator choice, QMP client, config. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { chooseAccel } from '../../src/hypervisor/qemu/accel';
import { QmpClient, QmpError } from '../../src/hypervisor/qemu/qmp-client';
import { compileConfig } from '../../src/config/load-config';
import { parsePairs, powerOf } from '../../src/hypervisor/libvirt/libvirt-driver';
import { virshQuote } from '../../src/hypervisor/libvirt/virsh-session';
import type { ConfigError } from '../../src/errors';

describe('accelerator choice', () => {
  test('KVM only when /dev/kvm works, the CPU has vmx/svm and it is not the kvm_pvm backend', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.boolean(), (devKvmUsable, cpuHasVirt, kvmPvm) => {
        const r = chooseAccel('auto', { devKvmUsable, cpuHasVirt, kvmPvm });
        expect(r.accel === 'kvm').toBe(devKvmUsable && cpuHasVirt && !kvmPvm);
        expect(chooseAccel('tcg', { devKvmUsable, cpuHasVirt, kvmPvm }).accel).toBe('tcg');
      }),
    );
  });
  test('this project’s machines: /dev/kvm present but kvm_pvm and no vmx → TCG, with the reason', () => {
    expect(chooseAccel('auto', { devKvmUsable: true, cpuHasVirt: false, kvmPvm: true })).toEqual({
      accel: 'tcg',
      why: 'TCG because /dev/kvm is the kvm_pvm backend (runs only PVM guest kernels)',
    });
  });
});

describe('QMP client against a scripted QMP server', () => {
  let dir: string;
  let server: net.Server;
  let behaviour: (line: string, sock: net.Socket) => void;
  let sockPath: string;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qmp-'));
    sockPath = path.join(dir, 'q.sock');
    server = net.createServer((sock) => {
      sock.write('{"QMP": {"version": {}, "capabilities": []}}\n');
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          behaviour(line, sock);
        }
      });
    });
    await new Promise<void>((r) => server.listen(sockPath, r));
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const reply = (line: string, sock: net.Socket, body: object) => {
    const id = (JSON.parse(line) as { id: string }).id;
    sock.write(`${JSON.stringify({ ...body, id })}\n`);
  };

  test('negotiates, matches replies by id (out of order), passes events, maps errors', async () => {
    const held: [string, net.Socket][] = [];
    behaviour = (line, sock) => {
      const cmd = (JSON.parse(line) as { execute: string }).execute;
      if (cmd === 'qmp_capabilities') reply(line, sock, { return: {} });
      else if (cmd === 'slow') held.push([line, sock]);
      else if (cmd === 'fast') {
        sock.write('{"event": "STOP", "data": {}}\n');
        reply(line, sock, { return: { status: 'paused' } });
        for (const [l, s] of held) reply(l, s, { return: 'slow-done' });
      } else reply(line, sock, { error: { class: 'DeviceNotActive', desc: 'No balloon device has been activated' } });
    };
    const c = await QmpClient.connect(sockPath, 1000);
    const events: string[] = [];
    c.on('event', (e: { event: string }) => events.push(e.event));
    const slow = c.execute('slow', undefined, 1000);
    expect(await c.execute('fast', undefined, 1000)).toEqual({ status: 'paused' });
    expect(await slow).toBe('slow-done');
    expect(events).toEqual(['STOP']);
    const err = await c.execute('balloon', { value: 1 }, 1000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect((err as QmpError).qmpClass).toBe('DeviceNotActive');
    c.close();
  });

  test('a hanging QEMU makes the call time out instead of hanging; a closed socket fails pending calls', async () => {
    let sockets: net.Socket[] = [];
    behaviour = (line, sock) => {
      sockets.push(sock);
      if (line.includes('qmp_capabilities')) reply(line, sock, { return: {} });
    };
    const c = await QmpClient.connect(sockPath, 1000);
    const t0 = Date.now();
    const e1 = await c.execute('query-status', undefined, 150).catch((e: unknown) => e);
    expect((e1 as QmpError).qmpClass).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(1000);
    const pending = c.execute('query-status', undefined, 5000).catch((e: unknown) => e);
    let closed = false;
    c.on('close', () => (closed = true));
    for (const s of sockets) s.destroy();
    sockets = [];
    expect(((await pending) as QmpError).qmpClass).toBe('closed');
    expect(closed).toBe(true);
    expect(((await c.execute('x', undefined, 100).catch((e: unknown) => e)) as QmpError).qmpClass).toBe('closed');
  });

  test('no greeting within the time limit, and a peer that is not QMP, are clear errors', async () => {
    behaviour = () => undefined;
    const quiet = net.createServer(() => undefined);
    const quietPath = path.join(dir, 'quiet.sock');
    await new Promise<void>((r) => quiet.listen(quietPath, r));
    await expect(QmpClient.connect(quietPath, 100)).rejects.toThrow(/no QMP greeting/);
    await new Promise((r) => quiet.close(r));
    const liar = net.createServer((s) => s.write('{"hello": 1}\n'));
    const liarPath = path.join(dir, 'liar.sock');
    await new Promise<void>((r) => liar.listen(liarPath, r));
    await expect(QmpClient.connect(liarPath, 1000)).rejects.toThrow(/not a QMP server/);
    await new Promise((r) => liar.close(r));
    await expect(QmpClient.connect(path.join(dir, 'none.sock'), 100)).rejects.toThrow(/cannot connect/);
  });
});

describe('qemu driver configuration', () => {
  const compile = (yaml: object) => compileConfig(yaml, '/etc/magrathea', {});
  const problems = (yaml: object): string[] => {
    try {
      compile(yaml);
      return [];
    } catch (e) {
      return (e as ConfigError).problems as string[];
    }
  };
  test('defaults and resolved paths', () => {
    const c = compile({
      stateDir: '/var/lib/magrathea',
      driver: { kind: 'qemu' },
      domains: [{ name: 'meta', preemption: 'pause', vm: { kernel: 'guest/vmlinux', memoryMiB: 512 } }],
    });
    expect(c.driver.qemu).toMatchObject({
      binary: 'qemu-system-x86_64',
      accel: 'auto',
      runDir: '/var/lib/magrathea/qemu',
      cgroup: { mount: '/sys/fs/cgroup', root: 'magrathea' },
    });
    expect(c.domains[0]!.vm).toMatchObject({ kernel: '/etc/magrathea/guest/vmlinux', memoryMiB: 512, cpus: 1 });
  });
  test('every problem at once, with its path', () => {
    expect(
      problems({
        driver: { kind: 'qemu', qemu: { cgroup: false, accel: 'xen', bogus: 1 } },
        domains: [
          { name: 'a', vm: { memoryMiB: 32, idleMemoryMiB: 64 } },
          { name: 'b', preemption: 'pause' },
          { name: 'c', preemption: 'pause', vm: { kernel: '/k' }, command: ['/bin/true'] },
        ],
      }),
    ).toEqual(
      expect.arrayContaining([
        'driver.qemu.bogus: unknown key (allowed: binary, accel, runDir, cgroup, activeShares, idleShares, preemptedShares, qmpTimeoutMs, bootTimeoutMs, powerdownTimeoutMs, saveTimeoutMs, balloonSettleMs, balloonMarginMiB, reclaimDeadlineMs, onShortfall, reclaimStepMiB, reclaimStallMs, agentTimeoutMs, swapOffTimeoutMs)',
        'driver.qemu.accel: "xen" is not one of auto, kvm, tcg',
        'domains.0.vm.kernel: is required (path of the guest kernel)',
        'domains.0.vm.memoryMiB: must be an integer from 96 to 4194304, got 32',
        'domains.1.vm: is required with the qemu driver (kernel, memoryMiB, ...)',
        'domains.2.command: is only for the cgroup driver (driver.kind is qemu)',
      ]),
    );
    expect(
      problems({ driver: { kind: 'qemu', qemu: { cgroup: false } }, domains: [{ name: 'a', vm: { kernel: '/k' } }] }),
    ).toEqual([
      'domains.0.preemption: throttle needs driver.qemu.cgroup (the CPU weight of the VM); use pause or save, or configure the cgroup',
    ]);
    expect(problems({ domains: [{ name: 'a', vm: { kernel: '/k' } }] })).toEqual([
      'domains.0.vm: is only for the qemu driver (driver.kind is simulated)',
    ]);
  });
});

describe('libvirt driver parsing', () => {
  test('domstate --reason → power state', () => {
    expect(powerOf('running (booted)')).toBe('running');
    expect(powerOf('paused (user)')).toBe('paused');
    expect(powerOf('shut off (saved)')).toBe('saved');
    expect(powerOf('shut off (destroyed)')).toBe('shut-off');
    expect(powerOf('crashed (panicked)')).toBe('shut-off');
    expect(powerOf('blocked')).toBe('unknown');
  });
  test('key/value output of dominfo, schedinfo and dommemstat', () => {
    expect(parsePairs('Max memory:     1048576 KiB\nCPU time:       12.5s\nSecurity DOI:   ')).toEqual({
      'Max memory': '1048576 KiB',
      'CPU time': '12.5s',
      'Security DOI': '',
    });
    expect(parsePairs('actual 100000\nrss 50000')).toEqual({ actual: '100000', rss: '50000' });
  });
  test('arguments are quoted for virsh, and a quote that could break out is refused', () => {
    expect(virshQuote('/var/lib/magrathea/libvirt/meta.state')).toBe('/var/lib/magrathea/libvirt/meta.state');
    expect(virshQuote('a b')).toBe("'a b'");
    expect(() => virshQuote("x'; destroy y")).toThrow(/single quote/);
  });
});

describe('reclaim configuration', () => {
  const problems = (yaml: object): string[] => {
    try {
      compileConfig(yaml, '/etc/magrathea', {});
      return [];
    } catch (e) {
      return (e as ConfigError).problems as string[];
    }
  };
  const vm = { kernel: '/k', swapMiB: 512 };

  test('the knobs are checked; the guest agent is on by default for reclaim and cannot be turned off for it', () => {
    const c = compileConfig(
      {
        driver: { kind: 'qemu', qemu: { reclaimDeadlineMs: 5000, onShortfall: 'keep' } },
        domains: [{ name: 'a', preemption: 'reclaim', vm: { ...vm, onShortfall: 'save' } }],
      },
      '/etc/magrathea',
      {},
    );
    expect(c.driver.qemu).toMatchObject({ reclaimDeadlineMs: 5000, onShortfall: 'keep', reclaimStepMiB: 64 });
    expect(c.domains[0]!.vm).toMatchObject({
      guestAgent: null,
      swapMiB: 512,
      onShortfall: 'save',
      jobsCgroup: '/sys/fs/cgroup/jobs',
    });
    expect(
      problems({
        driver: { kind: 'qemu', qemu: { onShortfall: 'panic', reclaimDeadlineMs: 5 } },
        domains: [
          { name: 'a', preemption: 'reclaim', vm: { ...vm, guestAgent: false, jobsCgroup: '/tmp/x' } },
          { name: 'b', preemption: 'pause', vm: { ...vm, onShortfall: 'keep' } },
        ],
      }),
    ).toEqual([
      'driver.qemu.reclaimDeadlineMs: must be an integer from 100 to 3600000, got 5',
      'driver.qemu.onShortfall: "panic" is not one of save, keep',
      'domains.0.vm.jobsCgroup: "/tmp/x" is not a cgroup directory under /sys/fs/cgroup (letters, digits, _.:@+- only)',
      'domains.0.vm.guestAgent: reclaim stops the jobs and turns swap on through the guest agent; leave guestAgent on (or use throttle, pause or save)',
      'domains.1.vm: reclaimDeadlineMs and onShortfall apply to preemption: reclaim (this domain uses pause)',
    ]);
  });

  test('the cgroup driver takes reclaim and its settings; the libvirt driver refuses reclaim with the reason', () => {
    expect(
      problems({ driver: { kind: 'cgroup' }, domains: [{ name: 'a', preemption: 'reclaim', command: ['/bin/true'] }] }),
    ).toEqual([]);
    expect(
      problems({
        driver: { kind: 'cgroup', cgroup: { reclaimDeadlineMs: 50, reclaimStepMiB: 0 } },
        domains: [{ name: 'a', preemption: 'reclaim', command: ['/bin/true'] }],
      }),
    ).toEqual([
      'driver.cgroup.reclaimDeadlineMs: must be an integer from 100 to 3600000, got 50',
      'driver.cgroup.reclaimStepMiB: must be an integer from 1 to 1048576, got 0',
    ]);
    expect(
      problems({ driver: { kind: 'libvirt' }, domains: [{ name: 'a', preemption: 'reclaim', libvirtName: 'a' }] }),
    ).toEqual([expect.stringMatching(/^domains\.0\.preemption: reclaim is implemented by the qemu driver only/)]);
  });
});
