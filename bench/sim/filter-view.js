// @ts-check
'use strict';
/**
 * What the PBS stand-in knows of the cluster: the filter's published values for every vnode,
 * read from its WatchCluster stream (the same values its qmgr batches carry). A node is
 * "dirty" from a daemon answer until the view shows that answer's generation. The view also
 * checks exclusivity: never two active domains on a node.
 */
const grpc = require('@grpc/grpc-js');
const { loadMagratheaApi } = require('@magrathea/common');
const { Waiters } = require('./waiters');

/** @typedef {import('./placement').SimNode} SimNode */
/** @typedef {import('@magrathea/common').NodeViewMessage} NodeViewMessage */
/** @typedef {import('@magrathea/common').ClusterEventMessage} ClusterEventMessage */

const ACTIVE = new Set(['running', 'running-preemptible', 'running-priority']);

class FilterView {
  /**
   * @param {number} grpcPort the filter's ClusterService
   * @param {readonly SimNode[]} nodes
   * @param {Waiters} changed woken whenever the view moves a dirty node on
   * @param {string[]} violations where exclusivity violations are reported
   * @param {boolean} [cpuCounting] CPU-counting mode: check the CPUs of running jobs instead of exclusivity
   */
  constructor(grpcPort, nodes, changed, violations, cpuCounting = false) {
    this.cpuCounting = cpuCounting;
    const api = loadMagratheaApi();
    this.cluster = new api.magrathea.v1.ClusterService(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
    this.nodes = nodes;
    this.byName = new Map(nodes.map((n) => [n.name, n]));
    this.changed = changed;
    this.violations = violations;
    /** Nodes whose last answer the view does not show yet. */
    this.dirtyCount = 0;
    /** Bumped whenever a published rank changed (the placement re-sorts only then). */
    this.rankVersion = 0;
    this.clean = new Waiters();
    /** Views with an active domain: shows the exclusivity check saw real states. */
    this.activeViews = 0;
    /** @type {grpc.ClientReadableStream<ClusterEventMessage> | null} */
    this.watch = null;
    /** @type {(() => void) | null} */
    this.onSynced = null;
  }

  /** @returns {Promise<void>} resolved once the filter shows every domain accepting its class */
  start() {
    const synced = new Promise((resolve) => (this.onSynced = () => resolve(undefined)));
    const watch = this.cluster.WatchCluster({});
    this.watch = watch;
    watch.on('data', (/** @type {ClusterEventMessage} */ ev) => {
      if (ev.snapshot) for (const v of ev.snapshot.nodes) this.onNodeView(v);
      else if (ev.node) this.onNodeView(ev.node);
    });
    watch.on('error', () => undefined);
    return Promise.race([
      synced,
      new Promise((_, rej) =>
        setTimeout(() => rej(new Error('the filter did not see every domain free in 60 s')), 60_000),
      ),
    ]);
  }

  /** @param {NodeViewMessage} v */
  onNodeView(v) {
    const n = this.byName.get(v.name);
    if (!n) return;
    const wasDirty = n.gen < n.ackGen;
    n.gen = Math.max(n.gen, Number(v.generation));
    let active = 0;
    for (const vn of v.vnodes ?? []) {
      const dom = vn.domain;
      if (dom !== 'batch' && dom !== 'prio') continue;
      n.tok[dom] = v.reachable ? vn.magrathea : 'none';
      if (n.rank[dom] !== vn.rank) this.rankVersion++;
      n.rank[dom] = vn.rank;
      if (vn.detail && ACTIVE.has(vn.detail.state)) active++;
    }
    if (active > 0) this.activeViews++;
    if (this.cpuCounting) {
      // CPU-counting mode: domains may be active together; the CPUs of their running jobs fit the node.
      const held = (v.vnodes ?? []).reduce((s, vn) => s + (vn.detail?.cpus_running ?? 0), 0);
      if (held > n.cpus) this.violations.push(`${v.name}: running jobs hold ${held} CPUs, the node has ${n.cpus}`);
    } else if (active > 1) this.violations.push(`${v.name}: ${active} domains active at generation ${v.generation}`);
    if (wasDirty && n.gen >= n.ackGen) {
      this.changed.wake();
      this.dirtyCount--;
      if (this.dirtyCount === 0) this.clean.wake();
    }
    if (this.onSynced && this.nodes.every((x) => x.tok.batch === 'normal' && x.tok.prio === 'priority')) {
      this.onSynced();
      this.onSynced = null;
    }
  }

  /**
   * A daemon answered with `generation`: the node is dirty until the view shows it.
   * @param {SimNode} n
   * @param {number} generation
   */
  markAck(n, generation) {
    const wasDirty = n.gen < n.ackGen;
    n.ackGen = Math.max(n.ackGen, generation);
    if (!wasDirty && n.gen < n.ackGen) this.dirtyCount++;
  }

  /** @returns {Promise<void>} resolved once no node is dirty */
  waitClean() {
    return this.dirtyCount === 0
      ? Promise.resolve()
      : this.clean.nextWithin(30_000, 'the filter did not catch up within 30 s');
  }

  stop() {
    this.watch?.cancel();
    this.cluster.close();
  }
}

module.exports = { FilterView };
