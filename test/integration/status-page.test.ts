/// <reference lib="dom" />
/**
 * The filter's status page in a real browser: three real magrathead processes, one real
 * magrathea-filter (publishing through the recording fake qmgr/qsig), Debian's Chromium headless.
 * A job start, a preemption and an end must show on the page live, without a reload; the latency
 * from the commit time on the daemon's own WatchNode stream to the moment the row appeared in the
 * DOM is logged (bench/status-page.js measures it against the 1 s goal); the state filter, a killed daemon, a lost filter and the page's
 * accessibility basics are checked too. Screenshots go to a temporary directory that is kept (its
 * path is logged; MAGRATHEA_SCREENSHOTS chooses another).
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { REPORTED_STATES } from '@magrathea/common';
import type { StartJobResponseMessage } from '@magrathea/common';
import { browserMissing, contrastRatio, launchBrowser } from '../helpers/browser';
import type { Browser } from '../helpers/browser';
import {
  cli,
  collectWatch,
  getNode,
  nodeClient,
  ROOT,
  spawnDaemon,
  spawnFilter,
  statesOf,
  tmpDir,
  unary,
  until,
} from '../helpers/processes';
import type { DaemonProcess, FilterProcess } from '../helpers/processes';

const FIXTURES = path.join(ROOT, 'test/fixtures');
const DAEMON_CONFIG = `
domains:
  - { name: meta, image: sl7-meta }
  - { name: egee, image: egee-wn }
  - { name: priv, class: priority, image: priv-ui }
driver: { simulated: { latencyMs: { boot: 0 } } }
`;
const NODES = ['n1', 'n2', 'n3'];
// Commit → page latency is logged here and measured by bench/status-page.js (BENCHMARKS.md), not
// asserted: a busy machine would miss any threshold. The tests check that each change arrives live.

const missing = browserMissing();
const describeBrowser = missing ? describe.skip : describe;
if (missing) console.warn(`status page browser tests skipped: ${missing}`);

function filterConfig(daemons: Record<string, DaemonProcess>, webListen: string, extra = ''): string {
  return `
listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }
nodes:
${NODES.map((n) => `  - { name: ${n}, address: "${daemons[n]!.addr}" }`).join('\n')}
graceMs: 1500
reconnect: { initialMs: 100, maxMs: 400 }
pbs: { qmgr: ${FIXTURES}/fake-qmgr.js, qsig: ${FIXTURES}/fake-qsig.js, qstat: ${FIXTURES}/fake-qstat.js, pbsnodes: ${FIXTURES}/fake-pbsnodes.js, batchDelayMs: 10 }
web: { enabled: true, listen: "${webListen}", updateIntervalMs: 100${extra} }
`;
}

/** Records, in the page, when each domain row of a generation first appeared (Date.now(), the same clock as the daemon's). */
function recordRows(): void {
  const w = window as unknown as { __seen: Record<string, number> };
  w.__seen = {};
  new MutationObserver((muts) => {
    const t = Date.now();
    for (const m of muts)
      for (const n of m.addedNodes) {
        if (!(n instanceof HTMLElement)) continue;
        const rows = n.matches('tr[data-gen]') ? [n] : [...n.querySelectorAll<HTMLElement>('tr[data-gen]')];
        for (const r of rows) {
          const k = `${r.dataset.node}/${r.dataset.domain}/${r.dataset.gen}/${r.dataset.state}`;
          w.__seen[k] ??= t;
        }
      }
  }).observe(document, { childList: true, subtree: true });
}

describeBrowser('status page in headless Chromium (real daemons, real filter)', () => {
  let dir: string;
  let shots: string;
  const daemons: Record<string, DaemonProcess> = {};
  const clients: Record<string, ReturnType<typeof nodeClient>> = {};
  let filter: FilterProcess | undefined;
  let webPort: number;
  let cfgFile: string;
  let browser: Browser | undefined;
  let page: Page;
  let watch: ReturnType<typeof collectWatch>;
  const latencies: Record<string, number> = {};

  const startFilter = async (): Promise<void> => {
    filter = await spawnFilter(cfgFile, {
      FAKE_QMGR_LOG: path.join(dir, 'qmgr.log'),
      FAKE_QSIG_LOG: path.join(dir, 'qsig.log'),
    });
    webPort = filter.logs.find((l) => l.msg === 'magrathea-filter ready')!.webPort as number;
  };

  const shot = async (name: string): Promise<void> => {
    const file = path.join(shots, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`screenshot: ${file}`);
  };

  /** Waits for the row of `node/domain` at the generation `gen` in `state`; returns commit → DOM, ms. */
  const commitToPage = async (node: string, domain: string, gen: number, state: string): Promise<number> => {
    const key = `${node}/${domain}/${gen}/${state}`;
    await page.waitForFunction((k) => k in (window as unknown as { __seen: object }).__seen, key, { timeout: 10_000 });
    await watch.waitFor((es) => es.some((e) => Number(e.generation) === gen && e.change));
    const commit = Number(watch.events.find((e) => Number(e.generation) === gen && e.change)!.change!.at_ms);
    const seen = await page.evaluate((k) => (window as unknown as { __seen: Record<string, number> }).__seen[k]!, key);
    return seen - commit;
  };

  const rowState = (node: string, domain: string) =>
    page.locator(`tr[data-node="${node}"][data-domain="${domain}"]`).getAttribute('data-state');

  beforeAll(async () => {
    dir = tmpDir('mg-status-');
    // Kept after the run (the path is logged); MAGRATHEA_SCREENSHOTS chooses the directory.
    shots = process.env.MAGRATHEA_SCREENSHOTS ?? tmpDir('mg-status-shots-');
    fs.mkdirSync(shots, { recursive: true });
    for (const n of NODES) {
      daemons[n] = await spawnDaemon({ stateDir: path.join(dir, n), config: DAEMON_CONFIG });
      clients[n] = nodeClient(daemons[n].admin);
    }
    for (const n of NODES)
      await until(
        async () => Object.values(statesOf(await getNode(clients[n]!))).every((s) => s === 'free'),
        `${n} booted`,
      );
    cfgFile = path.join(dir, 'filter.yaml');
    fs.writeFileSync(cfgFile, filterConfig(daemons, '127.0.0.1:0'));
    await startFilter();
    watch = collectWatch(clients.n1!);
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    await page.addInitScript(recordRows);
    await page.goto(`http://127.0.0.1:${webPort}/`);
  });

  afterAll(async () => {
    watch?.stream.cancel();
    await browser?.close();
    for (const c of Object.values(clients)) c.close();
    await filter?.stop();
    for (const d of Object.values(daemons)) if (d.proc.exitCode === null && d.proc.signalCode === null) await d.stop();
    console.log(`status page: commit → page latencies (ms): ${JSON.stringify(latencies)}`);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every node and domain is on the page with its image, what PBS is told, and totals per state', async () => {
    await page.waitForFunction(() => document.querySelectorAll('tr.domain').length === 9);
    expect(await page.locator('#conn').textContent()).toContain('Live');
    const meta = page.locator('tr[data-node="n2"][data-domain="meta"]');
    expect(await meta.getAttribute('data-state')).toBe('free');
    expect(await meta.locator('td.c-image').textContent()).toBe('sl7-meta');
    expect(await meta.locator('td.c-pbs').textContent()).toContain('normal rank 200');
    expect(await meta.locator('td.c-pbs').textContent()).toContain('magrathea: free');
    expect(await page.locator('#totals button[data-state="free"] .count').textContent()).toBe('9');
    expect(await page.locator('#summary').textContent()).toContain('3 nodes: 3 reachable, 0 unreachable');
  });

  test('a job start shows live (no reload), highlighted', async () => {
    const r = await unary<object, StartJobResponseMessage>(clients.n1!, clients.n1!.StartJob, {
      domain: 'meta',
      job_id: '101.pbs',
      preemptible: true,
      cpus: 2,
    });
    latencies.start = await commitToPage('n1', 'meta', Number(r.generation), 'running-preemptible');
    const row = page.locator('tr[data-node="n1"][data-domain="meta"]');
    expect(await row.getAttribute('class')).toContain('changed');
    expect(await row.locator('td.c-state').getAttribute('class')).toContain('cell-changed');
    expect(await row.locator('td.c-jobs').textContent()).toContain('101.pbs · 2 CPUs');
    expect(await row.locator('td.c-cpus').textContent()).toBe('2');
    expect(await rowState('n1', 'priv')).toBe('occupied-would-preempt');
  });

  test('a preemption shows live, with its phase timings in the timeline', async () => {
    const r = await unary<object, StartJobResponseMessage>(clients.n1!, clients.n1!.StartJob, {
      domain: 'priv',
      job_id: '102.pbs',
      preemptible: false,
    });
    latencies.preemption = await commitToPage('n1', 'meta', Number(r.generation), 'preempted');
    const meta = page.locator('tr[data-node="n1"][data-domain="meta"]');
    expect(await meta.locator('td.c-pbs').textContent()).toContain('none rank 0');
    expect(await meta.locator('td.c-preempted').textContent()).toMatch(/since .* ago \(simulated\)/);
    expect(await rowState('n1', 'priv')).toBe('running-priority');
    await meta.locator('button[data-act="detail"]').click();
    const preemption = page.locator('#detail ol.timeline li.preemption').first();
    await preemption.waitFor();
    expect(await preemption.textContent()).toMatch(/running-preemptible → preempted.*preempt:meta [\d.]+ ms/);
    expect(await page.locator('#detail-h').textContent()).toBe('n1 / meta');
    await shot('preemption');
  });

  test('the state filter shows only the matching domains, and the totals filter the same way', async () => {
    await page.selectOption('#f-state', 'preempted');
    await page.waitForFunction(() => document.querySelectorAll('tr.domain').length === 1);
    expect(
      await page.locator('tbody[data-node]').evaluateAll((bs) => bs.map((b) => b.getAttribute('data-node'))),
    ).toEqual(['n1']);
    expect(page.url()).toContain('#state=preempted');
    await page.selectOption('#f-state', 'free');
    await page.waitForFunction(() => document.querySelectorAll('tbody[data-node]').length === 2);
    expect(await page.locator('tr.domain').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-node')))).toEqual([
      'n2',
      'n2',
      'n2',
      'n3',
      'n3',
      'n3',
    ]);
    await page.fill('#f-node', 'n3');
    await page.waitForFunction(() => document.querySelectorAll('tr.domain').length === 3);
    await page.fill('#f-node', '');
    await page.selectOption('#f-state', '');
    await page.click('#totals button[data-state="running-priority"]');
    await page.waitForFunction(() => document.querySelectorAll('tr.domain').length === 1);
    expect(await rowState('n1', 'priv')).toBe('running-priority');
    await page.click('#totals button[data-state="running-priority"]'); // again: the filter is lifted
    await page.waitForFunction(() => document.querySelectorAll('tr.domain').length === 9);
  });

  test('the end of the priority job resumes the batch domain live, and the job end shows', async () => {
    const r1 = await unary<object, { generation: string }>(clients.n1!, clients.n1!.EndJob, {
      domain: 'priv',
      job_id: '102.pbs',
    });
    latencies.resume = await commitToPage('n1', 'meta', Number(r1.generation), 'running-preemptible');
    const r2 = await unary<object, { generation: string }>(clients.n1!, clients.n1!.EndJob, {
      domain: 'meta',
      job_id: '101.pbs',
    });
    latencies.end = await commitToPage('n1', 'meta', Number(r2.generation), 'free');
    expect(await page.locator('tr[data-node="n1"][data-domain="meta"] td.c-jobs').textContent()).toBe('—');
    // The open timeline follows: resumed, and the end of the job.
    await page.waitForFunction(() => /job ended: 101\.pbs/.test(document.querySelector('#detail')?.textContent ?? ''));
    expect(await page.locator('#detail ol.timeline').textContent()).toMatch(/resumed after [\d.]+s preempted/);
    await page.click('#detail-close');
  });

  test('a killed daemon shows unreachable, its domains as last heard, PBS told they accept nothing', async () => {
    await daemons.n3!.kill9();
    const n3 = page.locator('tbody[data-node="n3"]');
    await n3.locator('.reach.bad').waitFor({ timeout: 10_000 });
    expect(await n3.locator('.reach.bad').textContent()).toBe('unreachable');
    expect(await n3.locator('tr.node .why').textContent()).toContain('its domains show the last state heard');
    expect(await n3.locator('tr.domain .lastknown').count()).toBe(3);
    expect(await n3.locator('tr.domain td.c-pbs').first().textContent()).toContain('none rank 0');
    expect(await page.locator('#summary').textContent()).toContain('2 reachable, 1 unreachable');
    await page.selectOption('#f-state', 'unreachable');
    await page.waitForFunction(() => document.querySelectorAll('tbody[data-node]').length === 1);
    await shot('unreachable');
    await page.selectOption('#f-state', '');
  });

  test('a lost filter shows a banner; the page reconnects by itself when the filter is back', async () => {
    expect(await page.locator('#banner').isHidden()).toBe(true);
    await filter!.kill9();
    await page.locator('#banner').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.locator('#banner').textContent()).toMatch(/Not connected to the filter.*Reconnecting/);
    expect(await page.locator('#conn').textContent()).toContain('Disconnected');
    await shot('filter-lost');
    fs.writeFileSync(cfgFile, filterConfig(daemons, `127.0.0.1:${webPort}`));
    await startFilter();
    await page.locator('#banner').waitFor({ state: 'hidden', timeout: 30_000 });
    expect(await page.locator('#conn').textContent()).toContain('Live');
    // The new filter knows n1 and n2 again; of the killed n3 it has heard nothing.
    await page.waitForFunction(() => document.querySelectorAll('tr.domain').length === 6);
    expect(await page.locator('tbody[data-node="n3"] .reach.bad').textContent()).toBe('not reached yet');
  });

  test('accessibility basics: labels, names, landmarks, headings, and the contrast of the palette', async () => {
    const a11y = await page.evaluate(() => {
      const unlabelled = [...document.querySelectorAll('input, select')]
        .filter((el) => !document.querySelector(`label[for="${el.id}"]`) && !el.getAttribute('aria-label'))
        .map((el) => el.outerHTML);
      const unnamed = [...document.querySelectorAll('button')]
        .filter((b) => !(b.getAttribute('aria-label') ?? b.textContent ?? '').trim())
        .map((b) => b.outerHTML);
      return {
        unlabelled,
        unnamed,
        lang: document.documentElement.lang,
        title: document.title,
        landmarks: ['header', 'main', 'footer', 'nav', 'aside', 'form[role="search"]'].filter((s) =>
          document.querySelector(s),
        ),
        h1: [...document.querySelectorAll('h1')].map((x) => x.textContent),
        headings: [...document.querySelectorAll('h1, h2, h3')].map((x) => Number(x.tagName[1])),
        colHeaders: document.querySelectorAll('thead th[scope="col"]').length,
        rowGroups: document.querySelectorAll('tbody th[scope="rowgroup"]').length,
        alert: document.querySelector('#banner')?.getAttribute('role'),
        status: document.querySelector('#conn')?.getAttribute('role'),
      };
    });
    expect(a11y.unlabelled).toEqual([]);
    expect(a11y.unnamed).toEqual([]);
    expect(a11y.lang).toBe('en');
    expect(a11y.title).toBe('Magrathea cluster status');
    expect(a11y.landmarks).toEqual(['header', 'main', 'footer', 'nav', 'aside', 'form[role="search"]']);
    expect(a11y.h1).toEqual(['Magrathea cluster status']);
    // No heading level is skipped.
    for (let i = 1; i < a11y.headings.length; i++)
      expect(a11y.headings[i]! - a11y.headings[i - 1]!).toBeLessThanOrEqual(1);
    expect(a11y.colHeaders).toBe(10);
    expect(a11y.rowGroups).toBe(3);
    expect(a11y.alert).toBe('alert');
    expect(a11y.status).toBe('status');

    // The palette as the browser computes it: every state badge (the page's own list, which must be
    // the contract's), reachability, PBS tokens, the banner, muted text, links, and a changed row.
    // A string: a function would be transpiled for Node (import() → require).
    const pageStates = await page.evaluate<string[]>("import('/assets/model.js').then((m) => m.STATES)");
    expect([...pageStates].sort()).toEqual([...REPORTED_STATES].sort());
    const pairs = await page.evaluate((states) => {
      const probe = document.createElement('div');
      document.querySelector('main')!.append(probe);
      const samples = [
        ...states.map((s) => `<span class="state s-${s}">${s}</span>`),
        '<span class="reach ok">reachable</span>',
        '<span class="reach bad">unreachable</span>',
        '<span class="token t-normal">normal</span>',
        '<span class="token t-priority">priority</span>',
        '<span class="token t-none">none</span>',
        '<span class="sub">muted</span>',
        '<span class="why">why</span>',
        '<span class="tag">tag</span>',
        '<span class="tag warn">warn</span>',
        '<button class="link">link</button>',
        '<div class="phases">phases</div>',
      ];
      probe.innerHTML = samples.join('');
      const bgOf = (el: Element | null): string => {
        for (let e = el; e; e = e.parentElement) {
          const c = getComputedStyle(e).backgroundColor;
          if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c;
        }
        return 'rgb(255, 255, 255)';
      };
      const out = [...probe.children].map((el) => ({
        what: el.outerHTML,
        fg: getComputedStyle(el).color,
        bg: bgOf(el),
      }));
      const banner = document.querySelector('#banner')!;
      out.push({ what: '#banner', fg: getComputedStyle(banner).color, bg: bgOf(banner) });
      out.push({ what: 'body', fg: getComputedStyle(document.body).color, bg: bgOf(document.body) });
      const flash = getComputedStyle(document.documentElement).getPropertyValue('--flash').trim();
      out.push({ what: 'changed row at its brightest', fg: getComputedStyle(document.body).color, bg: flash });
      probe.remove();
      return out;
    }, pageStates);
    const hexToRgb = (c: string) =>
      c.startsWith('#')
        ? `rgb(${parseInt(c.slice(1, 3), 16)}, ${parseInt(c.slice(3, 5), 16)}, ${parseInt(c.slice(5, 7), 16)})`
        : c;
    const low = pairs
      .map((p) => ({ ...p, ratio: contrastRatio(p.fg, hexToRgb(p.bg)) }))
      .filter((p) => p.ratio < 4.5)
      .map((p) => `${p.what}: ${p.fg} on ${p.bg} = ${p.ratio.toFixed(2)}`);
    expect(low).toEqual([]);
    expect(pairs.length).toBe(REPORTED_STATES.length + 14);
  });

  test('the page is read-only and says what it does not know', async () => {
    const post = await fetch(`http://127.0.0.1:${webPort}/api/events`, { method: 'POST' });
    expect(post.status).toBe(405);
    const none = await fetch(`http://127.0.0.1:${webPort}/api/timeline?node=n9&domain=meta`);
    expect(none.status).toBe(404);
    const nodes = (await (await fetch(`http://127.0.0.1:${webPort}/api/nodes`)).json()) as { nodes: unknown[] };
    expect(nodes.nodes).toHaveLength(3);
    const res = await fetch(`http://127.0.0.1:${webPort}/`);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.locator('p.note').first().textContent()).toContain('job ids only, not their owners');
  });
});

describeBrowser('status page over HTTPS with client certificates', () => {
  let dir: string;
  let pki: string;
  let daemon: DaemonProcess;
  let filter: FilterProcess | undefined;
  let port: number;

  const get = (p: string, id: string | null): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = https.get(
        {
          host: '127.0.0.1',
          port,
          path: p,
          ca: fs.readFileSync(path.join(pki, 'ca.pem')),
          servername: 'localhost',
          ...(id
            ? {
                cert: fs.readFileSync(path.join(pki, 'clients', `${id}.pem`)),
                key: fs.readFileSync(path.join(pki, 'clients', `${id}.key`)),
              }
            : {}),
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => {
            body += c.toString();
            // The feed never ends: its first event (the snapshot) is enough.
            if (p === '/api/events' && body.includes('event: snapshot')) {
              resolve({ status: res.statusCode ?? 0, body });
              req.destroy();
            }
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
    });

  beforeAll(async () => {
    dir = tmpDir('mg-status-tls-');
    pki = path.join(dir, 'pki');
    const r = await cli([
      'pki',
      'init',
      '--out',
      pki,
      '--node',
      'pbs-server',
      '--client',
      'alice=reader',
      '--client',
      'bob=operator',
      '--client',
      'mallory=reader',
    ]);
    expect(r.code).toBe(0);
    daemon = await spawnDaemon({ stateDir: path.join(dir, 'n1'), config: DAEMON_CONFIG });
    const cfg = path.join(dir, 'filter.yaml');
    fs.writeFileSync(
      cfg,
      `
listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }
nodes: [{ name: n1, address: "${daemon.addr}" }]
web:
  enabled: true
  listen: "127.0.0.1:0"
  tls:
    ca: pki/ca.pem
    cert: pki/nodes/pbs-server.pem
    key: pki/nodes/pbs-server.key
    clients: [{ identity: alice, role: reader }, { identity: bob, role: operator }]
`,
    );
    filter = await spawnFilter(cfg);
    port = filter.logs.find((l) => l.msg === 'magrathea-filter ready')!.webPort as number;
  });

  afterAll(async () => {
    await filter?.stop();
    await daemon?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('no certificate: 401; a certificate of the CA without a role here: 403; reader and operator may read', async () => {
    const anon = await get('/', null);
    expect(anon.status).toBe(401);
    expect(anon.body).toContain('no valid client certificate');
    const stranger = await get('/api/nodes', 'mallory');
    expect(stranger.status).toBe(403);
    expect(stranger.body).toContain('identity mallory has no role');
    expect((await get('/', 'alice')).status).toBe(200);
    const feed = await get('/api/events', 'bob');
    expect(feed.status).toBe(200);
    expect(feed.body).toContain('"name":"n1"');
  });
});
