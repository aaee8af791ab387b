import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileConfig, DEFAULT_CONFIG_YAML, loadConfig, parseConfigText } from '../../src/config/load-config';
import { InputFileError } from '@magrathea/common';
import { ConfigError } from '../../src/errors';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const DOMAIN_DEFAULTS = {
  autostart: true,
  image: '',
  lifecycle: 'persistent',
  keepFailed: 0,
  wakeOnDemand: false,
  idleShutdownMs: 0,
  bootBackoffMs: 60_000,
};
const compile = (yaml: string) => compileConfig(parseConfigText(yaml, 'test.yaml'), '/etc/magrathea', {}, 'host1');

describe('config', () => {
  test('the embedded default: meta and egee normal, priv priority, simulated driver, loopback only', () => {
    const c = loadConfig(undefined, {}, '/srv');
    expect(
      c.domains.map(
        ({ tokenFile, command, preemption, vm, libvirtName, hostName, network, ...rest }) => (
          expect([tokenFile, command, preemption, vm, libvirtName, hostName, network]).toEqual([
            null,
            [],
            'throttle',
            null,
            null,
            null,
            null,
          ]),
          rest
        ),
      ),
    ).toEqual([
      { name: 'meta', class: 'normal', ...DOMAIN_DEFAULTS },
      { name: 'egee', class: 'normal', ...DOMAIN_DEFAULTS },
      { name: 'priv', class: 'priority', ...DOMAIN_DEFAULTS },
    ]);
    expect(c.driver.kind).toBe('simulated');
    expect(c.listen.tcp).toEqual({ host: '127.0.0.1', port: 5678 });
    expect(c.stateDir).toBe('/srv/.magrathea');
    expect(c.listen.unixSocket).toBe('/srv/.magrathea/magrathead.sock');
    expect(DEFAULT_CONFIG_YAML).toContain('priority');
  });

  test('every problem is reported at once, each with the path of the bad field', () => {
    const p = problems(() =>
      compile(`
node: { name: "bad name!" }
listen: { tcp: "0.0.0.0:99999", colour: blue }
driver: { kind: xen }
domains:
  - { name: meta, class: batch }
  - { name: meta }
  - { class: normal }
  - { name: priv, class: priority, extra: 1 }
reconcileCron: "every minute"
snapshotEvery: 0
log: { level: loud }
surprise: true
`),
    );
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^node\.name: /),
        expect.stringMatching(/^listen\.colour: unknown key/),
        expect.stringMatching(/^listen\.tcp: .*out of range/),
        expect.stringMatching(/^driver\.kind: "xen" is not one of simulated/),
        expect.stringMatching(/^domains\.0\.class: "batch" is not one of normal, priority/),
        expect.stringMatching(/^domains\.1\.name: duplicate domain name "meta"/),
        expect.stringMatching(/^domains\.2\.name: is required/),
        expect.stringMatching(/^domains\.3\.extra: unknown key/),
        expect.stringMatching(/^reconcileCron: .*not a valid cron/),
        expect.stringMatching(/^snapshotEvery: must be an integer/),
        expect.stringMatching(/^log\.level: "loud"/),
        expect.stringMatching(/^surprise: unknown key/),
      ]),
    );
    expect(p.length).toBeGreaterThanOrEqual(12);
  });

  test('plaintext beyond loopback is refused unless the config says so explicitly', () => {
    const yaml = 'listen: { tcp: "10.1.2.3:5678" }\ndomains: [{ name: a }]\n';
    expect(problems(() => compile(yaml))).toEqual([
      expect.stringMatching(/^listen\.tcp: 10\.1\.2\.3 is not a loopback address/),
    ]);
    const ok = compile('listen: { tcp: "10.1.2.3:5678", allowNonLoopback: true }\ndomains: [{ name: a }]\n');
    expect(ok.listen.tcp?.host).toBe('10.1.2.3');
  });

  test('a bare listen.tls (children commented out, say) is a mistake, not plaintext', () => {
    const yaml = 'listen:\n  tcp: "127.0.0.1:5678"\n  tls:\n  #  ca: ca.pem\ndomains: [{ name: a }]\n';
    expect(problems(() => compile(yaml))).toEqual([
      'listen.tls: is empty: give ca, cert and key, or leave the key out for plaintext',
    ]);
    expect(compile('listen: { tcp: "127.0.0.1:5678" }\ndomains: [{ name: a }]\n').listen.tls).toBeNull();
  });

  test('a TCP-only address names only the TCP forms, and --listen problems name the option and --socket', () => {
    const d = 'domains: [{ name: a, tokenFile: /t }]\n';
    expect(problems(() => compile(`listen: { tcp: foo }\nhookApi: { listen: "unix:/x" }\n${d}`))).toEqual([
      'listen.tcp: must be HOST:PORT or [IPv6]:PORT, got "foo"',
      'hookApi.listen: must be HOST:PORT or [IPv6]:PORT, got "unix:/x"',
    ]);
    expect(problems(() => compile(`listen: { tcp: "unix:/x" }\n${d}`))).toEqual([
      'listen.tcp: must be HOST:PORT or [IPv6]:PORT (a Unix socket goes in listen.unixSocket)',
    ]);
    const withListen = (listen: string) =>
      compileConfig(parseConfigText(d, 'test.yaml'), '/etc/magrathea', { listen }, 'host1');
    expect(problems(() => withListen('foo'))).toEqual(['--listen: must be HOST:PORT or [IPv6]:PORT, got "foo"']);
    expect(problems(() => withListen('unix:/x'))).toEqual([
      '--listen: must be HOST:PORT or [IPv6]:PORT (a Unix socket goes in --socket)',
    ]);
    expect(problems(() => withListen(''))).toEqual(['--listen: must be HOST:PORT or [IPv6]:PORT, got ""']);
  });

  test('--state-dir and --socket are checked as the path fields they override are, naming the flag', () => {
    const d = 'domains: [{ name: a, tokenFile: /t }]\n';
    const withFlags = (o: { stateDir?: string; socket?: string }) =>
      compileConfig(parseConfigText(d, 'test.yaml'), '/etc/magrathea', o, 'host1');
    expect(problems(() => withFlags({ stateDir: '', socket: '' }))).toEqual([
      '--state-dir: must be a non-empty string',
      '--socket: must be a non-empty string',
    ]);
    expect(problems(() => withFlags({ stateDir: '/var/lib/m\nx', socket: '/run/m\tx.sock' }))).toEqual([
      '--state-dir: "/var/lib/m\\nx" contains a control character (newline, tab, NUL…): not a usable path',
      '--socket: "/run/m\\tx.sock" contains a control character (newline, tab, NUL…): not a usable path',
    ]);
    expect(withFlags({ stateDir: '/var/lib/m', socket: 'unix:/run/m.sock' }).listen.unixSocket).toBe('/run/m.sock');
  });

  test('domains are required; YAML syntax errors carry line and column; duplicate keys are errors', () => {
    expect(problems(() => compile('stateDir: /x\n'))).toEqual(['domains: is required: list the domains of this node']);
    expect(problems(() => compile('domains: [ { name: a }\n  oops: ]'))[0]).toMatch(/^test\.yaml:\d+:\d+: /);
    expect(problems(() => compile('domains: []\ndomains: []\n'))[0]).toMatch(/^test\.yaml:2:1: /);
  });

  test('a path with a newline, tab or NUL is refused with its field, not used as a directory name', () => {
    expect(
      problems(() =>
        compile(
          'stateDir: "/var/lib/m\\nx"\nlisten: { unixSocket: "/run/m\\t.sock" }\n' +
            'domains: [{ name: a, tokenFile: "/etc/t\\u0000" }]\n',
        ),
      ),
    ).toEqual([
      'stateDir: "/var/lib/m\\nx" contains a control character (newline, tab, NUL…): not a usable path',
      'listen.unixSocket: "/run/m\\t.sock" contains a control character (newline, tab, NUL…): not a usable path',
      'domains.0.tokenFile: "/etc/t\\u0000" contains a control character (newline, tab, NUL…): not a usable path',
    ]);
  });

  test('a number YAML reads as infinite or NaN is named as such, not as null', () => {
    expect(problems(() => compile('domains: [{ name: a }]\nsnapshotEvery: 1e400\nheartbeatMs: .nan\n'))).toEqual([
      'snapshotEvery: must be an integer from 1 to 10000000, got Infinity',
      'heartbeatMs: must be an integer from 100 to 600000, got NaN',
    ]);
  });

  test('a missing or unreadable file is a clear error of its own (exit 66, not 78)', () => {
    expect(() => loadConfig('/nonexistent/magrathea.yaml', {}, '/')).toThrow(InputFileError);
    expect(() => loadConfig('/nonexistent/magrathea.yaml', {}, '/')).toThrow(
      'cannot read the configuration file /nonexistent/magrathea.yaml (ENOENT: no such file)',
    );
  });

  test('relative paths resolve against the config file; command-line overrides win', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-cfg-'));
    const f = path.join(dir, 'm.yaml');
    fs.writeFileSync(
      f,
      'stateDir: state\nlisten: { unixSocket: s.sock, tcp: null }\ndomains: [{ name: a, autostart: false }]\n',
    );
    const c = loadConfig(f, {}, '/');
    expect(c.stateDir).toBe(path.join(dir, 'state'));
    expect(c.listen).toEqual({ tcp: null, unixSocket: path.join(dir, 's.sock'), allowNonLoopback: false, tls: null });
    const o = loadConfig(f, { stateDir: '/var/x', listen: '127.0.0.1:0' }, '/');
    expect(o.stateDir).toBe('/var/x');
    expect(o.listen.tcp).toEqual({ host: '127.0.0.1', port: 0 });
    fs.rmSync(dir, { recursive: true });
  });

  test('simulated driver scripting is validated too', () => {
    const c = compile(
      'driver: { kind: simulated, simulated: { latencyMs: { boot: 5, preempt: 2 }, failures: [{ op: grow, domain: priv, times: 2 }] } }\ndomains: [{ name: priv, class: priority }]\n',
    );
    expect(c.driver.simulated).toMatchObject({
      latencyMs: { boot: 5, preempt: 2 },
      failures: [{ op: 'grow', domain: 'priv', times: 2 }],
    });
    expect(
      problems(() =>
        compile(
          'driver: { simulated: { latencyMs: { boot: -1, teleport: 3 }, failures: [{ op: fly }] } }\ndomains: [{ name: a }]\n',
        ),
      ),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^driver\.simulated\.latencyMs\.teleport: unknown key/),
        expect.stringMatching(/^driver\.simulated\.latencyMs\.boot: must be an integer/),
        expect.stringMatching(/^driver\.simulated\.failures\.0\.op: "fly" is not one of/),
      ]),
    );
  });
});

describe('hook API config', () => {
  test('disabled by default; enabled with a loopback listen address and per-domain token files', () => {
    expect(compile('domains: [{ name: a }]\n').hookApi).toBeNull();
    const c = compile('hookApi: { listen: "127.0.0.1:5679" }\ndomains: [{ name: a, tokenFile: tokens/a }]\n');
    expect(c.hookApi).toEqual({ host: '127.0.0.1', port: 5679, maxBodyBytes: 4096, requestTimeoutMs: 5000 });
    expect(c.domains[0]!.tokenFile).toBe('/etc/magrathea/tokens/a');
  });

  test('a non-loopback hook API needs an explicit opt-in; a hook API without any token is an error', () => {
    expect(
      problems(() => compile('hookApi: { listen: "192.0.2.1:5679" }\ndomains: [{ name: a, tokenFile: /t }]\n')),
    ).toEqual([expect.stringMatching(/^hookApi\.listen: 192\.0\.2\.1 is not a loopback address/)]);
    expect(
      compile('hookApi: { listen: "192.0.2.1:5679", allowNonLoopback: true }\ndomains: [{ name: a, tokenFile: /t }]\n')
        .hookApi?.host,
    ).toBe('192.0.2.1');
    expect(problems(() => compile('hookApi: { listen: "127.0.0.1:1" }\ndomains: [{ name: a }]\n'))).toEqual([
      expect.stringMatching(/^domains: the hook API is enabled but no domain has a tokenFile/),
    ]);
    expect(problems(() => compile('hookApi: { maxBodyBytes: 1 }\ndomains: [{ name: a, tokenFile: /t }]\n'))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^hookApi\.listen: is required/),
        expect.stringMatching(/^hookApi\.maxBodyBytes: must be an integer/),
      ]),
    );
  });
});

describe('cgroup driver config', () => {
  test('every domain needs a command; options are validated', () => {
    expect(
      problems(() => compile('driver: { kind: cgroup }\ndomains: [{ name: a }, { name: b, command: [] }]\n')),
    ).toEqual([
      expect.stringMatching(/^domains\.1\.command: must be a non-empty list/),
      expect.stringMatching(/^domains\.0\.command: is required with the cgroup driver/),
      expect.stringMatching(/^domains\.1\.command: is required with the cgroup driver/),
    ]);
    const c = compile(
      'driver: { kind: cgroup, cgroup: { root: mg, idleShares: 32 } }\ndomains: [{ name: a, command: [/bin/sleep, "100"] }]\n',
    );
    expect(c.driver.cgroup).toMatchObject({
      mount: '/sys/fs/cgroup',
      root: 'mg',
      activeShares: 1024,
      idleShares: 32,
      preemptedShares: 2,
    });
    expect(c.domains[0]!.command).toEqual(['/bin/sleep', '100']);
    expect(
      problems(() =>
        compile(
          'driver: { kind: cgroup }\ndomains: [{ name: a, command: [x], preemption: save }, { name: b, command: [x], preemption: nap }]\n',
        ),
      ),
    ).toEqual([
      expect.stringMatching(/^domains\.1\.preemption: "nap" is not one of throttle, pause, save/),
      expect.stringMatching(/^domains\.0\.preemption: save is not possible with the cgroup driver here/),
    ]);
    expect(
      problems(() =>
        compile(
          'driver: { kind: cgroup, cgroup: { root: "../etc", spin: 1 } }\ndomains: [{ name: a, command: [x] }]\n',
        ),
      ),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^driver\.cgroup\.root: /),
        expect.stringMatching(/^driver\.cgroup\.spin: unknown key/),
      ]),
    );
  });
});

describe('cpuCounting config', () => {
  const base = 'driver: { kind: simulated }\ndomains:\n  - { name: meta, class: normal }\n';

  test('absent: exclusive mode (the default)', () => {
    expect(compile(base).cpuCounting).toBeNull();
  });

  test('the node’s CPUs as given, or the host’s', () => {
    expect(compile(`${base}cpuCounting: { cpus: 40 }`).cpuCounting).toEqual({ cpus: 40 });
    expect(compile(`${base}cpuCounting: {}`).cpuCounting).toEqual({ cpus: os.availableParallelism() });
  });

  test('bad values are reported with their path', () => {
    for (const bad of ['{ cpus: 0 }', '{ cpus: 2.5 }', '{ cpus: "4" }'])
      expect(problems(() => compile(`${base}cpuCounting: ${bad}`)).join('\n')).toMatch(/cpuCounting\.cpus/);
    expect(problems(() => compile(`${base}cpuCounting: { cpu: 4 }`)).join('\n')).toMatch(/cpuCounting.*cpu/);
    expect(problems(() => compile(`${base}cpuCounting: 4`)).join('\n')).toMatch(/cpuCounting/);
  });
});

/** domains[].lifecycle and domains[].keepFailed: defaults, what they need, and clear refusals. */
const bad = (yaml: string) => problems(() => compile(yaml));
const SHA = 'a'.repeat(64);
const qemu = (domains: string) => `
driver: { kind: qemu, qemu: { accel: tcg } }
images: [ { name: alpha, url: 'http://example.org/a.img', sha256: '${SHA}', format: raw } ]
domains:
${domains}`;
const VM = 'vm: { kernel: /boot/vmlinux, memoryMiB: 128 }';

describe('lifecycle config', () => {
  test('default persistent with nothing kept; revert and reboot with keepFailed on an image-based qemu domain', () => {
    const c = compile(
      qemu(`  - { name: a, image: alpha, ${VM} }
  - { name: b, image: alpha, lifecycle: revert, keepFailed: 3, ${VM} }
  - { name: r, image: alpha, lifecycle: reboot, ${VM} }`),
    );
    expect(c.domains.map((d) => [d.name, d.lifecycle, d.keepFailed])).toEqual([
      ['a', 'persistent', 0],
      ['b', 'revert', 3],
      ['r', 'reboot', 0],
    ]);
  });

  test('bad values and uses are refused with the field named', () => {
    expect(bad(qemu(`  - { name: a, image: alpha, lifecycle: snapshot, ${VM} }`))).toEqual([
      'domains.0.lifecycle: "snapshot" is not one of persistent, revert, reboot',
    ]);
    expect(bad(qemu(`  - { name: a, image: alpha, lifecycle: revert, keepFailed: -1, ${VM} }`))[0]).toMatch(
      /^domains\.0\.keepFailed: /,
    );
    expect(bad(qemu(`  - { name: a, image: alpha, keepFailed: 2, ${VM} }`))).toEqual([
      'domains.0.keepFailed: keeps overlays across resets: it needs lifecycle revert or reboot',
    ]);
    expect(bad(qemu(`  - { name: a, lifecycle: revert, vm: { kernel: /k, disk: /d.qcow2, memoryMiB: 128 } }`))).toEqual(
      [
        'domains.0.lifecycle: revert cannot make vm.disk clean again; give the domain a catalogue image (its disk is an overlay)',
      ],
    );
    expect(bad(qemu(`  - { name: a, lifecycle: reboot, keepFailed: 1, ${VM} }`))).toEqual([
      'domains.0.keepFailed: keeps the overlays of failed jobs: the domain needs a catalogue image',
    ]);
    expect(bad('domains: [ { name: a, lifecycle: revert } ]\n')).toEqual([
      'domains.0.lifecycle: revert needs the qemu driver (this node uses simulated)',
    ]);
  });
});

describe('wake-on-demand config', () => {
  test('defaults: not woken, never shut down idle, 60 s back-off; the fields on any driver', () => {
    const c = compile(
      'domains:\n  - { name: a, image: alpha, wakeOnDemand: true, idleShutdownMs: 600000, bootBackoffMs: 5000 }\n  - { name: b }\n',
    );
    expect(c.domains.map((d) => [d.name, d.wakeOnDemand, d.idleShutdownMs, d.bootBackoffMs])).toEqual([
      ['a', true, 600_000, 5000],
      ['b', false, 0, 60_000],
    ]);
  });

  test('bad values and uses are refused with the field named', () => {
    expect(bad('domains: [ { name: a, wakeOnDemand: true } ]\n')).toEqual([
      'domains.0.wakeOnDemand: a domain is woken for the image a job asks for: it needs domains[].image',
    ]);
    expect(bad('domains: [ { name: a, idleShutdownMs: -1 } ]\n')[0]).toMatch(/^domains\.0\.idleShutdownMs: /);
    expect(bad('domains: [ { name: a, bootBackoffMs: 1.5 } ]\n')[0]).toMatch(/^domains\.0\.bootBackoffMs: /);
    expect(bad('domains: [ { name: a, wakeOnDemand: maybe } ]\n')[0]).toMatch(/^domains\.0\.wakeOnDemand: /);
  });
});
