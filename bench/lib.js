// @ts-check
'use strict';
/** Shared helpers for the benchmarks: percentiles, tables, child daemons, machine facts. */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { waitForLogLine } = require('@magrathea/common');

/**
 * What a benchmark's `run()` resolves with: its BENCHMARKS.md section.
 * @typedef {object} BenchResult
 * @property {string} title
 * @property {{ head: string[], rows: unknown[][] }[]} sections tables
 * @property {string[]} notes
 */

const ROOT = path.resolve(__dirname, '..');
/**
 * The V8 flags a magrathead runs with: those of its shebang (`#!/usr/bin/env -S node FLAGS`),
 * read from the built binary, so the bench always runs it as installed.
 * @param {string} [root] the checkout (default this one)
 */
function daemonNodeFlags(root = ROOT) {
  const first = fs.readFileSync(path.join(root, 'packages/node-daemon/dist/main.js'), 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)\s*$/.exec(first);
  if (!m) throw new Error(`magrathead's shebang is not "#!/usr/bin/env -S node FLAGS": ${first}`);
  return (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
}
const DAEMON_NODE_FLAGS = daemonNodeFlags();

/**
 * @param {readonly number[]} sorted ascending
 * @param {number} p percent
 */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return /** @type {number} */ (sorted[i]);
}

/** @param {readonly number[]} samplesMs */
function summarize(samplesMs) {
  const s = [...samplesMs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? NaN, mean };
}

/**
 * @param {unknown} x
 * @param {number} [digits]
 */
function fmt(x, digits = 3) {
  // A measure with no samples (a percentile or rate of none: NaN) says so, never "NaN".
  if (typeof x === 'number') return Number.isFinite(x) ? x.toFixed(digits) : 'no samples';
  return String(x);
}

/**
 * Markdown table from a header row and rows.
 * @param {readonly string[]} head
 * @param {readonly (readonly unknown[])[]} rows
 */
function markdownTable(head, rows) {
  // No table ever shows NaN: a cell computed from no samples says so (whatever bench built it).
  const cell = (/** @type {unknown} */ c) =>
    typeof c === 'number' && !Number.isFinite(c)
      ? 'no samples'
      : String(c).replace(/(?<![\w.])-?NaN(?![\w.])/g, 'no samples');
  const line = (/** @type {readonly unknown[]} */ r) => `| ${r.map(cell).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

function machine() {
  const cpu = os.cpus()[0];
  return `${os.cpus().length} × ${cpu ? cpu.model.trim() : 'unknown CPU'}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, ${os.type()} ${os.release()}`;
}

/** Child processes a benchmark started and has not seen exit (killed with their groups by `killAll`). */
const live = new Set();

/**
 * Counts a child as live until it exits.
 * @template {import('node:child_process').ChildProcess} P
 * @param {P} proc
 * @returns {P}
 */
function track(proc) {
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return proc;
}

/**
 * SIGKILL to a process group (a daemon started detached and whatever it started: virsh, QEMU).
 * @param {number | undefined} pid
 */
function killGroup(pid) {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Kills every live child and its group (a benchmark that failed or was interrupted). */
function killAll() {
  for (const p of live) {
    killGroup(p.pid);
    p.kill('SIGKILL');
  }
  live.clear();
}

/**
 * Starts magrathead (built) and resolves once it logs "magrathead ready". `root`: another
 * checkout's build (a baseline), run with its own shebang's flags; `nodeFlags`: more V8 flags after those.
 * @param {{ stateDir: string, config?: string, root?: string, nodeFlags?: readonly string[] }} o
 */
async function spawnDaemon({ stateDir, config, root = ROOT, nodeFlags = [] }) {
  const bin = path.join(root, 'packages/node-daemon/dist/main.js');
  const socket = path.join(stateDir, 'd.sock');
  const args = [
    ...(root === ROOT ? DAEMON_NODE_FLAGS : daemonNodeFlags(root)),
    ...nodeFlags,
    bin,
    '--state-dir',
    stateDir,
    '--listen',
    '127.0.0.1:0',
    '--socket',
    socket,
    '--log-level',
    'info',
  ];
  if (config) {
    const f = `${stateDir}.yaml`;
    fs.writeFileSync(f, config);
    args.push('--config', f);
  }
  // Its own process group: what it starts (virsh sessions, QEMU) is killed with it.
  const proc = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], detached: true }));
  const rec = await waitForLogLine(proc, 'magrathead ready', { timeoutMs: 15000 }).catch((err) => {
    killGroup(proc.pid);
    throw err;
  });
  return {
    proc,
    port: /** @type {number} */ (rec.tcpPort),
    /** gRPC writes (StartJob, EndJob, DomainAction) go over the Unix socket: plaintext TCP serves only reads. */
    socket,
    hookPort: /** @type {number | null} */ (rec.hookPort),
    /** SIGTERM; SIGKILL to its group after 15 s; whatever of its group is left is killed too. */
    stop: () =>
      new Promise((r) => {
        const done = () => {
          clearTimeout(timer);
          killGroup(proc.pid);
          r(undefined);
        };
        if (proc.exitCode !== null || proc.signalCode !== null) return done();
        const timer = setTimeout(() => killGroup(proc.pid), 15_000);
        proc.once('exit', done);
        proc.kill('SIGTERM');
      }),
  };
}

/**
 * Starts the real magrathea-filter watching `nodes` ([{name, port}] on 127.0.0.1) and publishing
 * through a qmgr stand-in that discards its input (one process per batch, as in production).
 * Resolves with {proc, grpcPort, httpPort, webPort} once it logs its ports; `extra` lines are added to its config.
 * `commandHelper: false` makes the filter fork each qmgr itself (the baseline before issue 15).
 * @param {{ dir: string, nodes: readonly ({ name: string, host?: string, port: number } | { name: string, relay: string })[], batchDelayMs?: number, graceMs?: number, nodeArgs?: readonly string[], extra?: readonly string[], commandHelper?: boolean }} o
 */
async function startSinkFilter({
  dir,
  nodes,
  batchDelayMs = 20,
  graceMs = 60000,
  nodeArgs = [],
  extra = [],
  commandHelper = true,
}) {
  const qmgr = path.join(dir, 'qmgr-sink.sh');
  fs.writeFileSync(qmgr, '#!/bin/sh\nexec cat > /dev/null\n', { mode: 0o755 });
  const cfg = path.join(dir, 'filter.yaml');
  fs.writeFileSync(
    cfg,
    [
      'listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }',
      `graceMs: ${graceMs}`,
      `pbs: { qmgr: ${qmgr}, qsig: /bin/true, batchDelayMs: ${batchDelayMs}, honestAccounting: false, commandHelper: ${commandHelper} }`,
      'log: { level: warn }',
      ...extra,
      'nodes:',
      // A node with `relay` is watched through that relay (listed in `extra` under relays:).
      ...nodes.map((n) =>
        'relay' in n
          ? `  - { name: ${n.name}, relay: ${n.relay} }`
          : `  - { name: ${n.name}, address: "${n.host ?? '127.0.0.1'}:${n.port}" }`,
      ),
      '',
    ].join('\n'),
  );
  const proc = track(
    spawn(
      process.execPath,
      [
        ...nodeArgs,
        path.join(ROOT, 'packages/scheduler-filter/dist/service/main.js'),
        '--config',
        cfg,
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
  const rec = await waitForLogLine(proc, 'magrathea-filter ready', { timeoutMs: 30000 }).catch((err) => {
    proc.kill('SIGKILL');
    throw err;
  });
  proc.stdout.resume();
  return {
    proc,
    grpcPort: /** @type {number} */ (rec.grpcPort),
    httpPort: /** @type {number} */ (rec.httpPort),
    webPort: /** @type {number | null} */ (rec.webPort ?? null),
  };
}

/**
 * RSS (bytes) and CPU seconds (user+sys) of a process, from /proc.
 * @param {number | undefined} pid
 */
function procStats(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (/** @type {string} */ k) =>
    Number(/** @type {RegExpExecArray} */ (new RegExp(`${k}:\\s+(\\d+)`).exec(status))[1]) * 1024;
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssBytes: kb('VmRSS'), anonBytes: kb('RssAnon'), fileBytes: kb('RssFile'), cpuSeconds: ticks / 100 };
}

/** @param {string} prefix */
function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** @typedef {import('@magrathea/common').NodeServiceClient} NodeServiceClient */

/**
 * A unary call with a deadline (10 s unless told).
 * @param {NodeServiceClient} client
 * @param {'GetNode' | 'StartJob' | 'EndJob' | 'DomainAction' | 'RemoveImage'} method
 * @param {object} req
 * @param {number} [timeoutMs]
 * @returns {Promise<any>}
 */
const unary = (client, method, req, timeoutMs = 10000) =>
  new Promise((resolve, reject) =>
    /** @type {(req: object, o: object, cb: (e: Error | null, r: unknown) => void) => void} */ (
      client[method].bind(client)
    )(req, { deadline: Date.now() + timeoutMs }, (e, r) => (e ? reject(e) : resolve(r))),
  );

module.exports = {
  ROOT,
  unary,
  startSinkFilter,
  track,
  killAll,
  DAEMON_NODE_FLAGS,
  daemonNodeFlags,
  percentile,
  summarize,
  fmt,
  markdownTable,
  machine,
  spawnDaemon,
  procStats,
  tmpDir,
};
