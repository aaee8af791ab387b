// @ts-check
'use strict';
/**
 * The PBS stand-in's placement rules (pure): how a job is cut into chunks, which vnodes are
 * candidates this cycle, and which nodes a job's chunks go to.
 */

/** @typedef {'magrathea' | 'partial' | 'static' | 'nopriority'} Policy */
/** @typedef {'batch' | 'prio'} Dom */
/** @typedef {import('./swf').Job} Job */

/**
 * A physical node as the replay sees it: what the filter publishes for its two vnodes, what
 * runs there, and the requests in flight to its daemon.
 * @typedef {object} SimNode
 * @property {string} name
 * @property {number} cpus
 * @property {Record<Dom, number>} used CPUs given to running chunks, per domain
 * @property {Record<Dom, string>} tok the published `magrathea` token of each vnode
 * @property {Record<Dom, number>} rank the published `magrathea_rank` of each vnode
 * @property {number} gen the node generation the filter's view shows
 * @property {number} ackGen the newest generation a daemon answer reported
 * @property {number} hookPort
 * @property {Record<Dom, string>} tokens hook API tokens of the domains
 * @property {boolean} reservedForPriority static partitioning: the node serves priority work only
 * @property {Record<Dom, Set<number>>} running ids of the jobs with a chunk here
 * @property {number} inflight requests in flight to the daemon
 * @property {number} inflightPrio priority starts among them
 * @property {Record<Dom, number>} pendingCpus CPUs of the starts in flight, per domain (a refusal gives them back)
 * @property {Promise<unknown>} chain the node's requests, one at a time, in order
 * @property {Promise<unknown> | null} settled resolves when the requests in flight are answered
 */

/**
 * Splits a job into chunks: one node if it fits the largest node, else whole-node chunks.
 * @param {number} procs
 * @param {number} maxNodeCpus
 * @returns {{ count: number, cpus: number }}
 */
function chunksFor(procs, maxNodeCpus) {
  if (procs <= maxNodeCpus) return { count: 1, cpus: procs };
  return { count: Math.ceil(procs / maxNodeCpus), cpus: maxNodeCpus };
}

/**
 * The domain a job runs in under `policy`.
 * @param {Policy} policy
 * @param {Job} job
 * @returns {Dom}
 */
function domainFor(policy, job) {
  return policy === 'nopriority' || job.class === 'normal' ? 'batch' : 'prio';
}

/**
 * The token the job's chunks ask for.
 * @param {Policy} policy
 * @param {Job} job
 */
function tokenFor(policy, job) {
  return domainFor(policy, job) === 'batch' ? 'normal' : 'priority';
}

/**
 * Candidate vnodes of one domain kind this cycle: usable (no answer or publication
 * outstanding), publishing the token the chunk asks for, best rank first.
 * @param {readonly SimNode[]} nodes
 * @param {Policy} policy
 * @param {Dom} dom
 * @param {string} tok
 * @param {boolean} reservedForPriority
 */
function candidatesFor(nodes, policy, dom, tok, reservedForPriority) {
  const c = [];
  for (const n of nodes) {
    if (n.inflight > 0 || n.gen < n.ackGen || n.tok[dom] !== tok) continue;
    if (policy === 'static' && n.reservedForPriority !== reservedForPriority) continue;
    c.push(n);
  }
  return c.sort((a, b) => b.rank[dom] - a.rank[dom] || (a.name < b.name ? -1 : 1));
}

/**
 * CPUs a chunk of `dom` may take on `n`. Whole-domain preemption: each domain has the node (a
 * priority domain takes it from the batch domain). CPU-counting mode (`partial`), as the daemon
 * counts: a batch chunk needs CPUs no running job holds and no suspended batch job is owed
 * (`used.batch` counts the suspended ones too); a priority chunk may displace batch chunks.
 * @param {SimNode} n
 * @param {Dom} dom
 * @param {Policy} [policy]
 */
function room(n, dom, policy) {
  if (policy !== 'partial') return n.cpus - n.used[dom];
  return dom === 'batch' ? n.cpus - n.used.batch - n.used.prio : n.cpus - n.used.prio;
}

/**
 * The most CPUs a chunk of `dom` may have on `n` once its requests in flight are answered: its
 * room now plus the CPUs of the starts in flight that count against it (a refused start gives
 * them back; nothing else the answers bring changes the CPUs the loop has handed out).
 * @param {SimNode} n
 * @param {Dom} dom
 * @param {Policy} [policy]
 */
function roomAtMost(n, dom, policy) {
  const back = policy === 'partial' && dom === 'batch' ? n.pendingCpus.batch + n.pendingCpus.prio : n.pendingCpus[dom];
  return Math.min(n.cpus, room(n, dom, policy) + back);
}

/**
 * Whether a chunk of `dom` with `cpus` CPUs on `n` suspends batch work there: a priority chunk
 * on a node with batch work (whole-domain preemption), or one that needs CPUs batch jobs hold
 * (partial). Never under the other policies.
 * @param {SimNode} n
 * @param {Dom} dom
 * @param {number} cpus
 * @param {Policy} [policy]
 */
function preempts(n, dom, cpus, policy) {
  if (dom !== 'prio') return false;
  if (policy === 'magrathea') return n.used.batch > 0;
  if (policy === 'partial') return n.used.batch + n.used.prio + cpus > n.cpus;
  return false;
}

/**
 * Whether waiting for the busy nodes (an answer or a publication outstanding) could let one of
 * `jobs` start at this time: counted over the usable nodes that publish `tok` (their room now)
 * and the busy ones whatever they will publish (the most room they may get). False means no
 * answer or publication can place any of them now; only a later event (an end) can free room.
 * @param {readonly SimNode[]} nodes
 * @param {(n: SimNode) => boolean} usable
 * @param {Policy} policy
 * @param {Dom} dom
 * @param {string} tok
 * @param {boolean} reservedForPriority
 * @param {readonly Job[]} jobs
 * @param {number} maxNodeCpus
 */
function couldFitOnceSettled(nodes, usable, policy, dom, tok, reservedForPriority, jobs, maxNodeCpus) {
  /** @type {number[]} nodes by the most free CPUs they may have (0 … maxNodeCpus) */
  const count = new Array(maxNodeCpus + 1).fill(0);
  let busy = 0;
  for (const n of nodes) {
    if (policy === 'static' && n.reservedForPriority !== reservedForPriority) continue;
    let f;
    if (usable(n)) {
      if (n.tok[dom] !== tok) continue;
      f = room(n, dom, policy);
    } else {
      busy++;
      f = roomAtMost(n, dom, policy);
    }
    f = Math.min(Math.max(0, f), maxNodeCpus);
    count[f] = /** @type {number} */ (count[f]) + 1;
  }
  if (busy === 0) return false;
  for (let f = maxNodeCpus - 1; f >= 0; f--)
    count[f] = /** @type {number} */ (count[f]) + /** @type {number} */ (count[f + 1]);
  for (const job of jobs) {
    const ch = chunksFor(job.procs, maxNodeCpus);
    if (ch.cpus <= maxNodeCpus && /** @type {number} */ (count[Math.max(0, ch.cpus)]) >= ch.count) return true;
  }
  return false;
}

/**
 * Picks `ch.count` distinct nodes with room for the chunks, best rank first, or null.
 * @param {readonly SimNode[]} cands
 * @param {Dom} dom
 * @param {{ count: number, cpus: number }} ch
 * @param {Policy} [policy]
 * @returns {SimNode[] | null}
 */
function pick(cands, dom, ch, policy) {
  const chosen = [];
  for (const n of cands) {
    if (n.inflight > 0 || room(n, dom, policy) < ch.cpus) continue;
    chosen.push(n);
    if (chosen.length === ch.count) return chosen;
  }
  return null;
}

/**
 * The candidates of one cycle counted by free CPUs (only those with no request in flight, as
 * `pick` takes them): whether a job can be placed is then a look-up, not a scan of every
 * candidate. `fits(ch)` is true exactly when `pick(cands, dom, ch, policy)` finds nodes, as long as
 * every node taken is reported with `take` (the caller rebuilds the index after anything else
 * changed the nodes).
 */
class FreeIndex {
  /**
   * @param {readonly SimNode[]} cands
   * @param {Dom} dom
   * @param {Policy} [policy] as `pick` takes it (free CPUs are counted as `room` counts them)
   */
  constructor(cands, dom, policy) {
    this.dom = dom;
    this.policy = policy;
    let max = 0;
    for (const n of cands) max = Math.max(max, n.cpus);
    /** @type {number[]} nodes by free CPUs (0 … max) */
    this.count = new Array(max + 1).fill(0);
    /** @type {number[] | null} nodes with at least f free CPUs, recomputed after a change */
    this.atLeast = null;
    this.total = 0;
    for (const n of cands) if (n.inflight === 0) this.add(n, 1);
  }

  /** @param {SimNode} n @param {number} d */
  add(n, d) {
    const f = Math.min(Math.max(0, room(n, this.dom, this.policy)), this.count.length - 1);
    this.count[f] = /** @type {number} */ (this.count[f]) + d;
    this.total += d;
    this.atLeast = null;
  }

  /**
   * A node is taken (a request goes out to it): call before its CPUs are counted as used.
   * @param {SimNode} n
   */
  take(n) {
    this.add(n, -1);
  }

  /**
   * @param {{ count: number, cpus: number }} ch
   * @returns {boolean} whether `ch.count` distinct candidates have `ch.cpus` free
   */
  fits(ch) {
    if (!this.atLeast) {
      const a = new Array(this.count.length + 1).fill(0);
      for (let f = this.count.length - 1; f >= 0; f--) a[f] = a[f + 1] + /** @type {number} */ (this.count[f]);
      this.atLeast = a;
    }
    if (ch.cpus >= this.atLeast.length) return false;
    return /** @type {number} */ (this.atLeast[Math.max(0, ch.cpus)]) >= ch.count;
  }
}

/**
 * Nodes best rank first for `dom` (the order `candidatesFor` gives), kept until a rank changes.
 */
class RankOrder {
  /** @param {readonly SimNode[]} nodes */
  constructor(nodes) {
    this.nodes = nodes;
    /** @type {Record<Dom, { version: number, order: SimNode[] } | null>} */
    this.cache = { batch: null, prio: null };
  }

  /**
   * @param {Dom} dom
   * @param {number} version bumped whenever a published rank changed
   */
  sorted(dom, version) {
    const c = this.cache[dom];
    if (c && c.version === version) return c.order;
    const order = [...this.nodes].sort((a, b) => b.rank[dom] - a.rank[dom] || (a.name < b.name ? -1 : 1));
    this.cache[dom] = { version, order };
    return order;
  }

  /**
   * `candidatesFor` without its sort.
   * @param {number} version
   * @param {Policy} policy
   * @param {Dom} dom
   * @param {string} tok
   * @param {boolean} reservedForPriority
   */
  candidates(version, policy, dom, tok, reservedForPriority) {
    const c = [];
    for (const n of this.sorted(dom, version)) {
      if (n.inflight > 0 || n.gen < n.ackGen || n.tok[dom] !== tok) continue;
      if (policy === 'static' && n.reservedForPriority !== reservedForPriority) continue;
      c.push(n);
    }
    return c;
  }
}

module.exports = {
  chunksFor,
  domainFor,
  tokenFor,
  candidatesFor,
  pick,
  room,
  roomAtMost,
  preempts,
  couldFitOnceSettled,
  FreeIndex,
  RankOrder,
};
