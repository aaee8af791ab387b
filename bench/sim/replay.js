'use strict';
/**
 * Trace replay: an SWF log against real magrathead daemons and the real magrathea-filter, in
 * accelerated (discrete-event) time. A small PBS-like placement loop stands in for PBS:
 *
 *  - it sees what the filter publishes for every vnode (`magrathea` token and `magrathea_rank`,
 *    read from the filter's WatchCluster stream: the same values its qmgr batches carry) and
 *    places a chunk only where the token matches the job's class exactly, best rank first,
 *    like the OpenPBS scheduler with `node_sort_key: "magrathea_rank HIGH"`;
 *  - it knows CPU counts per vnode (PBS's `ncpus`), queues priority jobs ahead of batch jobs
 *    (a higher-priority queue) and places greedily: any queued job that fits starts (no
 *    reservations or backfill windows: the logs have no usable walltime requests, so large
 *    jobs can wait long; that is the same for every policy compared);
 *  - it starts and ends jobs through each daemon's real hook API (what the execjob hooks do);
 *    a refusal puts the job back in the queue (PBS requeues it);
 *  - after a start or end on a node, that node is "dirty" until the filter's view shows the
 *    daemon's new generation: dirty nodes are skipped, and the loop waits for the filter only
 *    when nothing else can be placed (a real scheduler cycle also works from a published view).
 *
 * Suspended batch jobs (their domain preempted) have their end pushed back by the time they
 * spent suspended. Time inside the daemons is wall-clock time (only the replay's clock is
 * simulated), so `since` and the preempted-CPU-seconds rank input are compressed.
 */
const { fork } = require('node:child_process');
const { startSinkFilter } = require('../lib');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { loadMagratheaApi } = require('@magrathea/common');

const POLICIES = ['magrathea', 'static', 'nopriority'];

/** Binary min-heap of events ordered by (time, seq). */
class Heap {
  constructor() {
    this.a = [];
    this.seq = 0;
  }
  get size() {
    return this.a.length;
  }
  push(time, ev) {
    const a = this.a;
    a.push({ time, seq: this.seq++, ev });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(a[i], a[p])) {
        [a[i], a[p]] = [a[p], a[i]];
        i = p;
      } else break;
    }
  }
  peek() {
    return this.a[0];
  }
  pop() {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l], a[m])) m = l;
        if (r < a.length && this.less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
  less(x, y) {
    return x.time < y.time || (x.time === y.time && x.seq < y.seq);
  }
}

/** Splits a job into chunks: one node if it fits the largest node, else whole-node chunks. */
function chunksFor(procs, maxNodeCpus) {
  if (procs <= maxNodeCpus) return { count: 1, cpus: procs };
  return { count: Math.ceil(procs / maxNodeCpus), cpus: maxNodeCpus };
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

async function startHosts(nodeNames, dir, count, spawned) {
  const per = Math.ceil(nodeNames.length / count);
  const hosts = [];
  for (let i = 0; i < count; i++) {
    const names = nodeNames.slice(i * per, (i + 1) * per);
    if (names.length === 0) continue;
    const child = fork(path.join(__dirname, 'node-host.js'), [], {
      execArgv: process.env.SIM_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : [],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    spawned.children.add(child);
    hosts.push(
      new Promise((resolve, reject) => {
        child.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve({ child, ready: m.ready })));
        child.once('exit', (c) => reject(new Error(`node host exited ${c}`)));
        child.send({ cmd: 'start', nodes: names, dir });
      }),
    );
  }
  return Promise.all(hosts);
}

const ACTIVE = new Set(['running', 'running-preemptible', 'running-priority']);

/**
 * Replays `jobs` on `machine` ([{name, cpus}]) under `policy`. Returns the metrics and the
 * accounting checks. `onProgress(done, total, startsPerSecond)` is called now and then.
 */
async function replay(opts) {
  // Whatever fails, no child process (node hosts, filter) and no tmpfs state is left behind.
  const spawned = { children: new Set(), dir: null };
  try {
    return await replayWith(opts, spawned);
  } catch (err) {
    for (const c of spawned.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    if (spawned.dir) fs.rmSync(spawned.dir, { recursive: true, force: true });
    throw err;
  }
}

async function replayWith({ machine, jobs, policy, hosts = 2, onProgress = () => undefined }, spawned) {
  if (!POLICIES.includes(policy)) throw new Error(`unknown policy ${policy} (one of ${POLICIES.join(', ')})`);
  const tSetup = Date.now();
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, 'mg-replay-'));
  spawned.dir = dir;
  const hostProcs = await startHosts(
    machine.map((n) => n.name),
    dir,
    hosts,
    spawned,
  );
  const ready = hostProcs.flatMap((h) => h.ready);
  const filter = await startSinkFilter({
    dir,
    nodes: ready.map((n) => ({ name: n.name, port: n.grpcPort })),
    batchDelayMs: Number(process.env.SIM_BATCH_MS ?? 20),
    graceMs: 600_000,
    nodeArgs: process.env.SIM_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : [],
  });
  spawned.children.add(filter.proc);
  const api = loadMagratheaApi();
  const cluster = new api.magrathea.v1.ClusterService(
    `127.0.0.1:${filter.grpcPort}`,
    grpc.credentials.createInsecure(),
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const maxNodeCpus = Math.max(...machine.map((n) => n.cpus));

  const nodes = machine.map((m, i) => {
    const r = ready.find((x) => x.name === m.name);
    return {
      name: m.name,
      cpus: m.cpus,
      used: { batch: 0, prio: 0 },
      tok: { batch: 'none', prio: 'none' },
      rank: { batch: 0, prio: 0 },
      gen: 0,
      ackGen: 0,
      hookPort: r.hookPort,
      tokens: r.tokens,
      // static partitioning: alternate nodes serve priority work only
      reservedForPriority: i % 2 === 1,
      running: { batch: new Set(), prio: new Set() },
      inflight: 0,
      inflightPrio: 0,
      chain: Promise.resolve(),
      settled: null,
    };
  });
  const byName = new Map(nodes.map((n) => [n.name, n]));
  let dirtyCount = 0;
  let cleanWaiters = [];
  let changeWaiters = [];
  /** Something a placement depends on changed (an answer came, or the view moved). */
  const changed = () => {
    const w = changeWaiters;
    changeWaiters = [];
    for (const f of w) f();
  };
  const nextChange = () =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer and no view change within 30 s')), 30_000);
      changeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  const violations = [];
  /** Views with an active domain: shows the exclusivity check saw real states. */
  let activeViews = 0;

  // ---- the filter's view ------------------------------------------------------------------
  let synced = false;
  let syncResolve;
  const syncedP = new Promise((r) => (syncResolve = r));
  const watch = cluster.WatchCluster({});
  const onNodeView = (v) => {
    const n = byName.get(v.name);
    if (!n) return;
    const wasDirty = n.gen < n.ackGen;
    n.gen = Math.max(n.gen, Number(v.generation));
    let active = 0;
    for (const vn of v.vnodes ?? []) {
      const dom = vn.domain;
      if (dom !== 'batch' && dom !== 'prio') continue;
      n.tok[dom] = v.reachable ? vn.magrathea : 'none';
      n.rank[dom] = vn.rank;
      if (vn.detail && ACTIVE.has(vn.detail.state)) active++;
    }
    if (active > 0) activeViews++;
    if (active > 1) violations.push(`${v.name}: ${active} domains active at generation ${v.generation}`);
    if (wasDirty && n.gen >= n.ackGen) {
      changed();
      dirtyCount--;
      if (dirtyCount === 0) {
        const w = cleanWaiters;
        cleanWaiters = [];
        for (const f of w) f();
      }
    }
    if (!synced && nodes.every((x) => x.tok.batch === 'normal' && x.tok.prio === 'priority')) {
      synced = true;
      syncResolve();
    }
  };
  watch.on('data', (ev) => {
    if (ev.snapshot) for (const v of ev.snapshot.nodes) onNodeView(v);
    else if (ev.node) onNodeView(ev.node);
  });
  watch.on('error', () => undefined);
  await Promise.race([
    syncedP,
    new Promise((_, rej) =>
      setTimeout(() => rej(new Error('the filter did not see every domain free in 60 s')), 60_000),
    ),
  ]);

  const markAck = (n, generation) => {
    const wasDirty = n.gen < n.ackGen;
    n.ackGen = Math.max(n.ackGen, generation);
    if (!wasDirty && n.gen < n.ackGen) dirtyCount++;
  };
  const waitClean = () =>
    dirtyCount === 0
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('the filter did not catch up within 30 s')), 30_000);
          cleanWaiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });

  /** One request at a time per node, in order (a start must reach the daemon before its end). */
  const post = (n, dom, route, body) => {
    const p = n.chain.then(() => postNow(n, dom, route, body));
    n.chain = p.catch(() => undefined);
    return p;
  };
  const postNow = (n, dom, route, body, retried = false) =>
    new Promise((resolve, reject) => {
      const data = JSON.stringify(body);
      const req = http.request(
        {
          host: '127.0.0.1',
          port: n.hookPort,
          path: route,
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${n.tokens[dom]}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(data),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode, body: JSON.parse(text) });
            } catch (e) {
              reject(e);
            }
          });
        },
      );
      req.on('error', (err) => {
        // The daemon closed an idle keep-alive connection as we reused it: the request was not
        // processed (Node's documented race); send it again once on a fresh connection.
        if (!retried && req.reusedSocket && err.code === 'ECONNRESET')
          postNow(n, dom, route, body, true).then(resolve, reject);
        else reject(err);
      });
      req.end(data);
    });

  // ---- the simulation -----------------------------------------------------------------------
  const heap = new Heap();
  for (const j of jobs) heap.push(j.submit, { kind: 'arrive', job: j });
  const state = new Map(); // job id → runtime record
  const queue = { priority: [], normal: [] };
  let now = 0;
  let starts = 0;
  let stale = 0;
  let preemptions = 0;
  let preemptedJobSeconds = 0;
  let firstSubmit = jobs.length ? jobs[0].submit : 0;
  for (const j of jobs) firstSubmit = Math.min(firstSubmit, j.submit);
  let lastEnd = firstSubmit;
  let done = 0;
  let unplaceable = 0;
  let t0 = Date.now();
  let lastProgress = 0;

  const domainFor = (job) => (policy === 'nopriority' || job.class === 'normal' ? 'batch' : 'prio');
  const tokenFor = (job) => (domainFor(job) === 'batch' ? 'normal' : 'priority');

  /**
   * Candidate vnodes for each domain kind this cycle: usable (no answer or publication
   * outstanding), publishing the token the chunk asks for, best rank first.
   */
  const candidatesFor = (dom, tok, reservedForPriority) => {
    const c = [];
    for (const n of nodes) {
      if (n.inflight > 0 || n.gen < n.ackGen || n.tok[dom] !== tok) continue;
      if (policy === 'static' && n.reservedForPriority !== reservedForPriority) continue;
      c.push(n);
    }
    return c.sort((a, b) => b.rank[dom] - a.rank[dom] || (a.name < b.name ? -1 : 1));
  };

  /** Picks `count` distinct nodes with room for the chunks, best rank first, or null. */
  const pick = (cands, dom, ch) => {
    const chosen = [];
    for (const n of cands) {
      if (n.inflight > 0 || n.cpus - n.used[dom] < ch.cpus) continue;
      chosen.push(n);
      if (chosen.length === ch.count) return chosen;
    }
    return null;
  };

  // ---- requests in flight ---------------------------------------------------------------------
  // Requests are pipelined: the loop does not wait for a daemon's answer unless it needs it. A
  // node with a request in flight is not used for placement, and an event that touches it (the
  // end of a job running there) first waits for its answers.
  const MAX_INFLIGHT = 64;
  let inflight = 0;
  let slotWaiters = [];
  const track = (n, p, prio = false) => {
    n.inflight++;
    if (prio) n.inflightPrio++;
    inflight++;
    const done = p
      .finally(() => {
        n.inflight--;
        if (prio) n.inflightPrio--;
        inflight--;
        if (n.inflight === 0) n.settled = null;
        const w = slotWaiters;
        slotWaiters = [];
        for (const f of w) f();
        changed();
      })
      .catch(() => undefined); // only "settled" matters here; the caller handles the failure
    n.settled = n.settled ? Promise.all([n.settled, done]) : done;
    return p;
  };
  const slot = async () => {
    while (inflight >= MAX_INFLIGHT) await new Promise((r) => slotWaiters.push(r));
  };
  const settle = async (ns) => {
    for (const n of ns) while (n.inflight > 0) await n.settled;
  };
  const failures = [];
  const fail = (err) => failures.push(err);

  const suspend = (n, at) => {
    for (const id of n.running.batch) {
      const r = state.get(id);
      if (!r) continue;
      if (r.suspendedNodes++ === 0) {
        r.suspendedSince = at;
        r.version++; // its pending end event is void
      }
    }
  };
  const resume = (n, at) => {
    for (const id of n.running.batch) {
      const r = state.get(id);
      if (!r || r.suspendedNodes === 0) continue;
      if (--r.suspendedNodes === 0) {
        const away = at - r.suspendedSince;
        preemptedJobSeconds += away;
        r.suspendedTotal += away;
        r.endAt += away;
        heap.push(r.endAt, { kind: 'end', id, version: r.version });
      }
    }
  };
  const hasSuspended = (n) => {
    for (const id of n.running.batch) if (state.get(id)?.suspendedNodes > 0) return true;
    return false;
  };
  const retry = { priority: [], normal: [] };

  /**
   * Starts a job on the chosen nodes (answers handled when they come). Bookkeeping is done
   * before the requests go out, as PBS assigns vnodes in its cycle, so a preemption answered
   * first still finds the job. A refusal (a stale view) ends the chunks that did start and
   * puts the job back at the head of its queue.
   */
  const startJob = (job, chosen) => {
    const dom = domainFor(job);
    const ch = chunksFor(job.procs, maxNodeCpus);
    const at = now;
    if (state.has(job.id)) violations.push(`job ${job.id} (line ${job.line}) started twice`);
    const rec = {
      job,
      nodes: chosen,
      dom,
      cpus: ch.cpus,
      startAt: at,
      endAt: at + job.run,
      version: 0,
      suspendedNodes: 0,
      suspendedSince: 0,
      suspendedTotal: 0,
      ended: 0,
    };
    state.set(job.id, rec);
    for (const n of chosen) {
      n.used[dom] += ch.cpus;
      n.running[dom].add(job.id);
    }
    const jobId = `${job.id}.sim`;
    const body = { domain: dom, job_id: jobId, preemptible: dom === 'batch', cpus: ch.cpus };
    const answers = chosen.map((n) =>
      track(
        n,
        post(n, dom, '/v1/jobs/start', body).then((r) => {
          if (r.body.generation !== undefined) markAck(n, Number(r.body.generation));
          const ok = r.status === 200 && r.body.ok === true;
          if (ok && (r.body.preempted ?? []).includes('batch')) {
            preemptions++;
            suspend(n, at);
          }
          return ok;
        }),
        dom === 'prio',
      ),
    );
    heap.push(rec.endAt, { kind: 'end', id: job.id, version: 0 });
    Promise.all(answers)
      .then(async (ok) => {
        if (ok.every(Boolean)) {
          starts += chosen.length;
          return;
        }
        stale++;
        rec.version = -1; // its end event is void
        state.delete(job.id);
        await Promise.all(
          chosen.map(async (n, i) => {
            n.used[dom] -= ch.cpus;
            n.running[dom].delete(job.id);
            if (ok[i]) {
              const e = await track(n, post(n, dom, '/v1/jobs/end', { domain: dom, job_id: jobId }));
              markAck(n, Number(e.body.generation));
              if ((e.body.resumed ?? []).includes('batch')) resume(n, at);
            }
          }),
        );
        retry[job.class].push(job);
      })
      .catch(fail);
  };

  const endJob = async (id) => {
    const r = state.get(id);
    r.ended++;
    if (r.ended > 1) violations.push(`job ${id} ended twice`);
    const at = now;
    r.finishedAt = at;
    lastEnd = Math.max(lastEnd, at);
    done++;
    for (const n of r.nodes) {
      n.used[r.dom] -= r.cpus;
      n.running[r.dom].delete(id);
      track(
        n,
        post(n, r.dom, '/v1/jobs/end', { domain: r.dom, job_id: `${id}.sim` }).then((e) => {
          if (e.status !== 200 || e.body.warning)
            violations.push(`end of job ${id} on ${n.name}: ${JSON.stringify(e.body)}`);
          markAck(n, Number(e.body.generation));
          if ((e.body.resumed ?? []).includes('batch')) resume(n, at);
        }),
      ).catch(fail);
    }
  };

  const usable = (n) => n.inflight === 0 && n.gen >= n.ackGen;

  /** One scheduling cycle at `now`; returns the number of jobs sent to start. */
  const cycle = async () => {
    let started = 0;
    for (const cls of ['priority', 'normal']) {
      if (retry[cls].length) {
        queue[cls] = [...retry[cls], ...queue[cls]];
        retry[cls] = [];
      }
      const q = queue[cls];
      if (q.length === 0) continue;
      const probe = q[0];
      const dom = domainFor(probe);
      const cands = candidatesFor(dom, tokenFor(probe), cls === 'priority');
      const keep = [];
      for (let i = 0; i < q.length; i++) {
        const job = q[i];
        // Nothing left to place on: the rest waits (cheap exit when the machine is full).
        if (cands.length === 0 || (i % 64 === 0 && cands.every((n) => n.inflight > 0))) {
          keep.push(...q.slice(i));
          break;
        }
        const chosen = pick(cands, dom, chunksFor(job.procs, maxNodeCpus));
        if (chosen) {
          await slot();
          startJob(job, chosen);
          started++;
        } else keep.push(job);
      }
      queue[cls] = keep;
    }
    return started;
  };
  const queued = () => queue.priority.length + queue.normal.length + retry.priority.length + retry.normal.length;
  /** Nodes that are not usable now (answer or publication outstanding). */
  const busyNodes = () => nodes.filter((n) => !usable(n));
  /** Waits until every node is usable again (answers in, filter caught up). */
  const quiesce = async () => {
    await settle(nodes);
    await waitClean();
  };

  const totalJobs = jobs.length;
  const cpuOf = async () => {
    const hostCpu = await Promise.all(
      hostProcs.map(
        (h) =>
          new Promise((resolve) => {
            h.child.once('message', (m) => resolve(m.cpu));
            h.child.send({ cmd: 'cpu' });
          }),
      ),
    );
    const stat = fs.readFileSync(`/proc/${filter.proc.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const tick = 100; // USER_HZ
    const me = process.cpuUsage();
    return {
      hosts: hostCpu.reduce((a, c) => a + (c.user + c.system) / 1e6, 0),
      filter: (Number(f[11]) + Number(f[12])) / tick,
      replay: (me.user + me.system) / 1e6,
    };
  };
  const cpu0 = await cpuOf();
  t0 = Date.now();
  const setupSeconds = (Date.now() - tSetup) / 1000;
  while (heap.size > 0 || queued() > 0) {
    if (failures.length) throw failures[0];
    if (heap.size === 0) {
      // Nothing more will happen by itself: let everything settle, then try once more.
      await quiesce();
      if (heap.size > 0) continue;
      if ((await cycle()) === 0) {
        await quiesce();
        if (heap.size === 0 && queued() > 0 && (await cycle()) === 0) {
          unplaceable = queued();
          break;
        }
      }
      continue;
    }
    const nextTime = heap.peek().time;
    // A pending answer may still suspend or resume jobs before `nextTime`: let nodes with
    // suspended work settle before the clock moves on.
    if (nextTime > now) await settle(nodes.filter((n) => n.inflight > 0 && hasSuspended(n)));
    if (heap.peek().time < now) throw new Error('internal: an event was scheduled in the past');
    now = heap.peek().time;
    const ends = [];
    while (heap.size > 0 && heap.peek().time === now) {
      const { ev } = heap.pop();
      // Priority jobs are queued ahead under every policy (a higher-priority PBS queue).
      if (ev.kind === 'arrive') queue[ev.job.class].push(ev.job);
      else ends.push(ev);
    }
    for (const ev of ends) {
      const r = state.get(ev.id);
      if (!r || r.version !== ev.version) continue;
      // A priority start still in flight on one of its nodes may have suspended it.
      await settle(r.nodes.filter((n) => n.inflightPrio > 0));
      if (r.version === ev.version && r.suspendedNodes === 0 && r.finishedAt === undefined) await endJob(ev.id);
    }
    if (queued() > 0) {
      let s = await cycle();
      // Work is waiting and nothing fitted: if nodes are busy, the view is behind; wait for it.
      while (s === 0 && queued() > 0 && busyNodes().length > 0) {
        await nextChange();
        s = await cycle();
      }
    }
    if (Date.now() - lastProgress > 250) {
      lastProgress = Date.now();
      onProgress(done, totalJobs, starts / ((Date.now() - t0) / 1000));
    }
  }
  await settle(nodes);
  if (failures.length) throw failures[0];
  const wallS = (Date.now() - t0) / 1000;
  const cpu1 = await cpuOf();
  const cpuSeconds = {
    daemons: cpu1.hosts - cpu0.hosts,
    filter: cpu1.filter - cpu0.filter,
    placement: cpu1.replay - cpu0.replay,
  };
  onProgress(done, totalJobs, starts / wallS);

  // ---- results ---------------------------------------------------------------------------------
  watch.cancel();
  cluster.close();
  agent.destroy();
  filter.proc.kill('SIGKILL');
  await Promise.all(
    hostProcs.map(
      (h) =>
        new Promise((r) => {
          h.child.once('exit', r);
          h.child.send({ cmd: 'exit' });
          setTimeout(() => h.child.kill('SIGKILL'), 5000).unref();
        }),
    ),
  );
  fs.rmSync(dir, { recursive: true, force: true });

  const recs = [...state.values()];
  for (const r of recs) if (r.ended !== 1) violations.push(`job ${r.job.id} ended ${r.ended} times`);
  const waits = (cls) =>
    recs
      .filter((r) => r.job.class === cls)
      .map((r) => r.startAt - r.job.submit)
      .sort((a, b) => a - b);
  const slow = recs
    .filter((r) => r.job.class === 'normal')
    .map((r) => (r.finishedAt - r.job.submit) / Math.max(r.job.run, 10))
    .sort((a, b) => a - b);
  const work = recs.reduce((a, r) => a + r.job.run * r.job.procs, 0);
  const cpus = machine.reduce((a, n) => a + n.cpus, 0);
  const pw = waits('priority');
  const bw = waits('normal');
  return {
    policy,
    jobs: totalJobs,
    started: recs.length,
    unplaceable,
    priorityJobs: pw.length,
    priorityWait: { p50: quantile(pw, 0.5), p95: quantile(pw, 0.95), all: pw },
    batchWait: {
      p50: quantile(bw, 0.5),
      p95: quantile(bw, 0.95),
      mean: bw.reduce((a, b) => a + b, 0) / (bw.length || 1),
      all: bw,
    },
    batchSlowdown: { p50: quantile(slow, 0.5), mean: slow.reduce((a, b) => a + b, 0) / (slow.length || 1) },
    utilisation: work / (cpus * Math.max(1, lastEnd - firstSubmit)),
    preemptions,
    preemptedJobHours: preemptedJobSeconds / 3600,
    staleRefusals: stale,
    starts,
    wallSeconds: wallS,
    startsPerSecond: starts / wallS,
    setupSeconds,
    activeViews,
    cpuSeconds,
    violations,
  };
}

module.exports = { replay, chunksFor, POLICIES, Heap };
