// @ts-check
/**
 * The status page: connects to the filter's feed, keeps the model, and renders the current page
 * of nodes at most once per animation frame (updates arriving meanwhile are merged), with the
 * changed rows highlighted. Filters and paging live in the URL hash, so a view can be shared.
 */
import { connectFeed } from './feed.js';
import {
  apply,
  clock,
  createModel,
  filteredNames,
  formatHash,
  parseHash,
  STATES,
  totals,
  UNREACHABLE,
  visibleDomains,
} from './model.js';
import { detailBody, fadeHighlights, h, nodeBody, stateBadge, tick } from './view.js';

/** @typedef {import('./model.js').PageNode} PageNode */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const table = /** @type {HTMLTableElement} */ ($('nodes'));
const fState = /** @type {HTMLSelectElement} */ ($('f-state'));
const fImage = /** @type {HTMLSelectElement} */ ($('f-image'));
const fNode = /** @type {HTMLInputElement} */ ($('f-node'));
const fSize = /** @type {HTMLSelectElement} */ ($('f-size'));
const prev = /** @type {HTMLButtonElement} */ ($('prev'));
const next = /** @type {HTMLButtonElement} */ ($('next'));
const detail = $('detail');

const model = createModel();
let view = parseHash(location.hash);
/** The rendered <tbody> of each node on the page now. @type {Map<string, HTMLElement>} */
const bodies = new Map();
/** @typedef {Map<string, Map<string, Set<string>>>} Changes */
/** Changes since the last render: node → domain → columns. @type {Changes} */
let pending = new Map();
let viewChanged = true;
let frame = 0;
let lastUpdateMs = 0;
let live = false;
/** @type {{ node: string, domain: string } | null} */
let open = null;
let detailTimer = 0;

const serverNow = () => Date.now() + model.serverOffsetMs;

for (const s of [...STATES, UNREACHABLE])
  fState.append(h('option', { value: s }, s === UNREACHABLE ? 'unreachable (node)' : s));

function syncControls() {
  fState.value = view.state;
  fNode.value = view.node;
  fSize.value = String(view.size);
}
syncControls();

function setView(/** @type {Partial<typeof view>} */ change) {
  view = { ...view, ...change };
  history.replaceState(null, '', formatHash(view) || location.pathname);
  viewChanged = true;
  schedule();
}

fState.addEventListener('change', () => setView({ state: fState.value, page: 1 }));
fImage.addEventListener('change', () => setView({ image: fImage.value, page: 1 }));
fNode.addEventListener('input', () => setView({ node: fNode.value.trim(), page: 1 }));
fSize.addEventListener('change', () => setView({ size: Number(fSize.value), page: 1 }));
prev.addEventListener('click', () => setView({ page: Math.max(1, view.page - 1) }));
next.addEventListener('click', () => setView({ page: view.page + 1 }));
$('filters').addEventListener('submit', (e) => e.preventDefault());
window.addEventListener('hashchange', () => {
  view = parseHash(location.hash);
  syncControls();
  viewChanged = true;
  schedule();
});

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

/** Merges one update's changes into those not rendered yet. */
function mergeChanges() {
  for (const [node, doms] of model.changed) {
    /** @type {Map<string, Set<string>>} */
    const p = pending.get(node) ?? new Map();
    for (const [d, cols] of doms) p.set(d, new Set([...(p.get(d) ?? []), ...cols]));
    pending.set(node, p);
  }
}

function renderTotals() {
  const t = totals(model);
  const list = $('totals');
  list.replaceChildren(
    ...[...t.states]
      .filter(([s, c]) => c > 0 || s === 'preempted' || s === 'free')
      .map(([s, c]) =>
        h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              'data-state': s,
              'aria-pressed': view.state === s ? 'true' : 'false',
              'aria-label': `${c} ${s}: show only these`,
            },
            stateBadge(s),
            h('span', { class: 'count' }, String(c)),
          ),
        ),
      ),
  );
  $('summary').textContent =
    `${t.nodes} nodes: ${t.reachable} reachable, ${t.unreachable} unreachable · ` +
    `${[...t.states.values()].reduce((a, b) => a + b, 0)} domains · ${t.jobs} jobs on ${t.cpus} CPUs`;
  const images = ['', ...t.images];
  if ([...fImage.options].map((o) => o.value).join('\n') !== images.join('\n'))
    fImage.replaceChildren(...images.map((i) => h('option', { value: i }, i || 'any image')));
  fImage.value = images.includes(view.image) ? view.image : '';
}

function render() {
  frame = 0;
  const now = serverNow();
  const names = filteredNames(model, view);
  const pages = Math.max(1, Math.ceil(names.length / view.size));
  if (view.page > pages) view = { ...view, page: pages };
  const shown = names.slice((view.page - 1) * view.size, view.page * view.size);
  const keep = new Set(shown);
  for (const [name, body] of bodies)
    if (!keep.has(name)) {
      body.remove();
      bodies.delete(name);
    }
  /** @type {ChildNode | null} */
  let cursor = null;
  for (const name of shown) {
    const n = /** @type {PageNode} */ (model.nodes.get(name));
    let body = bodies.get(name);
    const changed = pending.get(name);
    if (!body || changed || viewChanged) {
      const fresh = nodeBody(n, visibleDomains(n, view), changed, now);
      if (body) body.replaceWith(fresh);
      body = fresh;
      bodies.set(name, body);
    }
    // Keep the page's order: each node right after the one before it (the first right after the head).
    /** @type {ChildNode | null} */
    const expected = cursor ? cursor.nextSibling : (table.tHead?.nextSibling ?? null);
    if (body !== expected) table.insertBefore(body, expected);
    cursor = body;
  }
  const detailChanged = open !== null && pending.has(open.node);
  pending = /** @type {Changes} */ (new Map());
  viewChanged = false;
  $('page-info').textContent =
    names.length === 0
      ? 'No node matches the filter.'
      : `Nodes ${(view.page - 1) * view.size + 1}–${Math.min(names.length, view.page * view.size)} of ${names.length} (page ${view.page} of ${pages})`;
  prev.disabled = view.page <= 1;
  next.disabled = view.page >= pages;
  renderTotals();
  if (detailChanged) refreshDetail();
}

// Clicks on totals (filter by that state) and on domain names (details and timeline).
document.addEventListener('click', (e) => {
  const t = /** @type {HTMLElement} */ (e.target);
  const total = t.closest('#totals button');
  if (total instanceof HTMLElement) {
    const s = total.dataset.state ?? '';
    setView({ state: view.state === s ? '' : s, page: 1 });
    syncControls();
    return;
  }
  const btn = t.closest('button[data-act="detail"]');
  const row = btn?.closest('tr');
  if (row instanceof HTMLElement && row.dataset.node && row.dataset.domain) {
    open = { node: row.dataset.node, domain: row.dataset.domain };
    detail.hidden = false;
    refreshDetail();
    $('detail-close').focus();
  }
});
$('detail-close').addEventListener('click', () => {
  open = null;
  detail.hidden = true;
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && open) $('detail-close').click();
});

/** Loads the open domain's timeline (at most every 250 ms while it keeps changing). */
function refreshDetail() {
  if (detailTimer) return;
  detailTimer = window.setTimeout(async () => {
    detailTimer = 0;
    if (!open) return;
    const { node, domain } = open;
    $('detail-h').textContent = `${node} / ${domain}`;
    try {
      const r = await fetch(`/api/timeline?node=${encodeURIComponent(node)}&domain=${encodeURIComponent(domain)}`);
      if (!r.ok) throw new Error(`the filter answered ${r.status}`);
      /** @type {unknown} */
      const body = await r.json();
      const t = /** @type {{ entries: import('./view.js').TimelineEntry[] }} */ (body);
      const n = model.nodes.get(node);
      const d = n?.domains.find((x) => x.name === domain);
      if (!n || !d || open?.node !== node || open.domain !== domain) return;
      $('detail-body').replaceChildren(...detailBody(n, d, t.entries, serverNow()).filter((x) => x !== null));
    } catch (err) {
      $('detail-body').replaceChildren(h('p', { class: 'why' }, `Timeline not available: ${String(err)}`));
    }
  }, 0);
}

function status(/** @type {string} */ text, /** @type {boolean} */ ok) {
  const c = $('conn');
  c.textContent = text;
  c.className = ok ? 'live' : 'lost';
}

connectFeed('/api/events', {
  onSnapshot(m) {
    apply(model, m, true, Date.now());
    lastUpdateMs = Date.now();
    viewChanged = true;
    pending = /** @type {Changes} */ (new Map());
    schedule();
  },
  onDelta(m) {
    apply(model, m, false, Date.now());
    lastUpdateMs = Date.now();
    mergeChanges();
    schedule();
  },
  onStatus(s) {
    const banner = $('banner');
    live = s.live;
    document.body.classList.toggle('offline', !s.live);
    if (s.live) {
      banner.hidden = true;
      banner.textContent = '';
      status(`Live: updates from the filter as they happen.`, true);
      return;
    }
    banner.hidden = false;
    banner.textContent =
      `Not connected to the filter: ${s.reason}. Reconnecting (attempt ${s.attempt}, in ${Math.round(s.retryInMs / 1000)} s). ` +
      (lastUpdateMs
        ? `What is shown is as of ${clock(lastUpdateMs)} and may be out of date.`
        : 'Nothing received yet.');
    status('Disconnected from the filter.', false);
  },
});

// Live times move on every second, highlights fade; while disconnected the banner says how old the data is.
setInterval(() => {
  tick(table, serverNow());
  fadeHighlights(table, Date.now());
  if (!detail.hidden) tick(detail, serverNow());
  if (live && lastUpdateMs) $('conn').title = `last update at ${clock(lastUpdateMs)}`;
}, 1000);
