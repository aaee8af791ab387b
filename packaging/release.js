#!/usr/bin/env node
/**
 * `npm run release`: the installable product, built from the compiled workspaces into release/
 * (or `--out DIR`):
 *
 *   magrathea-VERSION.tgz        one npm package with every production dependency bundled in:
 *                                `npm install -g --offline [--prefix /opt/magrathea] magrathea-VERSION.tgz`
 *                                needs no registry; it puts magrathea, magrathead, magrathea-filter, magrathea-relay on PATH
 *   magrathea-VERSION.tar.gz     the same, already installed into a prefix (bin/ and lib/): for hosts
 *                                without npm, `tar -xzf magrathea-VERSION.tar.gz -C /opt/magrathea`
 *   systemd/*.service            the units (also inside both, under lib/node_modules/magrathea/systemd/)
 *   SHA256SUMS
 *
 * Before packing it checks what makes a package that does not run: every workspace has the same
 * version, no stale compiled file without its source, every module a package requires is
 * declared in its dependencies, every bin is there. After packing it installs the tarball into an
 * empty prefix with an empty npm cache and --offline, and runs `--version` of every binary.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const { builtinModules } = require('node:module');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const WORKSPACES = ['common', 'node-daemon', 'scheduler-filter', 'pbs-hooks', 'cli'];
/** The product's binaries: the workspace and the bin name in its package.json. */
/** @type {Record<string, [string, string]>} */
const BINS = {
  magrathea: ['cli', 'magrathea'],
  magrathead: ['node-daemon', 'magrathead'],
  'magrathea-filter': ['scheduler-filter', 'magrathea-filter'],
  'magrathea-relay': ['scheduler-filter', 'magrathea-relay'],
};

/** @param {string} msg @returns {never} */
function fail(msg) {
  process.stderr.write(`release: ${msg}\n`);
  process.exit(1);
}

/** @param {string} file @returns {Record<string, any>} */
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));

/** @param {string} dir @param {(f: string) => boolean} keep @returns {string[]} */
function filesUnder(dir, keep) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => keep(path.join(dir, f)));
}

/** @param {string} file @param {string[]} args @param {{ cwd?: string }} [opts] */
function run(file, args, opts = {}) {
  return execFileSync(file, args, { cwd: opts.cwd ?? ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The package a module specifier names (`@grpc/grpc-js/build/x` → `@grpc/grpc-js`), or null for builtins and relatives. */
function packageOf(/** @type {string} */ spec) {
  if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0] ?? ''))
    return null;
  const parts = spec.split('/');
  return spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? null);
}

/** Checks one workspace; returns its package.json. */
function checkWorkspace(/** @type {string} */ ws, /** @type {string} */ version) {
  const dir = path.join(ROOT, 'packages', ws);
  const pj = readJson(path.join(dir, 'package.json'));
  if (pj.version !== version) fail(`${pj.name} is version ${pj.version}, the release is ${version}: keep them equal`);
  const dist = path.join(dir, 'dist');
  if (!fs.existsSync(dist)) fail(`${dist} is missing: run npm run build`);
  // A compiled file whose source is gone would ship (tsc --build never deletes outputs).
  const stale = filesUnder(dist, (f) => f.endsWith('.js')).filter(
    (f) => !fs.existsSync(path.join(dir, 'src', f.replace(/\.js$/, '.ts'))),
  );
  if (stale.length > 0)
    fail(
      `${pj.name}: dist/ has files without a source (${stale.slice(0, 3).join(', ')}): run npx tsc --build --clean && npm run build`,
    );
  const declared = new Set(Object.keys(pj.dependencies ?? {}));
  const missing = new Set();
  for (const f of filesUnder(dist, (x) => x.endsWith('.js'))) {
    const text = fs.readFileSync(path.join(dist, f), 'utf8');
    for (const m of text.matchAll(/require(?:\.resolve)?\("([^"]+)"\)/g)) {
      const p = packageOf(m[1] ?? '');
      if (p && p !== pj.name && !declared.has(p)) missing.add(`${p} (in dist/${f})`);
    }
  }
  if (missing.size > 0) fail(`${pj.name} uses undeclared dependencies: ${[...missing].join(', ')}`);
  for (const [bin, file] of Object.entries(pj.bin ?? {}))
    if (!fs.existsSync(path.join(dir, file))) fail(`${pj.name}: bin ${bin} → ${file} is missing`);
  return pj;
}

function main() {
  const argv = process.argv.slice(2);
  const outArg = argv.indexOf('--out');
  const out = path.resolve(
    outArg >= 0 ? (argv[outArg + 1] ?? fail('--out needs a directory')) : path.join(ROOT, 'release'),
  );
  const version = readJson(path.join(ROOT, 'package.json')).version;
  /** @type {Record<string, Record<string, any>>} */
  const pjs = {};
  for (const ws of WORKSPACES) pjs[ws] = checkWorkspace(ws, version);
  const pj = (/** @type {string} */ ws) => pjs[ws] ?? fail(`no workspace ${ws}`);
  for (const [bin, [ws, name]] of Object.entries(BINS))
    if (!pj(ws).bin?.[name]) fail(`${pj(ws).name} does not declare the ${bin} binary`);

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'magrathea-release-'));
  try {
    // 1. Each workspace as npm packs it (its `files`; common's prepack copies proto/ in).
    const tgz = path.join(work, 'tgz');
    fs.mkdirSync(tgz);
    /** @type {Record<string, string>} */
    const tarballs = {};
    for (const ws of WORKSPACES) {
      const name =
        run('npm', ['pack', '-w', pj(ws).name, '--pack-destination', tgz, '--silent'])
          .trim()
          .split('\n')
          .pop() ?? '';
      tarballs[pj(ws).name] = path.join(tgz, name);
    }
    // 2. The product package: the workspaces and their production dependencies, bundled.
    const stage = path.join(work, 'magrathea');
    fs.mkdirSync(stage);
    const bin = Object.fromEntries(
      Object.entries(BINS).map(([b, [ws, name]]) => [b, `node_modules/${pj(ws).name}/${pj(ws).bin[name]}`]),
    );
    const product = {
      name: 'magrathea',
      version,
      description: readJson(path.join(ROOT, 'package.json')).description,
      license: 'Apache-2.0',
      engines: { node: '>=20' },
      bin,
      files: ['systemd', 'README.md'],
      dependencies: Object.fromEntries(Object.entries(tarballs).map(([n, f]) => [n, `file:${f}`])),
    };
    fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(product, null, 2));
    run(
      'npm',
      ['install', '--omit=dev', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock'],
      {
        cwd: stage,
      },
    );
    fs.cpSync(path.join(ROOT, 'packaging/systemd'), path.join(stage, 'systemd'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'README.md'), path.join(stage, 'README.md'));
    const bundled = {
      ...product,
      dependencies: Object.fromEntries(Object.keys(tarballs).map((n) => [n, version])),
      bundleDependencies: Object.keys(tarballs),
    };
    fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(bundled, null, 2)}\n`);
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out, { recursive: true });
    const tarball = path.join(
      out,
      run('npm', ['pack', '--pack-destination', out, '--silent'], { cwd: stage }).trim().split('\n').pop() ?? '',
    );

    // 3. Install it as a site would, with no registry: an empty prefix, an empty cache, --offline.
    const prefix = path.join(work, 'prefix');
    run('npm', [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--offline',
      '--cache',
      path.join(work, 'empty-cache'),
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      tarball,
    ]);
    for (const b of Object.keys(BINS)) {
      const v = run(path.join(prefix, 'bin', b), ['--version']).trim();
      if (v !== version) fail(`the installed ${b} --version says "${v}", not ${version}`);
    }
    const plain = path.join(out, `magrathea-${version}.tar.gz`);
    run('tar', ['-czf', plain, '-C', prefix, 'bin', 'lib']);
    fs.cpSync(path.join(ROOT, 'packaging/systemd'), path.join(out, 'systemd'), { recursive: true });
    const sums = [tarball, plain, ...fs.readdirSync(path.join(out, 'systemd')).map((f) => path.join(out, 'systemd', f))]
      .map((f) => `${crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex')}  ${path.relative(out, f)}`)
      .join('\n');
    fs.writeFileSync(path.join(out, 'SHA256SUMS'), `${sums}\n`);
    const size = (/** @type {string} */ f) => `${(fs.statSync(f).size / 1024 / 1024).toFixed(1)} MB`;
    process.stdout.write(
      [
        `release ${version} in ${out}:`,
        `  ${path.basename(tarball)} (${size(tarball)}): npm install -g --offline [--prefix /opt/magrathea] ${path.basename(tarball)}`,
        `  ${path.basename(plain)} (${size(plain)}): tar -xzf ${path.basename(plain)} -C /opt/magrathea`,
        `  systemd/: ${fs.readdirSync(path.join(out, 'systemd')).join(', ')}`,
        '  checked: installed offline into an empty prefix; magrathea, magrathead, magrathea-filter, magrathea-relay --version',
        '',
      ].join('\n'),
    );
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main();
