// @ts-check
'use strict';
/**
 * Node daemon benchmark: StartJob latency (no preemption, journal fsync included) through a real
 * magrathead process over gRPC on its Unix socket (plaintext TCP serves only reads), the same in-process (to show where the time goes),
 * and the idle daemon's RSS and CPU.
 */
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { createLogger, loadMagratheaApi } = require('@magrathea/common');
const { DomainManager, FileJournal, SimulatedDriver } = require('@magrathea/node-daemon');
const { spawn } = require('node:child_process');
const { summarize, fmt, spawnDaemon, procStats, tmpDir, unary, daemonNodeFlags, track, ROOT } = require('./lib');

const TOKEN = 'bench-token-0123456789abcdef';
const IDLE_WINDOW_MS = 30000;
/** @typedef {import('@magrathea/common').NodeServiceClient} NodeServiceClient */
const config = (/** @type {string} */ dir) => `
hookApi: { listen: "127.0.0.1:0" }
domains:
  - { name: meta, class: normal, tokenFile: ${dir}/meta.token }
  - { name: egee, class: normal, tokenFile: ${dir}/egee.token }
  - { name: priv, class: priority, tokenFile: ${dir}/priv.token }
driver: { kind: simulated, simulated: { latencyMs: { boot: 0 } } }
snapshotEvery: 1000
log: { level: warn }
`;

/** @param {NodeServiceClient} client */
async function waitFree(client) {
  for (let i = 0; i < 500; i++) {
    /** @type {import('@magrathea/common').NodeMessage} */
    const n = await unary(client, 'GetNode', {});
    if (n.domains.every((d) => d.state === 'free')) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('domains did not come up');
}

/**
 * POST to the hook API over a keep-alive connection (what the PBS hook's urllib does, minus its connect).
 * @param {http.Agent} agent
 * @param {number | null} port
 * @param {string} p
 * @param {object} body
 */
function hookPost(agent, port, p, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: p,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(data),
          authorization: `Bearer ${TOKEN}-meta`,
        },
      },
      (res) => {
        let t = '';
        res.on('data', (c) => (t += c));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(JSON.parse(t)) : reject(new Error(`${res.statusCode} ${t}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * @param {number} n
 * @param {string} [root] the checkout whose daemon is measured (default this one)
 */
async function grpcLatency(n, root = ROOT) {
  const dir = tmpDir('mg-bench-');
  for (const dname of ['meta', 'egee', 'priv']) fs.writeFileSync(path.join(dir, `${dname}.token`), `${TOKEN}-${dname}`);
  const d = await spawnDaemon({ stateDir: path.join(dir, 'state'), config: config(dir), root });
  const api = loadMagratheaApi();
  const client = new api.magrathea.v1.NodeService(`unix:${d.socket}`, grpc.credentials.createInsecure());
  await waitFree(client);
  await new Promise((r) => setTimeout(r, 2000));
  const fresh = procStats(d.proc.pid);
  // Warm-up, then keep one job in meta so further starts pack onto a running domain (no driver op).
  for (let i = 0; i < 200; i++) {
    await unary(client, 'StartJob', { domain: 'meta', job_id: `w${i}`, preemptible: true });
    await unary(client, 'EndJob', { domain: 'meta', job_id: `w${i}` });
  }
  // Baseline in the same run: a unary call that touches no journal.
  const base = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await unary(client, 'GetNode', {});
    base.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await unary(client, 'StartJob', { domain: 'meta', job_id: 'anchor', preemptible: true });
  const pack = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await unary(client, 'StartJob', { domain: 'meta', job_id: `p${i}`, preemptible: true });
    pack.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await unary(client, 'EndJob', { domain: 'meta', job_id: `p${i}` });
  }
  // The same through the hook API (HTTP/JSON, token check), as the execjob_begin hook calls it.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const hook = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await hookPost(agent, d.hookPort, '/v1/jobs/start', { job_id: `h${i}`, preemptible: true });
    hook.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await hookPost(agent, d.hookPort, '/v1/jobs/end', { job_id: `h${i}` });
  }
  agent.destroy();
  await unary(client, 'EndJob', { domain: 'meta', job_id: 'anchor' });
  // A start into a free domain also grows it (one driver op: intent + commit, two fsyncs).
  const grow = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await unary(client, 'StartJob', { domain: 'egee', job_id: `g${i}`, preemptible: true });
    grow.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await unary(client, 'EndJob', { domain: 'egee', job_id: `g${i}` });
  }
  client.close();
  await d.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    base: summarize(base),
    pack: summarize(pack),
    hook: summarize(hook),
    grow: summarize(grow),
    fresh,
  };
}

/**
 * The daemon idle after a busy spell: `pairs` StartJob/EndJob pairs (on a running domain and on a
 * free one, which grows it), then its CPU over two windows of IDLE_WINDOW_MS — the first holds V8's
 * memory-reducer collections (about 8 s after the last burst of allocation), the second is the
 * steady idle — and its memory at the end of each. `nodeFlags`: V8 flags added to the shebang's.
 * @param {number} pairs
 * @param {readonly string[]} nodeFlags
 */
async function afterLoad(pairs, nodeFlags) {
  const dir = tmpDir('mg-bench-load-');
  /** @type {Awaited<ReturnType<typeof spawnDaemon>> | null} */
  let d = null;
  /** @type {NodeServiceClient | null} */
  let client = null;
  try {
    for (const dname of ['meta', 'egee', 'priv'])
      fs.writeFileSync(path.join(dir, `${dname}.token`), `${TOKEN}-${dname}`);
    d = await spawnDaemon({ stateDir: path.join(dir, 'state'), config: config(dir), nodeFlags });
    const api = loadMagratheaApi();
    const c = new api.magrathea.v1.NodeService(`unix:${d.socket}`, grpc.credentials.createInsecure());
    client = c;
    await waitFree(c);
    // Two thirds packed onto a running domain (one job kept in it), then a third into a free one.
    const packed = Math.round((2 * pairs) / 3);
    await unary(c, 'StartJob', { domain: 'meta', job_id: 'anchor', preemptible: true });
    for (let i = 0; i < pairs; i++) {
      if (i === packed) await unary(c, 'EndJob', { domain: 'meta', job_id: 'anchor' });
      const domain = i < packed ? 'meta' : 'egee';
      await unary(c, 'StartJob', { domain, job_id: `l${i}`, preemptible: true });
      await unary(c, 'EndJob', { domain, job_id: `l${i}` });
    }
    const pid = d.proc.pid;
    const sample = async () => {
      const a = procStats(pid);
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
      const b = procStats(pid);
      return { end: b, cpuPct: ((b.cpuSeconds - a.cpuSeconds) / ((performance.now() - t0) / 1000)) * 100 };
    };
    await new Promise((r) => setTimeout(r, 3000));
    const first = await sample();
    const steady = await sample();
    return { first, steady };
  } finally {
    client?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * RSS of a daemon of `root` after start (domains up, one client connected, 2 s settled), or of a
 * bare `node` with the same V8 flags (`root` null: the floor), in a child stopped in finally.
 * @param {string | null} root
 */
async function afterStart(root) {
  const dir = tmpDir('mg-bench-idle-');
  /** @type {import('node:child_process').ChildProcess | null} */
  let bare = null;
  /** @type {Awaited<ReturnType<typeof spawnDaemon>> | null} */
  let d = null;
  /** @type {NodeServiceClient | null} */
  let client = null;
  try {
    if (root === null) {
      bare = track(
        spawn(process.execPath, [...daemonNodeFlags(), '-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' }),
      );
      await new Promise((r) => setTimeout(r, 2000));
      return procStats(bare.pid);
    }
    for (const dname of ['meta', 'egee', 'priv'])
      fs.writeFileSync(path.join(dir, `${dname}.token`), `${TOKEN}-${dname}`);
    d = await spawnDaemon({ stateDir: path.join(dir, 'state'), config: config(dir), root });
    const api = loadMagratheaApi();
    client = new api.magrathea.v1.NodeService(`unix:${d.socket}`, grpc.credentials.createInsecure());
    await waitFree(client);
    await new Promise((r) => setTimeout(r, 2000));
    return procStats(d.proc.pid);
  } finally {
    client?.close();
    bare?.kill('SIGKILL');
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Medians of `k` rounds of after-start RSS: the floor, this checkout's daemon and the baseline's
 * (if any), interleaved so that the machine's load weighs on all alike.
 * @param {number} k
 * @param {string | null} baseline
 */
async function footprints(k, baseline) {
  /** @type {Record<'floor' | 'after' | 'before', ReturnType<typeof procStats>[]>} */
  const got = { floor: [], after: [], before: [] };
  for (let i = 0; i < k; i++) {
    got.floor.push(await afterStart(null));
    got.after.push(await afterStart(ROOT));
    if (baseline) got.before.push(await afterStart(baseline));
  }
  const median = (/** @type {ReturnType<typeof procStats>[]} */ xs) => {
    if (xs.length === 0) return null;
    const s = [...xs].sort((a, b) => a.rssBytes - b.rssBytes);
    return /** @type {ReturnType<typeof procStats>} */ (s[Math.floor((s.length - 1) / 2)]);
  };
  return { floor: median(got.floor), after: median(got.after), before: median(got.before) };
}

/** @param {number} n */
async function inProcessLatency(n) {
  const dir = tmpDir('mg-bench-ip-');
  const logger = createLogger({ service: 'bench', level: 'silent' });
  const m = new DomainManager(
    {
      nodeName: 'bench',
      domains: [
        { name: 'meta', class: 'normal', autostart: true },
        { name: 'priv', class: 'priority', autostart: true },
      ],
      snapshotEvery: 1000,
      eventBacklog: 1024,
    },
    {
      journal: new FileJournal(path.join(dir, 'state')),
      driver: new SimulatedDriver({ latencyMs: { boot: 0 } }),
      clock: { now: () => Date.now() },
      logger,
    },
  );
  m.recover();
  await m.startDriver();
  await m.settleBoots();
  await m.execute({
    kind: 'start-job',
    domain: 'meta',
    jobId: 'anchor',
    preemptible: true,
    cpus: 1,
    expectedGeneration: 0,
  });
  const s = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await m.execute({
      kind: 'start-job',
      domain: 'meta',
      jobId: `j${i}`,
      preemptible: true,
      cpus: 1,
      expectedGeneration: 0,
    });
    s.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await m.execute({ kind: 'end-job', domain: 'meta', jobId: `j${i}` });
  }
  return summarize(s);
}

async function run() {
  const n = Number(process.env.BENCH_N ?? 2000);
  // BENCH_BASELINE: another checkout, built (e.g. a worktree of main), measured in the same run.
  const baseline = process.env.BENCH_BASELINE ? path.resolve(process.env.BENCH_BASELINE) : null;
  const starts = Number(process.env.BENCH_STARTS ?? 5);
  const before = baseline ? await grpcLatency(n, baseline) : null;
  const g = await grpcLatency(n);
  const ip = await inProcessLatency(n);
  const fp = await footprints(starts, baseline);
  const pairs = 3 * n + 200;
  // The shipped flags (V8's memory reducer on) against the same with it off, as before 2026-12-04.
  const load = await afterLoad(pairs, []);
  const loadNoReducer = await afterLoad(pairs, ['--no-memory-reducer']);
  /**
   * @param {string} label
   * @param {ReturnType<typeof summarize>} x
   * @param {[number, number]} [target]
   */
  const row = (label, x, target) => {
    const met = target ? (x.p50 <= target[0] && x.p99 <= target[1] ? 'met' : 'MISSED') : '—';
    return [label, x.n, fmt(x.p50), fmt(x.p99), fmt(x.max), target ? `≤ ${target[0]} / ≤ ${target[1]}` : '—', met];
  };
  const rows = [
    row('baseline: GetNode via gRPC (no journal)', g.base),
    row('StartJob via gRPC, domain already running (1 fsync)', g.pack, [1, 5]),
    row('StartJob via the hook API (HTTP/JSON + token), domain running (1 fsync)', g.hook, [1, 5]),
    row('StartJob via gRPC, free domain grown (2 fsyncs)', g.grow, [1, 5]),
    row('StartJob in-process (manager + journal fsync, no RPC)', ip),
  ];
  if (before)
    rows.push(
      row('before: GetNode via gRPC (no journal)', before.base),
      row('before: StartJob via gRPC, domain already running (1 fsync)', before.pack, [1, 5]),
      row('before: StartJob via the hook API, domain running (1 fsync)', before.hook, [1, 5]),
      row('before: StartJob via gRPC, free domain grown (2 fsyncs)', before.grow, [1, 5]),
    );
  const mb = (/** @type {number} */ x) => `${(x / 1024 ** 2).toFixed(1)} MB`;
  /**
   * @param {string} label
   * @param {ReturnType<typeof procStats> | null} x
   * @param {boolean} target
   */
  const rss = (label, x, target) =>
    x === null
      ? [label, 'not measured', '', '', '', '']
      : [
          label,
          mb(x.rssBytes),
          mb(x.anonBytes),
          mb(x.fileBytes),
          target ? '≤ 60 MB RSS' : '—',
          target ? (x.rssBytes <= 60 * 1024 ** 2 ? 'met' : 'MISSED') : '',
        ];
  const idle = [
    rss(`floor: a bare \`node\` with the same V8 flags (median of ${starts})`, fp.floor, false),
    rss(`idle RSS after start (median of ${starts} starts)`, fp.after, true),
    ...(baseline
      ? [rss(`before (${path.basename(baseline)}): idle RSS after start (median of ${starts})`, fp.before, true)]
      : []),
    rss("idle RSS after start, the latency run's daemon", g.fresh, true),
    .../** @type {[string, Awaited<ReturnType<typeof afterLoad>>][]} */ ([
      ['', load],
      ['before (`--no-memory-reducer`): ', loadNoReducer],
    ]).flatMap(([label, l]) => {
      const w = IDLE_WINDOW_MS / 1000;
      const cpu = (/** @type {string} */ what, /** @type {number} */ pct, /** @type {boolean} */ target) => [
        what,
        `${pct.toFixed(3)} %`,
        '',
        '',
        target ? '≤ 0.2 %' : '—',
        target ? (pct <= 0.2 ? 'met' : 'MISSED') : '',
      ];
      return [
        rss(`${label}idle RSS ${w + 3} s after ${pairs} StartJob/EndJob pairs`, l.first.end, true),
        rss(`${label}idle RSS ${2 * w + 3} s after them`, l.steady.end, true),
        cpu(`${label}idle CPU 3–${w + 3} s after them (when the memory reducer collects)`, l.first.cpuPct, false),
        cpu(`${label}idle CPU ${w + 3}–${2 * w + 3} s after them (steady)`, l.steady.cpuPct, true),
      ];
    }),
  ];
  return {
    title: 'Node daemon: StartJob latency and idle footprint',
    sections: [
      { head: ['operation', 'n', 'p50 ms', 'p99 ms', 'max ms', 'target p50/p99 ms', ''], rows },
      { head: ['measure', 'RSS', 'anonymous', 'file-backed', 'target', ''], rows: idle },
    ],
    notes: [
      'Real `magrathead` child process, simulated driver, real file journal (fdatasync per commit), gRPC over 127.0.0.1, one client, sequential calls.',
      'Reference point: the original Magrathea needed about 1.2 s per start check (CESNET TR 25/2007).',
      `The daemon runs with the V8 flags of its shebang, read from the built binary (\`${daemonNodeFlags().join(' ')}\`${baseline ? `; the baseline with its own: \`${daemonNodeFlags(baseline).join(' ')}\`` : ''}); the floor is a bare \`node\` with the same flags, measured in the same run. "file-backed" is mostly the node binary mapped from disk: shared and reclaimable under memory pressure. "anonymous" is the memory the daemon really takes from the VMs.`,
      'After start: the daemon with its three domains up, one gRPC client connected over its Unix socket, 2 s later; the median of several starts (floor, daemon and baseline interleaved) because one start varies by ±1.5 MB with when V8 last collected.',
      'Client and daemon share the 2 cores; the p99 tail is dominated by gRPC and scheduling, not by the journal (compare the in-process row).',
      'Idle footprint (issue 15): only the configured driver is loaded (the simulated one here; not the qemu, libvirt, cgroup, guest-agent or image-disk modules), server reflection is built on its first call, host metrics come from /proc/meminfo (no systeminformation), node-cron is loaded only for a configured cron expression, and the shebang delays TurboFan (`--interrupt-budget`: the start-up code run a few times is not optimized, about 5 MB) and sets 1 MB semi-spaces. `--no-opt` or `--lite-mode` would save about as much but also keep the hot RPC paths unoptimized.',
      `After a busy spell (${pairs} StartJob/EndJob pairs) V8's memory reducer, which the shebang no longer turns off, collects and compacts about 8 s into the idle time: ${mb(load.first.end.rssBytes)} RSS (${mb(load.first.end.anonBytes)} anonymous) against ${mb(loadNoReducer.first.end.rssBytes)} (${mb(loadNoReducer.first.end.anonBytes)}) with \`--no-memory-reducer\`, in this run; it costs CPU once (the 3–${IDLE_WINDOW_MS / 1000 + 3} s window: ${(load.first.cpuPct - loadNoReducer.first.cpuPct).toFixed(3)} points more than without it), none in the steady window (10 ms of CPU in a 30 s window reads 0.033 %). What stays above the after-start RSS is more of the node binary paged in (the optimized hot paths, file-backed) and heap and malloc pages kept for reuse. \`MALLOC_ARENA_MAX=1\` took about 3 MB more off in a trial run, but the QEMU processes the daemon starts would inherit it, so it is not set.`,
    ],
  };
}

module.exports = { run, grpcLatency };
