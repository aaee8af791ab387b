// @ts-check
'use strict';
/**
 * The discrete-event loop of the trace replay: a small PBS-like placement loop over the
 * filter's view (FilterView), starting and ending jobs through the daemons' hook API
 * (HookClient). Time is the replay's own clock; the daemons run in wall-clock time.
 *
 * Requests are pipelined: the loop does not wait for a daemon's answer unless it needs it. A
 * node with a request in flight is not used for placement, and an event that touches it (the
 * end of a job running there) first waits for its answers.
 */
const { Heap } = require('./event-heap');
const {
  FreeIndex,
  RankOrder,
  candidatesFor,
  chunksFor,
  couldFitOnceSettled,
  domainFor,
  pick,
  preempts,
  roomAtMost,
  tokenFor,
} = require('./placement');
const { Waiters } = require('./waiters');

/** @typedef {import('./placement').SimNode} SimNode */
/** @typedef {import('./placement').Dom} Dom */
/** @typedef {import('./placement').Policy} Policy */
/** @typedef {import('./swf').Job} Job */
/** @typedef {import('./filter-view').FilterView} FilterView */
/** @typedef {import('./hook-client').HookClient} HookClient */
/** @typedef {{ kind: 'arrive', job: Job } | { kind: 'end', id: number, version: number }} SimEvent */

/**
 * A started job.
 * @typedef {object} JobRecord
 * @property {Job} job
 * @property {SimNode[]} nodes
 * @property {Dom} dom
 * @property {number} cpus per chunk
 * @property {number} startAt
 * @property {number} endAt when it ends unless suspended again
 * @property {number} version bumped when its pending end event is void (-1: refused start)
 * @property {number} suspendedNodes nodes on which it is suspended now
 * @property {number} suspendedSince
 * @property {number} suspendedTotal
 * @property {number} ended how many times it ended (must be 1)
 * @property {number} [finishedAt]
 */

/**
 * How a cycle finds room: `indexed` (candidates kept in rank order until a rank changes, and
 * counted by free CPUs, so a job that cannot fit costs a look-up; the loop waits for busy nodes
 * only when they could hold a queued job) or `scan` (sort the candidates every cycle and scan
 * them for every queued job, and wait for every busy node whenever a queued job does not fit:
 * the replay before issue 15, kept as the benchmark's baseline). From the same view both
 * place the same jobs on the same nodes; `scan` waits for the view more often, so its view
 * (and its timing) can differ.
 * @typedef {'indexed' | 'scan'} Placement
 */

/** Requests in flight at most, over all nodes. */
const MAX_INFLIGHT = 64;

/**
 * The replay's job ids of the `N.sim` ids a daemon answered.
 * @param {{ job_id: string }[] | undefined} refs
 * @returns {number[]}
 */
function simJobIds(refs) {
  return (refs ?? []).map((j) => Number(j.job_id.replace(/\.sim$/, ''))).filter((id) => Number.isInteger(id));
}

class Simulation {
  /**
   * @param {object} o
   * @param {Policy} o.policy
   * @param {readonly Job[]} o.jobs
   * @param {SimNode[]} o.nodes
   * @param {FilterView} o.view
   * @param {HookClient} o.hooks
   * @param {Waiters} o.changed woken when something a placement depends on changed
   * @param {string[]} o.violations accounting violations found
   * @param {(done: number, total: number, startsPerSecond: number) => void} o.onProgress
   * @param {Placement} [o.placement] default indexed
   */
  constructor({ policy, jobs, nodes, view, hooks, changed, violations, onProgress, placement = 'indexed' }) {
    this.placement = placement;
    this.order = new RankOrder(nodes);
    this.policy = policy;
    this.jobs = jobs;
    this.nodes = nodes;
    this.view = view;
    this.hooks = hooks;
    this.changed = changed;
    this.violations = violations;
    this.onProgress = onProgress;
    this.maxNodeCpus = Math.max(...nodes.map((n) => n.cpus));
    /** @type {Heap<SimEvent>} */
    this.heap = new Heap();
    for (const j of jobs) this.heap.push(j.submit, { kind: 'arrive', job: j });
    /** @type {Map<number, JobRecord>} job id → runtime record */
    this.state = new Map();
    /** @type {Record<'priority' | 'normal', Job[]>} */
    this.queue = { priority: [], normal: [] };
    /** @type {Record<'priority' | 'normal', Job[]>} refused starts, back at the head of their queue next cycle */
    this.retry = { priority: [], normal: [] };
    this.now = 0;
    this.starts = 0;
    this.stale = 0;
    this.preemptions = 0;
    this.preemptedJobSeconds = 0;
    /** Suspensions of a job on a node (a domain preempted whole suspends each of its jobs). */
    this.jobsSuspended = 0;
    /** CPU-seconds batch jobs spent suspended (all their chunks stop while one is suspended). */
    this.suspendedCpuSeconds = 0;
    let firstSubmit = jobs[0]?.submit ?? 0;
    for (const j of jobs) firstSubmit = Math.min(firstSubmit, j.submit);
    this.firstSubmit = firstSubmit;
    this.lastEnd = firstSubmit;
    this.done = 0;
    this.unplaceable = 0;
    this.t0 = Date.now();
    this.lastProgress = 0;
    this.inflight = 0;
    /** A priority job was held back this cycle: a busy node may take it without preemption. */
    this.deferred = false;
    this.slots = new Waiters();
    /** @type {unknown[]} */
    this.failures = [];
  }

  // ---- requests in flight ---------------------------------------------------------------------

  /**
   * Counts a request to node `n` as in flight until it is answered.
   * @template T
   * @param {SimNode} n
   * @param {Promise<T>} p
   * @param {boolean} [prio] a priority start (it may suspend batch work)
   * @returns {Promise<T>} `p`
   */
  track(n, p, prio = false) {
    n.inflight++;
    if (prio) n.inflightPrio++;
    this.inflight++;
    const answered = p
      .finally(() => {
        n.inflight--;
        if (prio) n.inflightPrio--;
        this.inflight--;
        if (n.inflight === 0) n.settled = null;
        this.slots.wake();
        this.changed.wake();
      })
      .catch(() => undefined); // only "settled" matters here; the caller handles the failure
    n.settled = n.settled ? Promise.all([n.settled, answered]) : answered;
    return p;
  }

  /** @returns {Promise<boolean>} waits for a free request slot; true when it had to wait (nodes may have changed) */
  async slot() {
    let waited = false;
    while (this.inflight >= MAX_INFLIGHT) {
      waited = true;
      await this.slots.next();
    }
    return waited;
  }

  /** @param {readonly SimNode[]} ns waits until these nodes have no request in flight */
  async settle(ns) {
    for (const n of ns) while (n.inflight > 0) await n.settled;
  }

  /** @param {unknown} err */
  fail(err) {
    this.failures.push(err);
  }

  // ---- preemption bookkeeping -------------------------------------------------------------------

  /**
   * The batch domain of `n` was preempted at `at`: its jobs stop the clock.
   * @param {SimNode} n
   * @param {number} at
   * @param {readonly number[] | null} [only] just these jobs (partial preemption)
   */
  suspend(n, at, only = null) {
    for (const id of only ?? n.running.batch) {
      const r = this.state.get(id);
      if (!r) continue;
      this.jobsSuspended++;
      if (r.suspendedNodes++ === 0) {
        r.suspendedSince = at;
        r.version++; // its pending end event is void
      }
    }
  }

  /**
   * The batch domain of `n` resumed at `at`: its jobs end later by the time they were suspended.
   * @param {SimNode} n
   * @param {number} at
   * @param {readonly number[] | null} [only] just these jobs (partial preemption)
   */
  resume(n, at, only = null) {
    for (const id of only ?? n.running.batch) {
      const r = this.state.get(id);
      if (!r || r.suspendedNodes === 0) continue;
      if (--r.suspendedNodes === 0) {
        const away = at - r.suspendedSince;
        this.preemptedJobSeconds += away;
        this.suspendedCpuSeconds += away * r.cpus * r.nodes.length;
        r.suspendedTotal += away;
        r.endAt += away;
        this.heap.push(r.endAt, { kind: 'end', id, version: r.version });
      }
    }
  }

  /**
   * An end's answer: the jobs (partial) or the batch domain (whole-domain preemption) it resumed.
   * @param {SimNode} n
   * @param {number} at
   * @param {{ resumed?: string[], resumed_jobs?: { job_id: string }[] }} body
   */
  resumed(n, at, body) {
    if (this.policy === 'partial') {
      const ids = simJobIds(body.resumed_jobs);
      if (ids.length > 0) this.resume(n, at, ids);
    } else if ((body.resumed ?? []).includes('batch')) this.resume(n, at);
  }

  /** @param {SimNode} n */
  hasSuspended(n) {
    for (const id of n.running.batch) if ((this.state.get(id)?.suspendedNodes ?? 0) > 0) return true;
    return false;
  }

  // ---- starts and ends ----------------------------------------------------------------------------

  /**
   * Starts a job on the chosen nodes (answers handled when they come). Bookkeeping is done
   * before the requests go out, as PBS assigns vnodes in its cycle, so a preemption answered
   * first still finds the job. A refusal (a stale view) ends the chunks that did start and
   * puts the job back at the head of its queue.
   * @param {Job} job
   * @param {SimNode[]} chosen
   */
  startJob(job, chosen) {
    const dom = domainFor(this.policy, job);
    const ch = chunksFor(job.procs, this.maxNodeCpus);
    const at = this.now;
    if (this.state.has(job.id)) this.violations.push(`job ${job.id} (line ${job.line}) started twice`);
    /** @type {JobRecord} */
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
    this.state.set(job.id, rec);
    for (const n of chosen) {
      n.used[dom] += ch.cpus;
      n.pendingCpus[dom] += ch.cpus;
      n.running[dom].add(job.id);
    }
    const jobId = `${job.id}.sim`;
    const body = { domain: dom, job_id: jobId, preemptible: dom === 'batch', cpus: ch.cpus };
    const answers = chosen.map((n) =>
      this.track(
        n,
        this.hooks.post(n, dom, '/v1/jobs/start', body).then((r) => {
          if (r.body.generation !== undefined) this.view.markAck(n, Number(r.body.generation));
          const ok = r.status === 200 && r.body.ok === true;
          if (ok && this.policy === 'partial') {
            const ids = simJobIds(r.body.suspended_jobs);
            if (ids.length > 0) {
              this.preemptions++;
              this.suspend(n, at, ids);
            }
          } else if (ok && (r.body.preempted ?? []).includes('batch')) {
            this.preemptions++;
            this.suspend(n, at);
          }
          return ok;
        }),
        dom === 'prio',
      ),
    );
    this.heap.push(rec.endAt, { kind: 'end', id: job.id, version: 0 });
    Promise.all(answers)
      .then(async (ok) => {
        for (const n of chosen) n.pendingCpus[dom] -= ch.cpus;
        if (ok.every(Boolean)) {
          this.starts += chosen.length;
          return;
        }
        this.stale++;
        rec.version = -1; // its end event is void
        this.state.delete(job.id);
        await Promise.all(
          chosen.map(async (n, i) => {
            n.used[dom] -= ch.cpus;
            n.running[dom].delete(job.id);
            if (ok[i]) {
              const e = await this.track(n, this.hooks.post(n, dom, '/v1/jobs/end', { domain: dom, job_id: jobId }));
              this.view.markAck(n, Number(e.body.generation));
              this.resumed(n, at, e.body);
            }
          }),
        );
        this.retry[job.class].push(job);
      })
      .catch((err) => this.fail(err));
  }

  /** @param {number} id ends a started job on every node it runs on */
  endJob(id) {
    const r = /** @type {JobRecord} */ (this.state.get(id));
    r.ended++;
    if (r.ended > 1) this.violations.push(`job ${id} ended twice`);
    const at = this.now;
    r.finishedAt = at;
    this.lastEnd = Math.max(this.lastEnd, at);
    this.done++;
    for (const n of r.nodes) {
      n.used[r.dom] -= r.cpus;
      n.running[r.dom].delete(id);
      this.track(
        n,
        this.hooks.post(n, r.dom, '/v1/jobs/end', { domain: r.dom, job_id: `${id}.sim` }).then((e) => {
          if (e.status !== 200 || e.body.warning)
            this.violations.push(`end of job ${id} on ${n.name}: ${JSON.stringify(e.body)}`);
          this.view.markAck(n, Number(e.body.generation));
          this.resumed(n, at, e.body);
        }),
      ).catch((err) => this.fail(err));
    }
  }

  // ---- scheduling -----------------------------------------------------------------------------------

  /** @param {SimNode} n no answer or publication outstanding */
  usable(n) {
    return n.inflight === 0 && n.gen >= n.ackGen;
  }

  /** @returns {Promise<number>} one scheduling cycle at `now`: the number of jobs sent to start */
  async cycle() {
    let started = 0;
    for (const cls of /** @type {const} */ (['priority', 'normal'])) {
      if (this.retry[cls].length) {
        this.queue[cls] = [...this.retry[cls], ...this.queue[cls]];
        this.retry[cls] = [];
      }
      const q = this.queue[cls];
      const probe = q[0];
      if (probe === undefined) continue;
      const dom = domainFor(this.policy, probe);
      const tok = tokenFor(this.policy, probe);
      const indexed = this.placement === 'indexed';
      const cands = indexed
        ? this.order.candidates(this.view.rankVersion, this.policy, dom, tok, cls === 'priority')
        : candidatesFor(this.nodes, this.policy, dom, tok, cls === 'priority');
      let free = indexed ? new FreeIndex(cands, dom, this.policy) : null;
      const keep = [];
      for (const [i, job] of q.entries()) {
        // Nothing left to place on: the rest waits (cheap exit when the machine is full).
        if (cands.length === 0 || (free ? free.total === 0 : i % 64 === 0 && cands.every((n) => n.inflight > 0))) {
          keep.push(...q.slice(i));
          break;
        }
        const ch = chunksFor(job.procs, this.maxNodeCpus);
        if (free && !free.fits(ch)) {
          keep.push(job);
          continue;
        }
        const chosen = pick(cands, dom, ch, this.policy);
        if (chosen && cls === 'priority' && indexed && this.couldAvoidPreemption(chosen, dom, ch)) {
          // A busy node may take it without suspending batch work: decide once it has settled.
          this.deferred = true;
          keep.push(job);
        } else if (chosen) {
          const waited = await this.slot();
          if (free && !waited) for (const n of chosen) free.take(n);
          this.startJob(job, chosen);
          // Answers came in while waiting: count the candidates again.
          if (free && waited) free = new FreeIndex(cands, dom, this.policy);
          started++;
        } else keep.push(job);
      }
      this.queue[cls] = keep;
    }
    return started;
  }

  /**
   * Whether the priority chunks would suspend batch work on `chosen` while a busy node (its
   * answer or publication outstanding) might take them without: where a priority job goes
   * decides whether batch work is preempted, so it is placed from the settled view then.
   * @param {readonly SimNode[]} chosen
   * @param {Dom} dom
   * @param {{ count: number, cpus: number }} ch
   */
  couldAvoidPreemption(chosen, dom, ch) {
    if (!chosen.some((n) => preempts(n, dom, ch.cpus, this.policy))) return false;
    return this.nodes.some(
      (m) =>
        !this.usable(m) &&
        roomAtMost(m, dom, this.policy) >= ch.cpus &&
        !preempts(m, dom, ch.cpus, this.policy) &&
        !(this.policy === 'static' && !m.reservedForPriority),
    );
  }

  queued() {
    return (
      this.queue.priority.length + this.queue.normal.length + this.retry.priority.length + this.retry.normal.length
    );
  }

  /** Nodes that are not usable now (answer or publication outstanding). */
  busyNodes() {
    return this.nodes.filter((n) => !this.usable(n));
  }

  /** Waits until every node is usable again (answers in, filter caught up). */
  async quiesce() {
    await this.settle(this.nodes);
    await this.view.waitClean();
  }

  // ---- the loop ---------------------------------------------------------------------------------------

  /** Runs every job to its end (or until what is queued can never be placed). */
  async run() {
    this.t0 = Date.now();
    while (this.heap.size > 0 || this.queued() > 0) {
      if (this.failures.length) throw this.failures[0];
      if (this.heap.size === 0) {
        if (await this.lastTry()) break;
        continue;
      }
      await this.advance();
      await this.schedule();
      this.progress();
    }
    await this.settle(this.nodes);
    if (this.failures.length) throw this.failures[0];
  }

  /**
   * Nothing more will happen by itself: let everything settle, then try once more.
   * @returns {Promise<boolean>} true when what is queued can never be placed
   */
  async lastTry() {
    await this.quiesce();
    if (this.heap.size > 0) return false;
    if ((await this.cycle()) === 0) {
      await this.quiesce();
      if (this.heap.size === 0 && this.queued() > 0 && (await this.cycle()) === 0) {
        this.unplaceable = this.queued();
        return true;
      }
    }
    return false;
  }

  /** Moves the clock to the next event time and handles its arrivals and ends. */
  async advance() {
    const next = () => /** @type {import('./event-heap').HeapEntry<SimEvent>} */ (this.heap.peek());
    // A pending answer may still suspend or resume jobs before the next event: let nodes with
    // suspended work settle before the clock moves on.
    if (next().time > this.now) await this.settle(this.nodes.filter((n) => n.inflight > 0 && this.hasSuspended(n)));
    if (next().time < this.now) throw new Error('internal: an event was scheduled in the past');
    this.now = next().time;
    const ends = [];
    while (this.heap.size > 0 && next().time === this.now) {
      const { ev } = this.heap.pop();
      // Priority jobs are queued ahead under every policy (a higher-priority PBS queue).
      if (ev.kind === 'arrive') this.queue[ev.job.class].push(ev.job);
      else ends.push(ev);
    }
    for (const ev of ends) {
      const r = this.state.get(ev.id);
      if (!r || r.version !== ev.version) continue;
      // A priority start still in flight on one of its nodes may have suspended it.
      await this.settle(r.nodes.filter((n) => n.inflightPrio > 0));
      if (r.version === ev.version && r.suspendedNodes === 0 && r.finishedAt === undefined) this.endJob(ev.id);
    }
  }

  /**
   * Whether a queued job could start at this time once the busy nodes settle. The `scan`
   * baseline (the loop before issue 15) waits whenever any node is busy; the indexed loop only
   * when the busy nodes could hold a queued job (otherwise only a later event can free room,
   * and waiting for the filter would hold the clock for nothing).
   */
  worthWaiting() {
    if (this.busyNodes().length === 0) return false;
    if (this.placement === 'scan') return true;
    for (const cls of /** @type {const} */ (['priority', 'normal'])) {
      const jobs = [...this.retry[cls], ...this.queue[cls]];
      const probe = jobs[0];
      if (probe === undefined) continue;
      const dom = domainFor(this.policy, probe);
      const tok = tokenFor(this.policy, probe);
      const usable = (/** @type {SimNode} */ n) => this.usable(n);
      if (couldFitOnceSettled(this.nodes, usable, this.policy, dom, tok, cls === 'priority', jobs, this.maxNodeCpus))
        return true;
    }
    return false;
  }

  /** A scheduling cycle; when work waits and nothing fitted while nodes are busy, the view may be behind: wait for it if that can place something. */
  async schedule() {
    if (this.queued() === 0) return;
    this.deferred = false;
    let s = await this.cycle();
    while ((s === 0 || this.deferred) && this.queued() > 0 && this.worthWaiting()) {
      await this.changed.nextWithin(30_000, 'no answer and no view change within 30 s');
      this.deferred = false;
      s = await this.cycle();
    }
  }

  progress() {
    if (Date.now() - this.lastProgress > 250) {
      this.lastProgress = Date.now();
      const seconds = (Date.now() - this.t0) / 1000;
      this.onProgress(this.done, this.jobs.length, seconds > 0 ? this.starts / seconds : 0);
    }
  }
}

module.exports = { Simulation };
