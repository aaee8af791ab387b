// @ts-check
/**
 * The status page's model: every node as the filter last sent it, what changed in the last
 * update (for highlighting), the filter (state / image / node), totals per state, and the
 * formatting of times. Pure: no DOM, no network.
 */

/**
 * @typedef {{ id: string, cpus: number, preemptible: boolean, startedAtMs: number, preemptedSeconds: number, suspended: boolean }} PageJob
 * @typedef {{ name: string, millis: number }} Phase
 * @typedef {{ atMs: number, mode: string, memoryReleasedBytes: number, cpuWeightBefore: number, cpuWeightAfter: number, phases: Phase[] }} Release
 * @typedef {{
 *   name: string, vnode: string, class: string, state: string, storedState: string, generation: number,
 *   sinceMs: number, up: { ms: number, exact: boolean } | null, image: string, offline: boolean,
 *   offlineReason: string, downReason: string, jobs: PageJob[], preemptedCpuSeconds: number,
 *   preemptedCpuSecondsTotal: number, flapCount: number, heldUntilMs: number,
 *   pbs: { token: string, state: string, rank: number, comment: string, reason: string },
 *   release: Release | null,
 *   observed: { power: string, memoryBytes: number, cpuWeight: number, drift: boolean, detail: string } | null
 * }} PageDomain
 * @typedef {{
 *   name: string, address: string, reachable: boolean, synced: boolean, error: string, sinceMs: number,
 *   lastSeenMs: number, generation: number, commitAtMs: number, domains: PageDomain[]
 * }} PageNode
 * @typedef {{ seq: number, nowMs: number, intervalMs?: number, heartbeatMs?: number, nodes: PageNode[] }} FeedMessage
 * @typedef {{ state: string, image: string, node: string }} Filter
 * @typedef {{
 *   nodes: Map<string, PageNode>,
 *   names: string[],
 *   changed: Map<string, Map<string, Set<string>>>,
 *   serverOffsetMs: number,
 * }} Model
 */

/** Every state a daemon reports (ARCHITECTURE §3), in the order the page lists them. */
export const STATES = [
  'free',
  'running',
  'running-priority',
  'running-preemptible',
  'preempted',
  'occupied',
  'occupied-would-preempt',
  'occupied-booting',
  'booting',
  'down-bootable',
  'down',
  'frozen',
  'removed',
];

/**
 * Nodes per page the page offers. Not more: with 1,000 nodes (3,000 rows) on one page the browser
 * needs seconds per update under 1,000 changes/s (BENCHMARKS.md, docs/status-page.md).
 */
export const PAGE_SIZES = [25, 50, 100, 200];

/** The filter's value for "the node daemon cannot be reached" (a node, not a domain, state). */
export const UNREACHABLE = 'unreachable';

/** @returns {Model} */
export function createModel() {
  return { nodes: new Map(), names: [], changed: new Map(), serverOffsetMs: 0 };
}

/** Natural order of node names: n2 before n10. */
const collator = new Intl.Collator('en', { numeric: true });

/**
 * What differs between two versions of a domain, as the page's column names.
 * @param {PageDomain | undefined} a
 * @param {PageDomain} b
 * @returns {Set<string>}
 */
export function domainDiff(a, b) {
  /** @type {Set<string>} */
  const d = new Set();
  if (!a) return d;
  if (a.state !== b.state) d.add('state');
  if (a.sinceMs !== b.sinceMs) d.add('since');
  if (a.image !== b.image) d.add('image');
  if (a.jobs.map((j) => j.id).join() !== b.jobs.map((j) => j.id).join()) d.add('jobs');
  if (
    a.pbs.token !== b.pbs.token ||
    a.pbs.state !== b.pbs.state ||
    a.pbs.rank !== b.pbs.rank ||
    a.pbs.comment !== b.pbs.comment
  )
    d.add('pbs');
  if (a.heldUntilMs !== b.heldUntilMs || a.flapCount !== b.flapCount) d.add('hold');
  if ((a.release?.atMs ?? 0) !== (b.release?.atMs ?? 0)) d.add('preempted');
  return d;
}

/**
 * Applies a snapshot (replaces everything) or a delta (replaces the nodes it carries) and
 * records what changed, node → domain → columns ('' domain: the node's own header).
 * @param {Model} m
 * @param {FeedMessage} msg
 * @param {boolean} snapshot
 * @param {number} localNowMs
 */
export function apply(m, msg, snapshot, localNowMs) {
  m.serverOffsetMs = msg.nowMs - localNowMs;
  m.changed = new Map();
  if (snapshot) m.nodes = new Map();
  let added = snapshot;
  for (const n of msg.nodes) {
    const old = m.nodes.get(n.name);
    if (!old) added = true;
    else {
      /** @type {Map<string, Set<string>>} */
      const c = new Map();
      if (old.reachable !== n.reachable || old.synced !== n.synced) c.set('', new Set(['reach']));
      const before = new Map(old.domains.map((d) => [d.name, d]));
      for (const d of n.domains) {
        const diff = domainDiff(before.get(d.name), d);
        if (!before.has(d.name)) diff.add('state');
        if (diff.size > 0) c.set(d.name, diff);
      }
      if (c.size > 0) m.changed.set(n.name, c);
    }
    m.nodes.set(n.name, n);
  }
  if (added) m.names = [...m.nodes.keys()].sort(collator.compare);
}

/**
 * The domains of `n` the filter shows (an empty list: the node is not shown).
 * @param {PageNode} n
 * @param {Filter} f
 * @returns {PageDomain[]}
 */
export function visibleDomains(n, f) {
  if (f.node && !n.name.toLowerCase().includes(f.node.toLowerCase())) return [];
  if (f.state === UNREACHABLE) return n.reachable ? [] : n.domains.filter((d) => !f.image || d.image === f.image);
  return n.domains.filter((d) => (!f.state || d.state === f.state) && (!f.image || d.image === f.image));
}

/**
 * Names of the nodes the filter shows, in order. A node with no domain yet (never reached) is
 * shown only without a state or image filter.
 * @param {Model} m
 * @param {Filter} f
 * @returns {string[]}
 */
export function filteredNames(m, f) {
  return m.names.filter((name) => {
    const n = /** @type {PageNode} */ (m.nodes.get(name));
    if (n.domains.length === 0)
      return (
        (!f.state || (f.state === UNREACHABLE && !n.reachable)) &&
        !f.image &&
        (!f.node || name.toLowerCase().includes(f.node.toLowerCase()))
      );
    return visibleDomains(n, f).length > 0;
  });
}

/**
 * Domains per state, nodes reachable / unreachable, images seen, jobs and their CPUs.
 * @param {Model} m
 */
export function totals(m) {
  /** @type {Map<string, number>} */
  const states = new Map(STATES.map((s) => [s, 0]));
  /** @type {Set<string>} */
  const images = new Set();
  let reachable = 0;
  let unreachable = 0;
  let jobs = 0;
  let cpus = 0;
  for (const n of m.nodes.values()) {
    if (n.reachable) reachable++;
    else unreachable++;
    for (const d of n.domains) {
      states.set(d.state, (states.get(d.state) ?? 0) + 1);
      if (d.image) images.add(d.image);
      jobs += d.jobs.length;
      for (const j of d.jobs) cpus += j.cpus;
    }
  }
  return { states, images: [...images].sort(), reachable, unreachable, jobs, cpus, nodes: m.nodes.size };
}

/**
 * "3d 4h", "2h 05m", "4m 03s", "12s", "0.4s".
 * @param {number} ms
 */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  if (s < 10 && ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** One formatter each (toLocale…String builds a new one on every call, which costs more than the rest of a row). */
const clockFormat = new Intl.DateTimeFormat('en-GB', {
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});
const dateFormat = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'medium', hour12: false });

/**
 * A clock time with seconds, in the browser's time zone.
 * @param {number} ms
 */
export function clock(ms) {
  return clockFormat.format(ms);
}

/**
 * A date and time, in the browser's time zone.
 * @param {number} ms
 */
export function dateTime(ms) {
  return dateFormat.format(ms);
}

/**
 * Reads the filter from a URL hash (#state=preempted&image=sl7&node=n1).
 * @param {string} hash
 * @returns {Filter & { page: number, size: number }}
 */
export function parseHash(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const size = Number(p.get('size'));
  const page = Number(p.get('page'));
  return {
    state: p.get('state') ?? '',
    image: p.get('image') ?? '',
    node: p.get('node') ?? '',
    page: Number.isInteger(page) && page > 0 ? page : 1,
    size: PAGE_SIZES.includes(size) ? size : 50,
  };
}

/**
 * @param {Filter & { page: number, size: number }} f
 */
export function formatHash(f) {
  const p = new URLSearchParams();
  if (f.state) p.set('state', f.state);
  if (f.image) p.set('image', f.image);
  if (f.node) p.set('node', f.node);
  if (f.page > 1) p.set('page', String(f.page));
  if (f.size !== 50) p.set('size', String(f.size));
  const s = p.toString();
  return s ? `#${s}` : '';
}
