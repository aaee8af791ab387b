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

module.exports = { chunksFor, domainFor, tokenFor, candidatesFor, pick, room };
