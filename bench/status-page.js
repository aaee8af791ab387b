// @ts-check
'use strict';
/**
 * Status page benchmark: N light node daemons (the real NodeService contract, rich domains: images,
 * jobs, preemption phases) in simulator processes, the real magrathea-filter serving its status
 * page, and the page itself in Debian's headless Chromium. Measures the time from a daemon's commit
 * (its own timestamp) to the moment the page's DOM shows that change or a later one of the same
 * domain, for every change of a node on the page; how long the page's main thread is blocked; and
 * how long a filter change takes to show while the changes pour in.
 */
const fs = require('node:fs');
const { chromium } = require('playwright-core');
const { fmt, percentile, procStats, startSinkFilter, tmpDir } = require('./lib');
const { startSims, SIMS } = require('./filter-scale');

const CHROMIUM = process.env.MAGRATHEA_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run']; // prettier-ignore

/** Runs in the page before its scripts: when each domain row of a generation first appeared, and long tasks. */
const OBSERVER = `
window.__seen = new Map();
window.__long = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); }).observe({ entryTypes: ['longtask'] });
new MutationObserver((muts) => {
  const t = Date.now();
  for (const m of muts)
    for (const n of m.addedNodes) {
      if (n.nodeType !== 1) continue;
      const rows = n.matches('tr[data-gen]') ? [n] : n.querySelectorAll('tr[data-gen]');
      for (const r of rows) {
        const k = r.dataset.node + '/' + r.dataset.domain + '/' + r.dataset.gen;
        if (!window.__seen.has(k)) window.__seen.set(k, t);
      }
    }
}).observe(document, { childList: true, subtree: true });
`;

/** In the page: choose a state in the filter, time until the frame after it is drawn, and lift the filter again. */
const FILTER_PROBE = `(async () => {
  const s = document.getElementById('f-state');
  const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const t0 = performance.now();
  s.value = 'preempted';
  s.dispatchEvent(new Event('change'));
  await frame();
  const took = performance.now() - t0;
  s.value = '';
  s.dispatchEvent(new Event('change'));
  await frame();
  return took;
})()`;

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @param {import('node:child_process').ChildProcess} child
 * @returns {Promise<[string, number, number, string[]][]>}
 */
function commitsOf(child) {
  return new Promise((resolve) => {
    child.once('message', (/** @type {{ commits: [string, number, number, string[]][] }} */ m) => resolve(m.commits));
    child.send({ cmd: 'commits' });
  });
}

/**
 * @param {{ total: number, rate: number, pageSize: number, seconds: number }} c
 */
async function runCase({ total, rate, pageSize, seconds }) {
  const dir = tmpDir('mg-statusbench-');
  const sims = await startSims(total, ['rich']);
  const nodes = sims.flatMap((s) => s.nodes);
  /** @type {import('playwright-core').BrowserContext | null} */
  let context = null;
  const filter = await startSinkFilter({
    dir,
    nodes,
    extra: ['web: { enabled: true, listen: "127.0.0.1:0" }'],
  });
  try {
    const base = `http://127.0.0.1:${filter.webPort}`;
    let snapshotBytes = 0;
    for (const t0 = Date.now(); ;) {
      const text = await (await fetch(`${base}/api/nodes`)).text();
      snapshotBytes = text.length;
      const r = /** @type {{ nodes: { reachable: boolean }[] }} */ (JSON.parse(text));
      if (r.nodes.filter((n) => n.reachable).length === total) break;
      if (Date.now() - t0 > 300_000) throw new Error('the filter did not reach every node in 5 minutes');
      await sleep(500);
    }
    context = await chromium.launchPersistentContext(`${dir}/profile`, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1500, height: 900 },
      args: FLAGS,
      // The page's policy forbids eval, which playwright's string predicates use; nothing else changes.
      bypassCSP: true,
    });
    const page = await context.newPage();
    if (process.env.BENCH_REDUCED_MOTION === '1') await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.addInitScript({ content: OBSERVER });
    const tl = Date.now();
    await page.goto(`${base}/#size=${pageSize}`);
    const shown = Math.min(pageSize, total);
    await page.waitForFunction(`document.querySelectorAll('tr.domain').length === ${shown * 3}`, undefined, {
      timeout: 60_000,
    });
    const loadMs = Date.now() - tl;
    const visible = new Set(
      /** @type {string[]} */ (
        await page.evaluate(`[...document.querySelectorAll('tbody[data-node]')].map((b) => b.dataset.node)`)
      ),
    );
    for (const s of sims) s.child.send({ cmd: 'rate', perSecond: rate / SIMS });
    await sleep(3000); // warm-up
    await Promise.all(sims.map((s) => commitsOf(s.child)));
    await page.evaluate('window.__long.length = 0');
    const a = procStats(filter.proc.pid);
    const ta = Date.now();
    /** @type {number[]} */
    const probes = [];
    for (let i = 0; i < seconds; i++) {
      await sleep(1000);
      if (i % 3 === 1) probes.push(/** @type {number} */ (await page.evaluate(FILTER_PROBE)));
    }
    const filterCpu = (procStats(filter.proc.pid).cpuSeconds - a.cpuSeconds) / ((Date.now() - ta) / 1000);
    for (const s of sims) s.child.send({ cmd: 'rate', perSecond: 0 });
    await sleep(1500); // the last changes reach the page
    const commits = (await Promise.all(sims.map((s) => commitsOf(s.child)))).flat();
    /** @type {[string, number][]} */
    const seenList = /** @type {[string, number][]} */ (await page.evaluate('[...window.__seen]'));
    const longTasks = /** @type {number[]} */ (await page.evaluate('window.__long'));
    /** @type {Map<string, [number, number][]>} node/domain → [generation, first seen] ascending */
    const seen = new Map();
    for (const [k, t] of seenList) {
      const i = k.lastIndexOf('/');
      const key = k.slice(0, i);
      const list = seen.get(key) ?? [];
      list.push([Number(k.slice(i + 1)), t]);
      seen.set(key, list);
    }
    for (const l of seen.values()) l.sort((x, y) => x[0] - y[0]);
    /** @type {number[]} */
    const lat = [];
    let unseen = 0;
    for (const [node, gen, at, doms] of commits) {
      if (!visible.has(node)) continue;
      for (const d of doms) {
        const shownAt = seen.get(`${node}/${d}`)?.find(([g]) => g >= gen)?.[1];
        if (shownAt === undefined) unseen++;
        else lat.push(shownAt - at);
      }
    }
    lat.sort((x, y) => x - y);
    probes.sort((x, y) => x - y);
    return {
      total,
      rate,
      shown,
      commits: commits.length,
      n: lat.length,
      unseen,
      p50: percentile(lat, 50),
      p95: percentile(lat, 95),
      p99: percentile(lat, 99),
      max: lat.at(-1) ?? NaN,
      longest: Math.max(0, ...longTasks),
      longCount: longTasks.length,
      probe50: percentile(probes, 50),
      probeMax: probes.at(-1) ?? NaN,
      filterCpu,
      seconds,
      loadMs,
      snapshotBytes,
    };
  } finally {
    await context?.close();
    for (const s of sims) s.child.send({ cmd: 'exit' });
    filter.proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Share of the machine's CPU busy with other work before the benchmark starts (1 s sample of /proc/stat). */
async function backgroundLoad() {
  const sample = () => {
    const f = /** @type {string} */ (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0])
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return { idle: (f[3] ?? 0) + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) };
  };
  const a = sample();
  await sleep(1000);
  const b = sample();
  return 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
}

async function run() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  const busy = await backgroundLoad();
  const seconds = Number(process.env.BENCH_SECONDS ?? 15);
  const total = Number(process.env.BENCH_NODES ?? 1000);
  const cases = [
    { total, rate: 100, pageSize: 50, seconds },
    { total, rate: 1000, pageSize: 50, seconds },
    { total, rate: 100, pageSize: 200, seconds },
    { total, rate: 1000, pageSize: 200, seconds },
    { total: Number(process.env.BENCH_BIG_NODES ?? 10_000), rate: 1000, pageSize: 50, seconds },
  ];
  const results = [];
  for (const c of cases) {
    process.stdout.write(`  status page: ${c.total} nodes, ${c.rate} changes/s, ${c.pageSize} per page …\n`);
    results.push(await runCase(c));
  }
  const rows = results.map((r) => [
    String(r.total),
    String(r.rate),
    String(r.shown),
    String(r.n),
    fmt(r.p50, 0),
    fmt(r.p95, 0),
    fmt(r.p99, 0),
    fmt(r.max, 0),
    r.p99 <= 1000 ? 'met (p99 ≤ 1000)' : 'MISSED (p99 ≤ 1000)',
    `${(r.loadMs / 1000).toFixed(1)} s / ${(r.snapshotBytes / 1024 ** 2).toFixed(1)} MB`,
    String(r.unseen),
    `${fmt(r.longest, 0)} (${r.longCount})`,
    `${fmt(r.probe50, 0)} / ${fmt(r.probeMax, 0)}`,
    Number.isFinite(r.filterCpu) ? `${(r.filterCpu * 100).toFixed(0)} %` : 'no samples',
  ]);
  return {
    title: 'Status page: daemon commit → page (headless Chromium) at 1,000 and 10,000 nodes',
    sections: [
      {
        head: [
          'nodes',
          'changes/s',
          'nodes on the page',
          'samples',
          'p50 ms',
          'p95 ms',
          'p99 ms',
          'max ms',
          'target',
          'page load / snapshot (JSON)',
          'not shown',
          'longest task ms (count > 50 ms)',
          'filter change → frame p50 / max ms',
          'filter CPU',
        ],
        rows,
      },
    ],
    notes: [
      `Each node is a light gRPC server (the real NodeService contract; domains with images, a job while running and the phases of the last preemption) in ${SIMS} simulator processes; the real magrathea-filter serves the status page (updateIntervalMs 150, the default) and publishes through a qmgr stand-in; the page runs in Debian's Chromium, headless, driven by playwright-core. ${seconds} s measured after a 3 s warm-up; everything shares the machine's 2 cores.`,
      "Latency: from the simulated daemon's commit timestamp to the moment a MutationObserver in the page saw that domain's row in the DOM at that generation or a later one (a change superseded before the next send is shown by the newer one: the page is coalesced on purpose). Only the nodes on the page's first page are rendered, so only their changes are samples. \"not shown\": changes of rendered nodes that never appeared.",
      `${(busy * 100).toFixed(0)} % of the machine's CPU was busy with other processes just before the run (1 s sample of /proc/stat): the figures include that contention.`,
      'Page load: from opening the page to the first page of nodes drawn (the snapshot of every node is parsed, the totals counted); the snapshot size is that of /api/nodes, uncompressed (the feed is gzip-compressed when the browser accepts it).',
      'Responsiveness: the longest main-thread task (Long Tasks API, > 50 ms) while the changes arrive, and the time from choosing a state in the filter to the frame after it is drawn, probed every 3 s during the load (the filter is lifted again at once, so the changes stay visible).',
    ],
  };
}

module.exports = { run, runCase };
