// @ts-check
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
 * spent suspended. Under `partial` the daemons count CPUs (CPU-counting mode): a priority job
 * suspends only the batch jobs the daemon names in its answer, and those are resumed when it
 * says so; the accounting check is then that the CPUs of a node's running jobs, as the filter
 * shows them, never exceed the node's (instead of "never two domains active at once"). Time inside the daemons is wall-clock time (only the replay's clock is
 * simulated), so `since` and the preempted-CPU-seconds rank input are compressed.
 *
 * The parts: cluster.js (the real processes), filter-view.js (what the filter publishes),
 * hook-client.js (starts and ends), placement.js (the PBS stand-in's rules), simulation.js (the
 * event loop), results.js (what is reported).
 */
const { killSpawned, cpuOf, startCluster, stopCluster } = require('./cluster');
const { Heap } = require('./event-heap');
const { FilterView } = require('./filter-view');
const { HookClient } = require('./hook-client');
const { chunksFor } = require('./placement');
const { summarize } = require('./results');
const { Simulation } = require('./simulation');
const { Waiters } = require('./waiters');

/** @typedef {import('./placement').Policy} Policy */
/** @typedef {import('./placement').SimNode} SimNode */
/** @typedef {import('./swf').Job} Job */
/** @typedef {import('./cluster').ReadyNode} ReadyNode */
/** @typedef {import('./cluster').Spawned} Spawned */

/** @type {readonly Policy[]} */
const POLICIES = ['magrathea', 'partial', 'static', 'nopriority'];

/**
 * @typedef {object} ReplayOptions
 * @property {readonly { name: string, cpus: number }[]} machine the physical nodes
 * @property {readonly Job[]} jobs
 * @property {string} policy one of POLICIES
 * @property {number} [hosts] node host processes (default 2)
 * @property {import('./simulation').Placement} [placement] how the PBS stand-in finds room (default indexed)
 * @property {(done: number, total: number, startsPerSecond: number) => void} [onProgress] called now and then
 */

/**
 * The replay's view of each physical node, before anything is published.
 * @param {readonly { name: string, cpus: number }[]} machine
 * @param {readonly ReadyNode[]} ready
 * @returns {SimNode[]}
 */
function simNodes(machine, ready) {
  return machine.map((m, i) => {
    const r = /** @type {ReadyNode} */ (ready.find((x) => x.name === m.name));
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
      pendingCpus: { batch: 0, prio: 0 },
      chain: Promise.resolve(),
      settled: null,
    };
  });
}

/**
 * Replays `jobs` on `machine` ([{name, cpus}]) under `policy`. Returns the metrics and the
 * accounting checks. `onProgress(done, total, startsPerSecond)` is called now and then.
 * @param {ReplayOptions} opts
 */
async function replay(opts) {
  // Whatever fails, no child process (node hosts, filter) and no tmpfs state is left behind.
  /** @type {Spawned} */
  const spawned = { children: new Set(), dir: null };
  try {
    return await replayWith(opts, spawned);
  } catch (err) {
    killSpawned(spawned);
    throw err;
  }
}

/**
 * @param {ReplayOptions} opts
 * @param {Spawned} spawned
 */
async function replayWith({ machine, jobs, policy, hosts = 2, placement, onProgress = () => undefined }, spawned) {
  if (!POLICIES.includes(/** @type {Policy} */ (policy)))
    throw new Error(`unknown policy ${policy} (one of ${POLICIES.join(', ')})`);
  const tSetup = Date.now();
  const cpuCounting = policy === 'partial';
  const cluster = await startCluster(machine, hosts, spawned, cpuCounting);
  const nodes = simNodes(machine, cluster.ready);
  const changed = new Waiters();
  /** @type {string[]} */
  const violations = [];
  const view = new FilterView(cluster.filter.grpcPort, nodes, changed, violations, cpuCounting);
  const hooks = new HookClient();
  await view.start();

  const sim = new Simulation({
    policy: /** @type {Policy} */ (policy),
    jobs,
    nodes,
    view,
    hooks,
    changed,
    violations,
    onProgress,
    ...(placement ? { placement } : {}),
  });
  const cpu0 = await cpuOf(cluster.hostProcs, cluster.filter);
  const setupSeconds = (Date.now() - tSetup) / 1000;
  await sim.run();
  const wallSeconds = (Date.now() - sim.t0) / 1000;
  const cpu1 = await cpuOf(cluster.hostProcs, cluster.filter);
  const cpuSeconds = {
    daemons: cpu1.hosts - cpu0.hosts,
    filter: cpu1.filter - cpu0.filter,
    placement: cpu1.replay - cpu0.replay,
  };
  onProgress(sim.done, jobs.length, wallSeconds > 0 ? sim.starts / wallSeconds : 0);

  view.stop();
  hooks.destroy();
  await stopCluster(cluster);
  return summarize({ sim, machine, activeViews: view.activeViews, wallSeconds, setupSeconds, cpuSeconds });
}

module.exports = { replay, chunksFor, POLICIES, Heap };
