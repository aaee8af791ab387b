// @ts-check
/**
 * Builds the page's DOM from the model: one <tbody> per physical node (a header row with its
 * reachability, then one row per domain), the totals, and the detail panel with a domain's
 * timeline. Text from the daemons goes in through textContent only.
 */
import { clock, dateTime, duration, UNREACHABLE } from './model.js';

/**
 * @typedef {import('./model.js').PageNode} PageNode
 * @typedef {import('./model.js').PageDomain} PageDomain
 * @typedef {import('./model.js').PageJob} PageJob
 * @typedef {import('./model.js').Release} Release
 * @typedef {{
 *   atMs: number, committed: boolean, generation: number, cause: string, jobId: string, from: string, to: string,
 *   jobsStarted: string[], jobsEnded: string[], release: Release | null, resumedAfterMs: number | null, notes: string[]
 * }} TimelineEntry
 */

/** Columns of the nodes table (the node header row spans them all). */
export const COLUMNS = [
  'Domain',
  'State',
  'Since',
  'Uptime',
  'Image',
  'Jobs (id · CPUs · preempted)',
  'CPUs',
  'Preempted',
  'PBS is told',
  'Flap hold',
];

/** Jobs listed in a row before "+N more" (the detail panel lists all). */
const JOBS_IN_ROW = 3;

/**
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined>} [attrs]
 * @param {(Node | string | null | undefined | false)[]} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/**
 * A time cell that the ticker keeps current: "ago" (since then), "up" (uptime), "until" (time left).
 * @param {'ago' | 'up' | 'until'} kind
 * @param {number} ms
 * @param {number} nowMs the filter's clock
 * @param {string} [prefix]
 */
function liveTime(kind, ms, nowMs, prefix = '') {
  const t = h('time', {
    datetime: new Date(ms).toISOString(),
    title: dateTime(ms),
    'data-t': ms,
    'data-kind': kind,
    'data-prefix': prefix,
  });
  t.textContent = timeText(kind, ms, nowMs, prefix);
  return t;
}

/**
 * @param {string} kind
 * @param {number} ms
 * @param {number} nowMs
 * @param {string} prefix
 */
export function timeText(kind, ms, nowMs, prefix) {
  if (kind === 'until') return `${prefix}${duration(ms - nowMs)} left`;
  if (kind === 'up') return `${prefix}${duration(nowMs - ms)}`;
  return `${prefix}${duration(nowMs - ms)} ago`;
}

/** How long a changed row stays highlighted, ms. */
export const HIGHLIGHT_MS = 2000;

/** Takes the highlight off rows that changed more than HIGHLIGHT_MS ago (`localNowMs`: this browser's clock). */
export function fadeHighlights(/** @type {ParentNode} */ root, /** @type {number} */ localNowMs) {
  for (const el of root.querySelectorAll('tr.changed[data-changed-at]')) {
    const r = /** @type {HTMLElement} */ (el);
    if (localNowMs - Number(r.dataset.changedAt) >= HIGHLIGHT_MS) r.classList.remove('changed');
  }
}

/** Brings every live time of `root` up to `nowMs`. */
export function tick(/** @type {ParentNode} */ root, /** @type {number} */ nowMs) {
  for (const el of root.querySelectorAll('time[data-t]')) {
    const t = /** @type {HTMLElement} */ (el);
    const text = timeText(t.dataset.kind ?? 'ago', Number(t.dataset.t), nowMs, t.dataset.prefix ?? '');
    // Written only when it differs: every write makes the browser lay the table out again.
    if (t.textContent !== text) t.textContent = text;
  }
}

/** @param {string} state */
export function stateBadge(state) {
  return h('span', { class: `state s-${state.replace(/[^a-z-]/g, '')}` }, state);
}

/** @param {PageJob} j */
function jobText(j) {
  const parts = [j.id, `${j.cpus} CPU${j.cpus === 1 ? '' : 's'}`];
  if (j.preemptedSeconds > 0) parts.push(`preempted ${duration(j.preemptedSeconds * 1000)}`);
  if (j.suspended) parts.push('suspended');
  if (!j.preemptible) parts.push('not preemptible');
  return parts.join(' · ');
}

/**
 * One domain row. `changed`: columns to highlight (undefined: none; the row is new to the page).
 * @param {PageNode} n
 * @param {PageDomain} d
 * @param {Set<string> | undefined} changed
 * @param {number} nowMs
 */
function domainRow(n, d, changed, nowMs) {
  const cell = (/** @type {string} */ col, /** @type {(Node | string | null | false)[]} */ ...content) =>
    h('td', { class: changed?.has(col) ? `c-${col} cell-changed` : `c-${col}` }, ...content);
  const jobs = d.jobs.slice(0, JOBS_IN_ROW).map((j) => h('li', {}, jobText(j)));
  if (d.jobs.length > JOBS_IN_ROW) jobs.push(h('li', { class: 'more' }, `+${d.jobs.length - JOBS_IN_ROW} more`));
  const cpus = d.jobs.reduce((a, j) => a + j.cpus, 0);
  const held = d.heldUntilMs > nowMs;
  const row = h(
    'tr',
    {
      class: `domain${changed && changed.size > 0 ? ' changed' : ''}${n.reachable ? '' : ' stale'}`,
      'data-changed-at': changed && changed.size > 0 ? Date.now() : undefined,
      'data-node': n.name,
      'data-domain': d.name,
      'data-state': d.state,
      'data-gen': d.generation,
    },
    h(
      'td',
      { class: 'c-domain' },
      h(
        'button',
        { type: 'button', class: 'link', 'data-act': 'detail', 'aria-label': `${d.name}: details and timeline` },
        d.name,
      ),
      d.class === 'priority' ? h('span', { class: 'tag' }, 'priority') : null,
      d.offline ? h('span', { class: 'tag warn', title: d.offlineReason }, 'offline') : null,
      d.observed?.drift ? h('span', { class: 'tag warn', title: d.observed.detail }, 'drift') : null,
    ),
    cell('state', stateBadge(d.state), n.reachable ? null : h('span', { class: 'lastknown' }, 'last known')),
    cell('since', d.sinceMs > 0 ? liveTime('ago', d.sinceMs, nowMs) : '—'),
    cell('uptime', d.up ? liveTime('up', d.up.ms, nowMs, d.up.exact ? '' : '≥ ') : '—'),
    cell('image', d.image || '—'),
    cell('jobs', jobs.length > 0 ? h('ul', { class: 'jobs' }, ...jobs) : '—'),
    cell('cpus', String(cpus)),
    cell(
      'preempted',
      d.storedState === 'preempted' ? liveTime('ago', d.sinceMs, nowMs, 'since ') : null,
      d.storedState === 'preempted' && d.release ? h('span', { class: 'sub' }, ` (${d.release.mode})`) : null,
      d.storedState === 'preempted' ? h('br') : null,
      `${d.preemptedCpuSecondsTotal.toFixed(1)} CPU·s in all`,
    ),
    cell(
      'pbs',
      h('span', { class: `token t-${d.pbs.token.replace(/[^a-z]/g, '')}` }, d.pbs.token),
      ` rank ${d.pbs.rank}`,
      h('br'),
      h('span', { class: 'sub', title: d.pbs.reason }, d.pbs.comment),
    ),
    cell(
      'hold',
      held
        ? h('span', {}, 'held · ', liveTime('until', d.heldUntilMs, nowMs), ` (${d.flapCount} drops)`)
        : d.flapCount > 0
          ? `${d.flapCount} drop${d.flapCount === 1 ? '' : 's'}`
          : '—',
    ),
  );
  return row;
}

/**
 * A node's <tbody>: header row, then the given domains.
 * @param {PageNode} n
 * @param {PageDomain[]} domains
 * @param {Map<string, Set<string>> | undefined} changed
 * @param {number} nowMs
 */
export function nodeBody(n, domains, changed, nowMs) {
  const reach = n.reachable
    ? h('span', { class: 'reach ok' }, 'reachable')
    : h('span', { class: 'reach bad' }, n.synced ? UNREACHABLE : 'not reached yet');
  const header = h(
    'tr',
    {
      class: `node${changed?.has('') ? ' changed' : ''}`,
      'data-changed-at': changed?.has('') ? Date.now() : undefined,
    },
    h(
      'th',
      { scope: 'rowgroup', colspan: COLUMNS.length, id: `node-${n.name}` },
      h('span', { class: 'name' }, n.name),
      ' ',
      reach,
      ' ',
      h('span', { class: 'sub' }, n.address),
      n.reachable
        ? h('span', { class: 'sub' }, ` · generation ${n.generation} · heard `, liveTime('ago', n.lastSeenMs, nowMs))
        : h(
            'span',
            { class: 'why' },
            ' since ',
            liveTime('ago', n.sinceMs, nowMs),
            n.error ? `: ${n.error}` : '',
            n.synced ? ' — its domains show the last state heard; PBS is told they accept nothing' : '',
          ),
    ),
  );
  return h(
    'tbody',
    { 'data-node': n.name, class: n.reachable ? '' : 'unreachable' },
    header,
    ...domains.map((d) => domainRow(n, d, changed?.get(d.name), nowMs)),
  );
}

/**
 * @param {number} b
 */
function mib(b) {
  return `${(b / 1024 ** 2).toFixed(0)} MiB`;
}

/**
 * One timeline entry as a list item.
 * @param {TimelineEntry} e
 */
function timelineItem(e) {
  const what = [];
  if (e.to) what.push(e.from ? `${e.from} → ${e.to}` : `${e.to}`);
  if (e.jobsStarted.length) what.push(`job started: ${e.jobsStarted.join(', ')}`);
  if (e.jobsEnded.length) what.push(`job ended: ${e.jobsEnded.join(', ')}`);
  if (e.resumedAfterMs !== null) what.push(`resumed after ${duration(e.resumedAfterMs)} preempted`);
  what.push(...e.notes);
  const li = h(
    'li',
    { class: e.release ? 'preemption' : '' },
    h(
      'time',
      { datetime: new Date(e.atMs).toISOString() },
      `${clock(e.atMs)}.${String(e.atMs % 1000).padStart(3, '0')}`,
    ),
    ' ',
    h('span', { class: 'what' }, what.join('; ') || 'changed'),
    e.cause
      ? h('span', { class: 'sub' }, ` — ${e.cause}${e.jobId ? ` ${e.jobId}` : ''}, generation ${e.generation}`)
      : null,
    e.committed ? null : h('span', { class: 'sub' }, ' (seen by the filter)'),
  );
  if (e.release) {
    const r = e.release;
    li.append(
      h(
        'div',
        { class: 'phases' },
        `preempted (${r.mode}): `,
        r.phases.map((p) => `${p.name} ${p.millis.toFixed(2)} ms`).join(', ') || 'no driver phases',
        ` · released ${mib(r.memoryReleasedBytes)} · CPU weight ${r.cpuWeightBefore} → ${r.cpuWeightAfter}`,
      ),
    );
  }
  return li;
}

/**
 * The detail panel's content: the domain's facts, every job, and its timeline (newest first).
 * @param {PageNode} n
 * @param {PageDomain} d
 * @param {TimelineEntry[]} entries
 * @param {number} nowMs
 */
export function detailBody(n, d, entries, nowMs) {
  const facts = [
    ['vnode', d.vnode],
    ['class', d.class],
    ['state', d.state + (d.storedState !== d.state ? ` (stored: ${d.storedState})` : '')],
    ['image', d.image || '—'],
    [
      'driver sees',
      d.observed ? `${d.observed.power}, ${mib(d.observed.memoryBytes)}, CPU weight ${d.observed.cpuWeight}` : '—',
    ],
    ['PBS is told', `${d.pbs.token}, rank ${d.pbs.rank}, "${d.pbs.comment}" (${d.pbs.reason})`],
    ['preempted CPU·s', `${d.preemptedCpuSeconds.toFixed(1)} now, ${d.preemptedCpuSecondsTotal.toFixed(1)} in all`],
  ];
  if (d.downReason) facts.push(['down because', d.downReason]);
  if (d.offline) facts.push(['offline', d.offlineReason || 'no reason given']);
  const dl = h('dl', { class: 'facts' });
  for (const [k, v] of facts) dl.append(h('dt', {}, k), h('dd', {}, v ?? ''));
  const jobs = d.jobs.length
    ? h(
        'ul',
        { class: 'jobs' },
        ...d.jobs.map((j) => h('li', {}, jobText(j), ' · started ', liveTime('ago', j.startedAtMs, nowMs))),
      )
    : h('p', {}, 'No jobs.');
  const list = h('ol', { class: 'timeline', reversed: true }, ...[...entries].reverse().map(timelineItem));
  return [
    dl,
    h('h3', {}, 'Jobs'),
    jobs,
    h(
      'p',
      { class: 'note' },
      'Owners are not shown: the node daemon reports job ids only (qstat -f ID has the owner).',
    ),
    h('h3', {}, `Timeline (last ${entries.length} changes kept by the filter)`),
    entries.length ? list : h('p', {}, 'Nothing recorded yet.'),
    n.reachable ? null : h('p', { class: 'why' }, `${n.name} is unreachable: this is the last state heard.`),
  ];
}
