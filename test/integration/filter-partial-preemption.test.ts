/**
 * Honest accounting of partial preemption: a real magrathead in CPU-counting mode and a real
 * magrathea-filter with the recording qmgr/qsig/qstat. A priority job suspends one batch job of
 * three; PBS is told to suspend exactly that one (the domain's others keep running) and to
 * resume it when the priority job ends.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeServiceClient } from '@magrathea/common';
import type { DaemonProcess, FilterProcess } from '../helpers/processes';
import {
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

const fixture = (f: string) => path.join(ROOT, 'test/fixtures', f);

describe('filter accounting with partial preemption', () => {
  let dir: string;
  let d: DaemonProcess | undefined;
  let filter: FilterProcess | undefined;
  let c: NodeServiceClient | undefined;

  afterEach(async () => {
    c?.close();
    await filter?.stop();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('only the suspended job is admin-suspended in PBS, and admin-resumed after', async () => {
    dir = tmpDir('mg-fpart-');
    const slog = path.join(dir, 'qsig.log');
    d = await spawnDaemon({
      stateDir: path.join(dir, 'n1'),
      config: `
cpuCounting: { cpus: 8 }
domains: [{ name: meta }, { name: priv, class: priority }]
driver: { simulated: { latencyMs: { boot: 0 } } }
`,
    });
    c = nodeClient(d.admin);
    const client = c;
    await until(async () => Object.values(statesOf(await getNode(client))).every((s) => s === 'free'), 'booted');
    const cfg = path.join(dir, 'filter.yaml');
    fs.writeFileSync(
      cfg,
      `
listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }
nodes:
  - { name: n1, address: "${d.addr}" }
graceMs: 1500
reconnect: { initialMs: 100, maxMs: 400 }
pbs: { qmgr: ${fixture('fake-qmgr.js')}, qsig: ${fixture('fake-qsig.js')}, qstat: ${fixture('fake-qstat.js')}, pbsnodes: ${fixture('fake-pbsnodes.js')}, reassertIntervalMs: 1000, accountingRecheckMs: 500, batchDelayMs: 10, kickMinIntervalMs: 100, retry: { initialMs: 100, maxMs: 300 }, qmgrTimeoutMs: 1500 }
`,
    );
    filter = await spawnFilter(cfg, { FAKE_QMGR_LOG: path.join(dir, 'qmgr.log'), FAKE_QSIG_LOG: slog });
    for (const [id, cpus] of [
      ['100.pbs', 2],
      ['101.pbs', 2],
      ['102.pbs', 4],
    ] as const)
      await unary(client, client.StartJob, { domain: 'meta', job_id: id, preemptible: true, cpus });
    const r = await unary<object, { suspended_jobs: { job_id: string }[] }>(client, client.StartJob, {
      domain: 'priv',
      job_id: '200.pbs',
      cpus: 2,
    });
    expect(r.suspended_jobs).toHaveLength(1);
    const victim = r.suspended_jobs[0]!.job_id;
    expect(['100.pbs', '101.pbs']).toContain(victim);
    const signals = () =>
      fs.existsSync(slog)
        ? fs
            .readFileSync(slog, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as { signal: string; jobs: string[] })
            .map((s) => [s.signal, s.jobs])
        : [];
    await until(() => signals().length > 0, 'qsig admin-suspend', 15_000);
    expect(statesOf(await getNode(client)).meta).toBe('running-preemptible');
    await unary(client, client.EndJob, { domain: 'priv', job_id: '200.pbs' });
    await until(() => signals().length > 1, 'qsig admin-resume', 15_000);
    expect(signals()).toEqual([
      ['admin-suspend', [victim]],
      ['admin-resume', [victim]],
    ]);
  }, 60_000);
});
