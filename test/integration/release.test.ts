/**
 * The release artifact as a site installs it: `packaging/release.js` (what `npm run release` runs)
 * builds it; it is installed into an empty prefix with an empty npm cache and --offline (no
 * registry), and the three binaries run from there, found on PATH: a daemon and a filter started
 * from the prefix serve the CLI from the prefix. The systemd units pass `systemd-analyze verify`
 * against the installed binaries. The plain tarball runs after extraction into another prefix.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { waitForLogLine } from '@magrathea/common';
import { ROOT, tmpDir } from '../helpers/processes';

const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const BINS = ['magrathea', 'magrathead', 'magrathea-filter', 'magrathea-relay'];
const hasSystemdAnalyze = (() => {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasSystemdAnalyze) {
  if (process.env.MAGRATHEA_REQUIRE_QEMU === '1')
    throw new Error('systemd-analyze is required (apt-get install systemd)');
  process.stdout.write('systemd unit checks skipped: systemd-analyze is missing (apt-get install systemd)\n');
}

describe('the release artifact', () => {
  let dir: string;
  let out: string;
  let prefix: string;
  /** PATH with only the prefix's bin and node's directory: nothing from the checkout. */
  let env: Record<string, string>;
  const children: ChildProcess[] = [];

  const run = (file: string, args: string[], opts: { cwd?: string } = {}) =>
    execFileSync(file, args, { cwd: opts.cwd ?? dir, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

  beforeAll(() => {
    dir = tmpDir('mg-release-');
    out = path.join(dir, 'release');
    prefix = path.join(dir, 'prefix');
    execFileSync(process.execPath, [path.join(ROOT, 'packaging/release.js'), '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    env = {
      PATH: [path.join(prefix, 'bin'), path.dirname(process.execPath), '/usr/bin', '/bin'].join(':'),
      HOME: dir,
    };
    // As a site does it: no registry (--offline), nothing cached (an empty --cache), an empty prefix.
    execFileSync(
      'npm',
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--offline',
        '--cache',
        path.join(dir, 'empty-npm-cache'),
        '--no-audit',
        '--no-fund',
        path.join(out, `magrathea-${VERSION}.tgz`),
      ],
      { cwd: dir, env: { ...env, PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` }, stdio: 'ignore' },
    );
  }, 300_000);

  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('release/ holds the npm tarball, the plain tarball, the units and their checksums', () => {
    expect(fs.readdirSync(out).sort()).toEqual(
      ['SHA256SUMS', `magrathea-${VERSION}.tar.gz`, `magrathea-${VERSION}.tgz`, 'systemd'].sort(),
    );
    const listing = run('tar', ['-tzf', path.join(out, `magrathea-${VERSION}.tgz`)]);
    // Compiled code, the contract, the hook; no sources or tests; the production dependencies bundled.
    expect(listing).toMatch(/package\/node_modules\/@magrathea\/common\/proto\/magrathea\/v1\/node_service\.proto/);
    expect(listing).toMatch(/package\/node_modules\/@magrathea\/pbs-hooks\/hooks\/magrathea_hook\.py/);
    expect(listing).toMatch(/package\/node_modules\/@grpc\/grpc-js\//);
    expect(listing).toMatch(/package\/systemd\/magrathead\.service/);
    // No sources or tests shipped — except the status page's static files, which are the runtime assets themselves.
    expect(listing).not.toMatch(/node_modules\/@magrathea\/[^/]+\/(src\/(?!web\/)|test\/)/);
    expect(listing).toMatch(/node_modules\/@magrathea\/scheduler-filter\/src\/web\/index\.html/);
    expect(listing).not.toMatch(/node_modules\/(typescript|jest|ts-jest|eslint|prettier|fast-check)\//);
    run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out });
  });

  test('every binary (magrathea, magrathead, magrathea-filter, magrathea-relay) is on PATH from the prefix, executable, and print the version', () => {
    for (const b of BINS) {
      const target = fs.realpathSync(path.join(prefix, 'bin', b));
      expect(target.startsWith(fs.realpathSync(prefix))).toBe(true);
      expect(fs.statSync(target).mode & 0o111).toBe(0o111);
      expect(run(b, ['--version']).trim()).toBe(VERSION);
    }
  });

  test('a daemon and a filter run from the prefix and serve the CLI from the prefix', async () => {
    const cfg = path.join(dir, 'magrathead.yaml');
    fs.writeFileSync(
      cfg,
      `node: { name: n1 }\nstateDir: ${dir}/state\nlisten: { tcp: "127.0.0.1:0", unixSocket: ${dir}/state/magrathead.sock }\n` +
        'domains: [{ name: meta, image: meta }, { name: priv, class: priority }]\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n',
    );
    const daemon = spawn('magrathead', ['--config', cfg], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(daemon);
    const ready = await waitForLogLine(daemon, 'magrathead ready', { timeoutMs: 30_000 });
    const status = JSON.parse(
      run('magrathea', ['status', '--node', `unix:${dir}/state/magrathead.sock`, '--json']),
    ) as {
      version: string;
      domains: { name: string }[];
    };
    expect(status.version).toBe(VERSION);
    expect(status.domains.map((d) => d.name)).toEqual(['meta', 'priv']);

    const fcfg = path.join(dir, 'filter.yaml');
    fs.writeFileSync(
      fcfg,
      `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }\nnodes: [{ name: n1, address: "127.0.0.1:${String(ready.tcpPort)}" }]\n`,
    );
    const filter = spawn('magrathea-filter', ['--config', fcfg], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(filter);
    const f = await waitForLogLine(filter, 'magrathea-filter ready', { timeoutMs: 30_000 });
    const metrics = await (await fetch(`http://127.0.0.1:${String(f.httpPort)}/metrics`)).text();
    expect(metrics).toContain(`magrathea_filter_build_info{version="${VERSION}"} 1`);
    let cluster = '';
    for (let i = 0; i < 100 && !/n1\s+up/.test(cluster); i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        cluster = run('magrathea', ['cluster', 'status', '--filter', `127.0.0.1:${String(f.grpcPort)}`]);
      } catch {
        cluster = '';
      }
    }
    expect(cluster).toMatch(/n1\s+up\s+\d+\s+n1-meta=free→normal/);
    for (const c of [filter, daemon]) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }
  }, 90_000);

  test('the plain tarball, extracted into another prefix, runs too', () => {
    const other = path.join(dir, 'other-prefix');
    fs.mkdirSync(other);
    run('tar', ['-xzf', path.join(out, `magrathea-${VERSION}.tar.gz`), '-C', other]);
    for (const b of BINS) expect(run(path.join(other, 'bin', b), ['--version']).trim()).toBe(VERSION);
  });

  (hasSystemdAnalyze ? test : test.skip)(
    'the systemd units pass systemd-analyze verify against the installed binaries; a wrong path fails it',
    () => {
      const units = path.join(dir, 'units');
      fs.mkdirSync(units);
      for (const u of ['magrathead.service', 'magrathea-filter.service', 'magrathea-relay.service']) {
        const text = fs.readFileSync(path.join(out, 'systemd', u), 'utf8');
        expect(text).toMatch(/^ExecStart=\/opt\/magrathea\/bin\//m);
        expect(text).toMatch(/^After=network-online\.target/m);
        expect(text).toMatch(/^Restart=on-failure$/m);
        expect(text).toMatch(/^StandardOutput=journal$/m);
        fs.writeFileSync(path.join(units, u), text.replace(/\/opt\/magrathea\//g, `${prefix}/`));
      }
      expect(fs.readFileSync(path.join(units, 'magrathead.service'), 'utf8')).toMatch(
        /^After=network-online\.target libvirtd\.service$[\s\S]*^StateDirectory=magrathea$/m,
      );
      const verify = (file: string) =>
        execFileSync('systemd-analyze', ['verify', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      for (const u of fs.readdirSync(units)) expect(() => verify(path.join(units, u))).not.toThrow();
      const broken = path.join(units, 'broken.service');
      fs.writeFileSync(
        broken,
        fs.readFileSync(path.join(units, 'magrathead.service'), 'utf8').replace(`${prefix}/bin`, '/nonexistent/bin'),
      );
      expect(() => verify(broken)).toThrow(/is not executable|No such file/);
    },
  );
});
