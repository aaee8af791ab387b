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
const { summarize, fmt, spawnDaemon, procStats, tmpDir, unary } = require('./lib');

const TOKEN = 'bench-token-0123456789abcdef';
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

/** @param {number} n */
async function grpcLatency(n) {
  const dir = tmpDir('mg-bench-');
  for (const dname of ['meta', 'egee', 'priv']) fs.writeFileSync(path.join(dir, `${dname}.token`), `${TOKEN}-${dname}`);
  const d = await spawnDaemon({ stateDir: path.join(dir, 'state'), config: config(dir) });
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
  // Idle: let it settle, then measure memory and CPU over 10 s.
  await new Promise((r) => setTimeout(r, 3000));
  const a = procStats(d.proc.pid);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 10000));
  const b = procStats(d.proc.pid);
  const idleCpuPct = ((b.cpuSeconds - a.cpuSeconds) / ((Date.now() - t0) / 1000)) * 100;
  client.close();
  await d.stop();
  return {
    base: summarize(base),
    pack: summarize(pack),
    hook: summarize(hook),
    grow: summarize(grow),
    fresh,
    idle: b,
    idleCpuPct,
  };
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
  const g = await grpcLatency(n);
  const ip = await inProcessLatency(n);
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
  const mb = (/** @type {number} */ x) => `${(x / 1024 ** 2).toFixed(1)} MB`;
  const idle = [
    [
      'idle RSS after start',
      mb(g.fresh.rssBytes),
      mb(g.fresh.anonBytes),
      mb(g.fresh.fileBytes),
      '≤ 60 MB RSS',
      g.fresh.rssBytes <= 60 * 1024 ** 2 ? 'met' : 'MISSED',
    ],
    [
      `idle RSS after ${2 * n + 400} StartJob/EndJob pairs`,
      mb(g.idle.rssBytes),
      mb(g.idle.anonBytes),
      mb(g.idle.fileBytes),
      '≤ 60 MB RSS',
      g.idle.rssBytes <= 60 * 1024 ** 2 ? 'met' : 'MISSED',
    ],
    [
      'idle CPU (10 s window)',
      `${g.idleCpuPct.toFixed(3)} %`,
      '',
      '',
      '≤ 0.2 %',
      g.idleCpuPct <= 0.2 ? 'met' : 'MISSED',
    ],
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
      'The daemon runs with the V8 flags of its shebang (`--max-semi-space-size=2 --max-old-space-size=96`). "file-backed" is mostly the node binary mapped from disk (about 34 MB for a bare `node` here): shared and reclaimable under memory pressure. "anonymous" is the memory the daemon really takes from the VMs.',
      'Client and daemon share the 2 cores; the p99 tail is dominated by gRPC and scheduling, not by the journal (compare the in-process row).',
      'Idle RSS: tried V8 `--lite-mode` (about 64 MB after start) and `--optimize-for-size` (about 73 MB); neither reaches 60 MB, because a bare `node` already maps about 45 MB of its own binary, so they were not adopted. The memory actually taken from the VMs is the anonymous column.',
    ],
  };
}

module.exports = { run };
