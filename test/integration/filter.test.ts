/**
 * Several real magrathead processes and one real magrathea-filter, publishing through a
 * recording qmgr that checks the command syntax, and a recording qsig.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ClusterEventMessage, ClusterServiceClient, NodeServiceClient } from '@magrathea/common';
import { loadMagratheaApi } from '@magrathea/common';
import {
  cli,
  getNode,
  nodeClient,
  ROOT,
  runToExit,
  spawnDaemon,
  spawnFilter,
  statesOf,
  tmpDir,
  unary,
} from '../helpers/processes';
import type { DaemonProcess, FilterProcess } from '../helpers/processes';
import { compileSiteConfig, hookConfigJson } from '@magrathea/pbs-hooks';
import { runHook } from '../helpers/hooks';
import { DAEMON_CONFIG, PBSNODES, QMGR, QSIG, QSTAT, parseSet, published, readBatches } from '../helpers/published';

async function until(pred: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const magOf = (log: string, vnodes: string[]) =>
  vnodes.map((v) => `${v}=${published(log).get(v)?.magrathea}/${published(log).get(v)?.state}`);

describe('magrathea-filter with real node daemons', () => {
  let dir: string;
  const daemons: Record<string, DaemonProcess> = {};
  const clients: Record<string, NodeServiceClient> = {};
  let filter: FilterProcess;
  let qlog: string;
  let slog: string;
  let cfgFile: string;

  const startFilter = async () => {
    filter = await spawnFilter(cfgFile, { FAKE_QMGR_LOG: qlog, FAKE_QSIG_LOG: slog });
  };

  beforeAll(async () => {
    dir = tmpDir('mg-filter-');
    qlog = path.join(dir, 'qmgr.log');
    slog = path.join(dir, 'qsig.log');
    for (const n of ['n1', 'n2', 'n3']) {
      daemons[n] = await spawnDaemon({ stateDir: path.join(dir, n), config: DAEMON_CONFIG });
      clients[n] = nodeClient(daemons[n].admin);
    }
    for (const n of ['n1', 'n2', 'n3']) {
      await until(
        async () => Object.values(statesOf(await getNode(clients[n]!))).every((s) => s === 'free'),
        `${n} booted`,
      );
    }
    cfgFile = path.join(dir, 'filter.yaml');
    fs.writeFileSync(
      cfgFile,
      `
listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }
nodes:
${['n1', 'n2', 'n3'].map((n) => `  - { name: ${n}, address: "${daemons[n]!.addr}" }`).join('\n')}
graceMs: 1500
reconnect: { initialMs: 100, maxMs: 400 }
pbs: { qmgr: ${QMGR}, qsig: ${QSIG}, qstat: ${QSTAT}, pbsnodes: ${PBSNODES}, reassertIntervalMs: 1000, accountingRecheckMs: 500, batchDelayMs: 10, kickMinIntervalMs: 100, retry: { initialMs: 100, maxMs: 300 }, qmgrTimeoutMs: 1500 }
`,
    );
    await startFilter();
  });

  afterAll(async () => {
    for (const c of Object.values(clients)) c.close();
    await filter?.stop();
    for (const d of Object.values(daemons)) await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const ALL = ['n1', 'n2', 'n3'].flatMap((n) => ['meta', 'egee', 'priv'].map((d) => `${n}-${d}`));

  test('every vnode is published once the filter has its snapshots, and a scheduling cycle is kicked', async () => {
    await until(() => ALL.every((v) => published(qlog).has(v)), 'all vnodes published');
    const p = published(qlog);
    for (const n of ['n1', 'n2', 'n3']) {
      expect(p.get(`${n}-meta`)).toMatchObject({ magrathea: 'normal', state: 'free', rank: 200 });
      expect(p.get(`${n}-priv`)).toMatchObject({ magrathea: 'priority', state: 'free' });
    }
    expect(readBatches(qlog).some((b) => b.lines.includes('set server scheduling = true'))).toBe(true);
    // Every qmgr is forked by the one command helper, never by the (large) filter process itself.
    const parents = new Set(readBatches(qlog).map((b) => b.ppid));
    expect(parents.size).toBe(1);
    expect(parents.has(filter.proc.pid!)).toBe(false);
    const helper = filter.logs.find((l) => l.msg === 'command helper started');
    expect(helper).toMatchObject({ pid: [...parents][0] });
  });

  test('a job start on one node appears in the recorded batch for exactly that node’s vnodes', async () => {
    const before = readBatches(qlog).length;
    await unary(clients.n1!, clients.n1!.StartJob, { domain: 'meta', job_id: '100.pbs', preemptible: true });
    await until(() => published(qlog).get('n1-meta')?.state === 'running-preemptible', 'n1-meta running');
    await until(() => published(qlog).get('n1-priv')?.state === 'occupied-would-preempt', 'n1-priv owp');
    const newLines = readBatches(qlog)
      .slice(before)
      .flatMap((b) => b.lines);
    const touched = new Set(newLines.map((l) => parseSet(l)?.[0]).filter(Boolean));
    expect([...touched].sort()).toEqual(['n1-egee', 'n1-meta', 'n1-priv']);
    expect(magOf(qlog, ['n1-meta', 'n1-egee', 'n1-priv'])).toEqual([
      'n1-meta=normal/running-preemptible',
      'n1-egee=none/occupied',
      'n1-priv=priority/occupied-would-preempt',
    ]);
  });

  test('preemption: the batch domain is published none and its jobs are admin-suspended in PBS; resumed after', async () => {
    // A second job in the domain: PBS's qstat, asked for several jobs in JSON, answers for the first only.
    await unary(clients.n1!, clients.n1!.StartJob, { domain: 'meta', job_id: '101.pbs', preemptible: true });
    await unary(clients.n1!, clients.n1!.StartJob, { domain: 'priv', job_id: '200.pbs' });
    await until(() => published(qlog).get('n1-meta')?.state === 'preempted', 'n1-meta preempted');
    expect(magOf(qlog, ['n1-meta', 'n1-priv'])).toEqual([
      'n1-meta=none/preempted',
      'n1-priv=priority/running-priority',
    ]);
    const signals = (): string[] =>
      fs.existsSync(slog)
        ? fs
            .readFileSync(slog, 'utf8')
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as { signal: string; jobs: string[] })
            .flatMap((x) => x.jobs.map((j) => `${x.signal} ${j}`))
        : [];
    await until(() => signals().filter((x) => x.startsWith('admin-suspend')).length === 2, 'both jobs admin-suspended');
    await unary(clients.n1!, clients.n1!.EndJob, { domain: 'priv', job_id: '200.pbs' });
    await until(() => signals().filter((x) => x.startsWith('admin-resume')).length === 2, 'both jobs admin-resumed');
    await new Promise((r) => setTimeout(r, 1000)); // two accounting passes: nothing more is signalled
    expect(signals().slice(0, 2).sort()).toEqual(['admin-suspend 100.pbs', 'admin-suspend 101.pbs']);
    expect(signals().slice(2).sort()).toEqual(['admin-resume 100.pbs', 'admin-resume 101.pbs']);
    await until(() => published(qlog).get('n1-meta')?.state === 'running-preemptible', 'n1-meta resumed');
    await unary(clients.n1!, clients.n1!.EndJob, { domain: 'meta', job_id: '101.pbs' });
  });

  test('qstat failing (PBS unreachable) drops no job as gone: the jobs are signalled anyway', async () => {
    const done = fs.readFileSync(slog, 'utf8').length;
    const fresh = (): string => fs.readFileSync(slog, 'utf8').slice(done);
    const logFrom = filter.logs.length;
    fs.writeFileSync(`${slog}.qstat-down`, '');
    try {
      await unary(clients.n1!, clients.n1!.StartJob, { domain: 'priv', job_id: '202.pbs' });
      await until(() => fresh().includes('admin-suspend'), 'qsig admin-suspend without qstat');
    } finally {
      fs.rmSync(`${slog}.qstat-down`, { force: true });
    }
    await unary(clients.n1!, clients.n1!.EndJob, { domain: 'priv', job_id: '202.pbs' });
    await until(() => fresh().includes('admin-resume'), 'qsig admin-resume');
    const unclear = filter.logs.slice(logFrom).filter((l) => l.msg === 'qstat gave no state of the job');
    // 100.pbs to suspend, or 101.pbs (ended, once suspended) whose history the filter is waiting to purge.
    expect(unclear[0]).toMatchObject({ level: 'warn', job: expect.stringMatching(/^10[01]\.pbs$/) });
    expect(unclear.filter((l) => l.level === 'warn')).toHaveLength(1); // then debug until qstat answers again
    await until(() => published(qlog).get('n1-meta')?.state === 'running-preemptible', 'n1-meta resumed');
  });

  test('ClusterService, the HTTP admission check, metrics and `magrathea cluster status`', async () => {
    const api = loadMagratheaApi();
    const c: ClusterServiceClient = new api.magrathea.v1.ClusterService(
      `127.0.0.1:${filter.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
    const u = <R>(m: string, req: object) =>
      new Promise<R>((res, rej) => (c as any)[m](req, (e: Error | null, r: R) => (e ? rej(e) : res(r))));
    const list = await u<{
      nodes: { name: string; reachable: boolean; vnodes: { vnode: string; magrathea: string }[] }[];
    }>('ListNodes', {});
    expect(list.nodes.map((n) => [n.name, n.reachable, n.vnodes.length])).toEqual([
      ['n1', true, 3],
      ['n2', true, 3],
      ['n3', true, 3],
    ]);
    const cand = await u<{ vnodes: { vnode: string; rank: number }[] }>('Candidates', { job_class: 'normal' });
    expect(cand.vnodes[0]!.vnode).toBe('n1-meta'); // packs onto the running domain first
    expect(cand.vnodes.map((v) => v.vnode)).not.toContain('n1-egee');
    const prio = await u<{ vnodes: { vnode: string; rank: number }[] }>('Candidates', { job_class: 'priority' });
    expect(prio.vnodes.at(-1)!.vnode).toBe('n1-priv'); // would preempt: last
    expect(await u('Admit', { job_id: 'x', job_class: 'normal', vnodes: ['n2-meta', 'n3-egee'] })).toEqual({
      admit: true,
      reasons: [],
    });
    const refused = await u<{ admit: boolean; reasons: string[] }>('Admit', {
      job_id: 'x',
      job_class: 'normal',
      vnodes: ['n1-egee', 'ghost'],
    });
    expect(refused.admit).toBe(false);
    expect(refused.reasons).toEqual([
      expect.stringMatching(/^n1-egee: does not accept normal jobs now \(domain occupied\)/),
      'ghost: not a Magrathea vnode known to this filter',
    ]);
    await expect(u('Admit', { job_class: 'vip', vnodes: ['n1-meta'] })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
    c.close();

    const httpAdmit = await fetch(`http://127.0.0.1:${filter.httpPort}/v1/admit`, {
      method: 'POST',
      body: JSON.stringify({ job_class: 'priority', vnodes: ['n2-priv'] }),
    });
    expect(await httpAdmit.json()).toEqual({ admit: true, reasons: [] });
    expect((await fetch(`http://127.0.0.1:${filter.httpPort}/v1/admit`, { method: 'POST', body: '{bad' })).status).toBe(
      400,
    );
    const metrics = await (await fetch(`http://127.0.0.1:${filter.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/magrathea_filter_nodes\{state="reachable"\} 3/);
    expect(metrics).toMatch(/magrathea_filter_publication_latency_seconds_count [1-9]/);
    expect(metrics).toMatch(/magrathea_filter_qmgr_batches_total\{result="ok"\} [1-9]/);

    const r = await cli(['cluster', 'status', '--filter', `127.0.0.1:${filter.grpcPort}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^n1\s+up\s+\d+\s+n1-meta=running-preemptible→normal\s+n1-egee=occupied→none\s+n1-priv=occupied-would-preempt→priority/m,
    );
    expect(r.stdout).toMatch(/3 nodes; domains: .*free 6/);
  });

  test('the runjob hook (python3 + pbs double) asks the real filter: a stale placement is refused, a good one accepted', async () => {
    const cfg = path.join(dir, 'hook.json');
    const admitUrl = `http://127.0.0.1:${filter.httpPort}/v1/admit`;
    fs.writeFileSync(cfg, JSON.stringify({ ...hookConfigJson(compileSiteConfig({ filterAdmitUrl: admitUrl })) }));
    const runjob = (job: Record<string, unknown>, config = cfg) =>
      runHook({
        event: { type: 'RUNJOB', job: { id: '9.pbs', ...job } },
        server: { queues: { workq: {}, iprio: {} } },
        config_file: config,
      });
    const ok = await runjob({ queue: 'workq', exec_vnode: '(n2-meta:ncpus=1)+(n3-egee:ncpus=2)' });
    expect([ok.outcome, ok.exception]).toEqual(['accept', null]);
    const stale = await runjob({ queue: 'workq', exec_vnode: '(n1-egee:ncpus=1)' });
    expect(stale.outcome).toBe('reject');
    expect(stale.reject_msg).toMatch(/not admitted now: n1-egee: does not accept normal jobs now/);
    const prio = await runjob({ queue: 'iprio', exec_vnode: '(n2-priv:ncpus=1)' });
    expect(prio.outcome).toBe('accept');
    // The filter cannot be reached: accept (the mom's execjob_begin stays the arbiter), quickly.
    const down = path.join(dir, 'hook-down.json');
    fs.writeFileSync(
      down,
      JSON.stringify({ ...hookConfigJson(compileSiteConfig({ filterAdmitUrl: 'http://127.0.0.1:1/v1/admit' })) }),
    );
    const r = await runjob({ queue: 'workq', exec_vnode: '(n1-egee:ncpus=1)' }, down);
    expect([r.outcome, r.exception]).toEqual(['accept', null]);
    expect(r.elapsed_ms).toBeLessThan(1500);
  });

  test('a killed daemon is published none after the grace period (its work untouched), and back when it returns', async () => {
    const addr = daemons.n2!.addr;
    await daemons.n2!.kill9();
    const killedAt = Date.now();
    await until(() => published(qlog).get('n2-meta')?.state === 'unreachable', 'n2 unreachable', 8000);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(1000);
    expect(magOf(qlog, ['n2-meta', 'n2-egee', 'n2-priv'])).toEqual([
      'n2-meta=none/unreachable',
      'n2-egee=none/unreachable',
      'n2-priv=none/unreachable',
    ]);
    expect(published(qlog).get('n1-meta')?.state).toBe('running-preemptible');
    const st = await cli(['cluster', 'status', '--filter', `127.0.0.1:${filter.grpcPort}`]);
    expect(st.stdout).toMatch(/^n2\s+DOWN\s.*!! UNREACHABLE/m);
    // For monitoring checks: non-zero while a node is unreachable.
    expect([st.code, st.stderr]).toEqual([9, expect.stringMatching(/1 of \d+ node\(s\) unreachable or stale: n2/)]);
    daemons.n2 = await spawnDaemon({ stateDir: path.join(dir, 'n2'), config: DAEMON_CONFIG, listen: addr });
    clients.n2!.close();
    clients.n2 = nodeClient(daemons.n2.admin);
    await until(() => published(qlog).get('n2-meta')?.state === 'free', 'n2 back', 8000);
    expect(magOf(qlog, ['n2-meta', 'n2-priv'])).toEqual(['n2-meta=normal/free', 'n2-priv=priority/free']);
  });

  test('filter restarted: a full, correct view again, and its watch stream has no duplicate or missing event', async () => {
    await filter.stop();
    // Changes while the filter is away.
    await unary(clients.n3!, clients.n3!.StartJob, { domain: 'egee', job_id: '300.pbs', preemptible: false });
    const lengthBefore = readBatches(qlog).length;
    await startFilter();
    await until(() => {
      const fresh = readBatches(qlog)
        .slice(lengthBefore)
        .flatMap((b) => b.lines.map((l) => parseSet(l)?.[0]));
      return ALL.every((v) => fresh.includes(v));
    }, 'full republication');
    expect(magOf(qlog, ['n3-meta', 'n3-egee', 'n3-priv'])).toEqual([
      'n3-meta=none/occupied',
      'n3-egee=normal/running',
      'n3-priv=none/occupied',
    ]);

    const api = loadMagratheaApi();
    const c: ClusterServiceClient = new api.magrathea.v1.ClusterService(
      `127.0.0.1:${filter.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
    const events: ClusterEventMessage[] = [];
    const stream = c.WatchCluster({});
    stream.on('data', (e: ClusterEventMessage) => events.push(e));
    stream.on('error', () => undefined);
    await until(() => events.length >= 1, 'snapshot');
    expect(events[0]!.snapshot!.nodes.map((n) => n.generation)).toEqual(
      ['n1', 'n2', 'n3'].map((n) => events[0]!.snapshot!.nodes.find((x) => x.name === n)!.generation),
    );
    for (const job of ['301.pbs', '302.pbs']) {
      await unary(clients.n3!, clients.n3!.StartJob, { domain: 'egee', job_id: job, preemptible: true });
    }
    const n3gen = Number((await getNode(clients.n3!)).generation);
    await until(
      () => events.some((e) => e.node?.name === 'n3' && Number(e.node.generation) === n3gen),
      'watch saw n3 latest',
    );
    const gens = events.filter((e) => e.node?.name === 'n3').map((e) => Number(e.node!.generation));
    expect(gens).toEqual([...new Set(gens)].sort((a, b) => a - b));
    expect(gens.at(-1)! - gens[0]!).toBe(gens.length - 1);
    stream.cancel();
    c.close();
  });

  test('a failing and a hanging qmgr: retried, nothing lost, the newest value wins', async () => {
    fs.writeFileSync(`${qlog}.fail`, '');
    await unary(clients.n2!, clients.n2!.StartJob, { domain: 'meta', job_id: '400.pbs' });
    await new Promise((r) => setTimeout(r, 400));
    await unary(clients.n2!, clients.n2!.EndJob, { domain: 'meta', job_id: '400.pbs' });
    await unary(clients.n2!, clients.n2!.StartJob, { domain: 'egee', job_id: '401.pbs' });
    await new Promise((r) => setTimeout(r, 300));
    fs.writeFileSync(`${qlog}.hang`, '');
    fs.rmSync(`${qlog}.fail`);
    await new Promise((r) => setTimeout(r, 2000));
    fs.rmSync(`${qlog}.hang`);
    await until(() => published(qlog).get('n2-egee')?.state === 'running', 'n2 published after recovery', 8000);
    expect(magOf(qlog, ['n2-meta', 'n2-egee'])).toEqual(['n2-meta=none/occupied', 'n2-egee=normal/running']);
    const metrics = await (await fetch(`http://127.0.0.1:${filter.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/magrathea_filter_qmgr_batches_total\{result="failed"\} [1-9]/);
    expect(metrics).toMatch(/magrathea_filter_qmgr_batches_total\{result="timeout"\} [1-9]/);
  });
});

describe("magrathea-filter with two nodes' addresses swapped", () => {
  test("each node's address leads to the other's daemon: neither is published, the reason is shown; fixed, both are", async () => {
    const dir = tmpDir('mg-swap-');
    const qlog = path.join(dir, 'qmgr.log');
    const daemons: DaemonProcess[] = [];
    let filter: FilterProcess | undefined;
    try {
      for (const n of ['a', 'b'])
        daemons.push(
          await spawnDaemon({ stateDir: path.join(dir, n), config: `node: { name: ${n} }\n${DAEMON_CONFIG}` }),
        );
      const [a, b] = daemons as [DaemonProcess, DaemonProcess];
      const cfg = (addrA: string, addrB: string): string => {
        const f = path.join(dir, 'filter.yaml');
        fs.writeFileSync(
          f,
          `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }
nodes:
  - { name: a, address: "${addrA}" }
  - { name: b, address: "${addrB}" }
graceMs: 1500
reconnect: { initialMs: 100, maxMs: 400 }
pbs: { qmgr: ${QMGR}, qsig: ${QSIG}, batchDelayMs: 10 }
`,
        );
        return f;
      };
      filter = await spawnFilter(cfg(b.addr, a.addr), { FAKE_QMGR_LOG: qlog });
      const f = filter;
      await until(
        () =>
          f.logs.filter((l) => l.msg === 'node daemon is another configured node; its reports are not taken').length >=
          2,
        'both refusals logged',
      );
      expect(
        f.logs.filter((l) => l.msg === 'node daemon is another configured node; its reports are not taken'),
      ).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ node: 'a', reported: 'b' }),
          expect.objectContaining({ node: 'b', reported: 'a' }),
        ]),
      );
      // A change on the daemon is not taken either.
      await unary(nodeClient(a.admin), nodeClient(a.admin).StartJob, {
        domain: 'meta',
        job_id: '1.pbs',
        preemptible: true,
      });
      await new Promise((r) => setTimeout(r, 500));
      expect(
        [...published(qlog).keys()].filter((v) => /^[ab]-/.test(v) && published(qlog).get(v)?.magrathea !== 'none'),
      ).toEqual([]);
      const st = await cli(['cluster', 'status', '--filter', `127.0.0.1:${f.grpcPort}`]);
      expect(st.code).toBe(9);
      expect(st.stdout).toMatch(/says it is node b/);
      const metrics = await (await fetch(`http://127.0.0.1:${f.httpPort}/metrics`)).text();
      expect(metrics).toMatch(/magrathea_filter_wrong_node_total [2-9]/);
      await f.stop();
      // The addresses put right: both published, a's running job with it.
      filter = await spawnFilter(cfg(a.addr, b.addr), { FAKE_QMGR_LOG: qlog });
      await until(() => published(qlog).get('a-meta')?.state === 'running-preemptible', 'a published');
      await until(() => published(qlog).get('b-meta')?.state === 'free', 'b published');
    } finally {
      await filter?.stop();
      for (const d of daemons) await d.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('magrathea-filter and a daemon whose stream stays open but silent', () => {
  test('no message (not even a heartbeat) within the quiet limit: the stream is dropped, the node is none after its grace; messages again: back', async () => {
    const dir = tmpDir('mg-silent-');
    const qlog = path.join(dir, 'qmgr.log');
    let daemon: DaemonProcess | undefined;
    let filter: FilterProcess | undefined;
    const server = new grpc.Server();
    const upstream: grpc.ClientReadableStream<unknown>[] = [];
    let frozen = false;
    try {
      // Heartbeats every 300 ms: the quiet limit is the grace period (1,500 ms).
      daemon = await spawnDaemon({ stateDir: path.join(dir, 'n'), config: `heartbeatMs: 300\n${DAEMON_CONFIG}` });
      const real = nodeClient(daemon.addr);
      // In front of the daemon: a NodeService that forwards WatchNode, or (frozen) accepts the call,
      // answers its headers and HTTP/2 pings, and forwards nothing: a stalled publication.
      const api = loadMagratheaApi();
      server.addService(api.magrathea.v1.NodeService.service, {
        WatchNode: (call: grpc.ServerWritableStream<{ since_generation: string }, unknown>) => {
          call.sendMetadata(new grpc.Metadata());
          const up = real.WatchNode(call.request);
          upstream.push(up);
          up.on('data', (m: unknown) => {
            if (!frozen) call.write(m);
          });
          up.on('error', () => undefined);
          call.on('cancelled', () => up.cancel());
        },
      });
      const port = await new Promise<number>((res, rej) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
      );
      const f = path.join(dir, 'filter.yaml');
      fs.writeFileSync(
        f,
        `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }
nodes:
  - { name: n, address: "127.0.0.1:${port}" }
graceMs: 1500
reconnect: { initialMs: 100, maxMs: 400 }
pbs: { qmgr: ${QMGR}, qsig: ${QSIG}, batchDelayMs: 10 }
`,
      );
      filter = await spawnFilter(f, { FAKE_QMGR_LOG: qlog });
      const fl = filter;
      await until(() => published(qlog).get('n-meta')?.state === 'free', 'n published');
      // Long enough for several heartbeats, which tell the filter their interval.
      await new Promise((r) => setTimeout(r, 2000));
      frozen = true;
      await until(() => published(qlog).get('n-meta')?.state === 'unreachable', 'n unreachable', 30_000);
      expect(magOf(qlog, ['n-meta', 'n-egee', 'n-priv'])).toEqual([
        'n-meta=none/unreachable',
        'n-egee=none/unreachable',
        'n-priv=none/unreachable',
      ]);
      expect(fl.logs.find((l) => l.msg === 'node daemon stream silent; reconnecting')).toMatchObject({
        node: 'n',
        limitMs: 1500,
        heartbeatMs: 300,
      });
      const metrics = await (await fetch(`http://127.0.0.1:${fl.httpPort}/metrics`)).text();
      expect(metrics).toMatch(/magrathea_filter_silent_streams_total [1-9]/);
      // Once the daemon speaks again the node is back, and what it does is seen.
      frozen = false;
      const admin = nodeClient(daemon.admin);
      await unary(admin, admin.StartJob, { domain: 'meta', job_id: '1.pbs', preemptible: true });
      admin.close();
      await until(() => published(qlog).get('n-meta')?.state === 'running-preemptible', 'n back, with its job', 15_000);
      real.close();
    } finally {
      for (const u of upstream) u.cancel();
      server.forceShutdown();
      await filter?.stop();
      await daemon?.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('magrathea-filter bad configuration', () => {
  test('a config listing the same vnode twice, or a bad address: every problem reported, exit 78', async () => {
    const dir = tmpDir('mg-fcfg-');
    const f = path.join(dir, 'f.yaml');
    fs.writeFileSync(
      f,
      'nodes:\n  - { name: a, address: "127.0.0.1:1", vnodes: { meta: v1 } }\n  - { name: b, address: "127.0.0.1:3", vnodes: { meta: v1 } }\n  - { name: c, address: "nowhere" }\n  - { name: a, address: "127.0.0.1:2" }\nsurprise: 1\n',
    );
    const r = await runToExit([path.join(ROOT, 'packages/scheduler-filter/dist/service/main.js'), '--config', f]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/nodes: vnode v1 is listed for both a and b/);
    expect(r.stderr).toMatch(/nodes\.2\.address: /);
    expect(r.stderr).toMatch(/nodes\.3\.name: duplicate node "a"/);
    expect(r.stderr).toMatch(/surprise: unknown key/);
    fs.rmSync(dir, { recursive: true });
  });
});
