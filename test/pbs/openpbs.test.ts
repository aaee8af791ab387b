/**
 * The real-PBS suite: Magrathea deployed on a real OpenPBS 23.06 (server, scheduler, comm and six
 * moms in network namespaces, see lab.ts), real jobs submitted by an ordinary user with qsub. Each
 * test is one scenario of issue #11 §2–§5. Timings measured on the way are written to
 * .cache/pbs-timings.json (docs/evaluation.md reports them).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getNode, nodeClient, ROOT, spawnFilter } from '../helpers/processes';
import type { Deployment } from './deploy';
import { deploy, deployOnCleanLab, hooksOnMoms, install, siteConfig, undeploy, vnodeName } from './deploy';
import {
  asUser,
  cleanJobs,
  describeLab,
  domainPids,
  freezerState,
  interactive,
  job,
  jobs,
  pbsCmd,
  qmgr,
  qsub,
  restartServer,
  SCHED_CONFIG,
  serverLogSince,
  serverLogSize,
  sleep,
  thawAll,
  until,
  vnodeOf,
  vnodes,
} from './lab';

const timings: Record<string, number[]> = {};
const note = (what: string, ms: number): void => {
  (timings[what] ??= []).push(Math.round(ms));
};
afterAll(() => {
  if (Object.keys(timings).length === 0) return;
  fs.mkdirSync(path.join(ROOT, '.cache'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, '.cache/pbs-timings.json'), `${JSON.stringify(timings, null, 2)}\n`);
});

/** A job that counts (a line per 0.2 s) in a file: it shows whether its processes really run. */
const COUNTER = '/tmp/magrathea-pbslab-counter.sh';
fs.writeFileSync(
  COUNTER,
  '#!/bin/sh\nf=/tmp/magrathea-count.$PBS_JOBID; i=0\nwhile [ $i -lt ${1:-150} ]; do i=$((i+1)); echo $i > $f; sleep 0.2; done\n',
  { mode: 0o755 },
);
const count = (id: string): number => {
  try {
    return Number(fs.readFileSync(`/tmp/magrathea-count.${id}`, 'utf8').trim());
  } catch {
    return 0;
  }
};

const stateOf = async (
  dep: Deployment,
  node: string,
): Promise<Record<string, { state: string; jobs: { id: string; preemptible: boolean; cpus: number }[] }>> => {
  const c = nodeClient(`unix:${dep.daemons[node]!.socket}`);
  try {
    const n = await getNode(c);
    return Object.fromEntries(n.domains.map((d) => [d.name, { state: d.state, jobs: d.jobs }]));
  } finally {
    c.close();
  }
};

/** Every daemon's domains idle again (their jobs' end hooks have run). */
const idle = (dep: Deployment): Promise<unknown> =>
  until(
    async () => {
      for (const n of Object.keys(dep.daemons)) {
        const s = await stateOf(dep, n);
        if (Object.values(s).some((d) => d.jobs.length > 0 || d.state !== 'free')) return false;
      }
      return true;
    },
    'every domain idle',
    60_000,
    300,
  );

/** Waits for a batch job to be suspended in PBS; on a time-out, says what PBS and the daemon saw. */
async function suspendedInPbs(
  dep: Deployment,
  b: string,
  s: { id: Promise<string>; output(): string },
  node: string,
  ms = 30_000,
): Promise<void> {
  try {
    await until(async () => (await job(b)).job_state === 'S', `${b} suspended`, ms, 100);
  } catch (err) {
    const pid = await Promise.race([s.id, sleep(100).then(() => 'none')]).catch(() => 'failed');
    const show = (j: Record<string, unknown> | undefined) =>
      j && { state: j.job_state, sub: j.substate, vnode: j.exec_vnode, comment: j.comment };
    const js = await jobs([b, pid]);
    const info = {
      interactive: pid,
      qsubI: s.output().slice(-400),
      history: (await pbsCmd('tracejob', ['-n', '1', pid])).stdout.slice(-1500),
      pj: show(js.get(pid)),
      bj: show(js.get(b)),
      daemon: await stateOf(dep, node),
      filter: dep
        .filter!.logs.filter((l) => l.component === 'accounting')
        .slice(-6)
        .map((l) => [l.time, l.msg, l.job, l.result, l.output]),
    };
    throw new Error(`${(err as Error).message}\n${JSON.stringify(info)}`);
  }
}

/** Running for real: PBS shows R from the prerun (begin hooks) on; substate 42 is running. */
const running = (j: { job_state?: string; substate?: unknown }): boolean =>
  j.job_state === 'R' && Number(j.substate) === 42;

const magrathea = async (vn: string): Promise<string> =>
  String((await vnodes()).get(vn)?.resources_available.magrathea ?? '(unset)');

/** `magrathea pbs verify --submit` on the lab's site, as pbstest, with the real PBS commands. */
const verifyArgs = (dep: Deployment): string[] => [
  'pbs',
  'verify',
  '--config',
  dep.siteFile,
  ...['qmgr', 'pbsnodes', 'qsub', 'qstat'].flatMap((c) => [`--${c}`, `/opt/pbs/bin/${c}`]),
  '--submit',
  '--user',
  'pbstest',
];

describeLab('OpenPBS 23.06 lab: Magrathea deployed as docs/pbs-site-setup.md says', () => {
  let dep: Deployment;

  beforeAll(async () => {
    await qmgr('set server node_fail_requeue = 310');
    dep = await deployOnCleanLab();
  }, 300_000);

  afterAll(() => undeploy(dep), 120_000);

  afterEach(async () => {
    await cleanJobs();
    if (dep) await idle(dep);
  }, 120_000);

  test('install again on the live site changes nothing it need not (never `set freq` on a hook with a script); verify passes', async () => {
    const from = serverLogSize();
    // The dry run prints what it would run: qmgr commands as such, file writes as shell comments.
    const dry = await dep.cli(
      [
        'pbs',
        'install',
        '--config',
        dep.siteFile,
        '--qmgr',
        '/opt/pbs/bin/qmgr',
        '--sched-config',
        SCHED_CONFIG,
        '--dry-run',
      ],
      60_000,
    );
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^qmgr -c 'import hook magrathea_begin application\/x-python default /m);
    expect(dry.stdout).toMatch(/^# write \S+magrathea_hook\.json$/m);
    expect(dry.stdout).not.toMatch(/qmgr -c '(write|edit) /);
    const r = await install(dep.dir, dep.siteFile);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/freq =/);
    expect(r.stdout).toMatch(/0 failed/);
    const v = await dep.cli(
      [
        'pbs',
        'verify',
        '--config',
        dep.siteFile,
        '--qmgr',
        '/opt/pbs/bin/qmgr',
        '--pbsnodes',
        '/opt/pbs/bin/pbsnodes',
        '--sched-config',
        SCHED_CONFIG,
        '--filter',
        `127.0.0.1:${dep.filter!.grpcPort}`,
      ],
      60_000,
    );
    expect([v.code, v.stdout]).toEqual([0, expect.stringMatching(/verify: \d+ passed, 0 failed/)]);
    expect(v.stdout).toMatch(/ok   hooks pushed to the moms/);
    expect(v.stdout).toMatch(/ok   vnode nodea-meta — magrathea=normal, free/);
    await sleep(2000);
    // pbs_server never runs a mom hook of ours as a server periodic hook.
    expect(serverLogSince(from)).not.toMatch(/does not handle \(32768\)|periodic hook is missing information/);
  }, 240_000);

  test('a batch job runs only where a start is allowed and makes its siblings occupied; the queue chooses the image', async () => {
    const t0 = Date.now();
    const a = await qsub(['-l', 'select=1:ncpus=1', '--', '/bin/sleep', '60']);
    const ja = await until(async () => (running(await job(a)) ? job(a) : false), `${a} running`);
    note('qsub → R (ms)', Date.now() - t0);
    const va = vnodeOf(ja);
    expect(va).toMatch(/^node[ab]-meta$/);
    const node = va.split('-')[0]!;
    const other = node === 'nodea' ? 'nodeb' : 'nodea';
    expect(await stateOf(dep, node)).toMatchObject({
      meta: { state: 'running-preemptible', jobs: [{ id: a, preemptible: true, cpus: 1 }] },
      egee: { state: 'occupied' },
      priv: { state: 'occupied-would-preempt' },
    });
    await until(async () => (await magrathea(vnodeName(node, 'egee'))) === 'none', `${node}-egee published none`);
    expect(await magrathea(vnodeName(node, 'priv'))).toBe('priority');
    // The EGEE queue lands in the other node's egee domain (this node's is occupied).
    const e = await qsub(['-q', 'egee', '-l', 'select=1:ncpus=1', '--', '/bin/sleep', '60']);
    const je = await until(async () => (running(await job(e)) ? job(e) : false), `${e} running`);
    expect(vnodeOf(je)).toBe(vnodeName(other, 'egee'));
    // An explicit image request of a workq job.
    const x = await qsub(['-l', 'select=1:ncpus=1:magrathea_image=egee', '--', '/bin/sleep', '30']);
    const jx = await until(async () => (running(await job(x)) ? job(x) : false), `${x} running`);
    expect(vnodeOf(jx)).toBe(vnodeName(other, 'egee'));
  }, 120_000);

  test('qsub -I preempts the batch domain: its two batch jobs are suspended in PBS and really stop, and run on when the priority job ends', async () => {
    const b = await qsub(['-l', 'select=1:ncpus=1:vnode=nodea-meta', '--', COUNTER, '400']);
    // A second job in the domain (its mom has 2 CPUs): `qstat -f -F json A B` answers for A only.
    const b2 = await qsub(['-l', 'select=1:ncpus=1:vnode=nodea-meta', '--', COUNTER, '400']);
    await until(async () => running(await job(b)) && count(b) > 2, `${b} running and counting`);
    await until(async () => running(await job(b2)) && count(b2) > 2, `${b2} running and counting`);
    const s = interactive(['-l', 'select=1:ncpus=1:vnode=nodea-priv', '--', '/bin/sleep', '8']);
    try {
      const pid = await s.id;
      const tPreempt = await until(async () => (running(await job(pid)) ? Date.now() : false), `${pid} running`);
      expect((await stateOf(dep, 'nodea')).meta!.state).toBe('preempted');
      const tS = await until(
        async () => ((await job(b)).job_state === 'S' ? Date.now() : false),
        `${b} suspended in PBS`,
        15_000,
        50,
      );
      // The daemon's decision: when it committed meta → preempted (its log line's time).
      const decided = (to: string): number => {
        const l = dep.daemons
          .nodea!.logs.filter((x) => x.msg === 'domain state changed' && x.domain === 'meta' && x.to === to)
          .pop();
        return l ? Date.parse(String(l.time)) : NaN;
      };
      note('preemption decision → batch job S in PBS (ms)', tS - decided('preempted'));
      expect(tS - tPreempt).toBeLessThan(15_000);
      await until(async () => (await job(b2)).job_state === 'S', `${b2} suspended in PBS too`, 15_000, 50);
      const c1 = count(b);
      const c2 = count(b2);
      await sleep(1500);
      expect([count(b), count(b2)]).toEqual([c1, c2]); // their processes are stopped
      expect((await vnodes()).get('nodea-meta')?.state).toMatch(/maintenance/);
      expect(
        String((await vnodes()).get('nodea-meta')?.maintenance_jobs)
          .split(',')
          .sort(),
      ).toEqual([b, b2].sort());
      // Both waits at once: PBS shows the priority job F only after its end hook has resumed the batch domain.
      const [tEnd, tR] = await Promise.all([
        until(async () => ((await job(pid)).job_state === 'F' ? Date.now() : false), `${pid} finished`, 40_000),
        until(async () => (running(await job(b)) ? Date.now() : false), `${b} running again`, 40_000, 50),
      ]);
      note(
        'priority job end (its EndJob at the daemon) → batch job R in PBS (ms)',
        tR - decided('running-preemptible'),
      );
      expect(tR).toBeGreaterThanOrEqual(tEnd - 60_000);
      await until(async () => running(await job(b2)), `${b2} running again`, 40_000, 50);
      await until(() => count(b) > c1 + 2 && count(b2) > c2 + 2, `${b} and ${b2} counting again`);
      expect((await vnodes()).get('nodea-meta')?.state).not.toMatch(/maintenance/);
    } finally {
      s.end();
      await s.exited;
    }
  }, 120_000);

  test('a batch job preempted while PBS is still starting it is suspended once it runs (PBS converges)', async () => {
    // A slower second execjob_begin hook: the daemon has accepted the start, PBS has not run the job yet.
    await qmgr('create hook mg_slow_begin');
    try {
      await qmgr('set hook mg_slow_begin event = execjob_begin');
      await qmgr('set hook mg_slow_begin order = 900');
      const slow = path.join(dep.dir, 'slow_begin.py');
      fs.writeFileSync(slow, 'import time\nimport pbs\ntime.sleep(4)\npbs.event().accept()\n');
      await qmgr(`import hook mg_slow_begin application/x-python default ${slow}`);
      await until(
        () => fs.existsSync('/var/spool/pbs-dom/nodeb-meta/mom_priv/hooks/mg_slow_begin.PY'),
        'slow hook on the mom',
      );
      await sleep(1000);
      const b = await qsub(['-l', 'select=1:ncpus=1:vnode=nodeb-meta', '--', COUNTER, '400']);
      await until(
        async () => (await stateOf(dep, 'nodeb')).meta!.jobs.some((j) => j.id === b),
        'the daemon has the job',
      );
      expect(Number((await job(b)).substate)).not.toBe(42); // 42: running (41, prerun, shows job_state R)
      const s = interactive(['-l', 'select=1:ncpus=1:vnode=nodeb-priv', '--', '/bin/sleep', '12']);
      try {
        await s.id;
        await until(async () => (await stateOf(dep, 'nodeb')).meta!.state === 'preempted', 'meta preempted');
        // PBS runs the batch job only after the slow hook; the filter keeps asking until it is suspended.
        await until(async () => (await job(b)).job_state === 'S', `${b} suspended in PBS`, 30_000, 100);
        const c1 = count(b);
        await sleep(1500);
        expect(count(b)).toBe(c1);
      } finally {
        s.end();
        await s.exited;
      }
      await until(async () => running(await job(b)), `${b} running again`, 40_000);
    } finally {
      await qmgr('delete hook mg_slow_begin');
    }
  }, 150_000);

  test('a multi-node job is not preemptible and each domain counts only its own CPUs', async () => {
    const m = await qsub([
      '-l',
      'select=1:ncpus=1:vnode=nodea-meta+1:ncpus=2:vnode=nodeb-meta',
      '-l',
      'place=scatter',
      '--',
      '/bin/sleep',
      '60',
    ]);
    await until(async () => running(await job(m)), `${m} running`);
    await until(async () => (await stateOf(dep, 'nodeb')).meta!.jobs.length === 1, 'both domains have it');
    expect((await stateOf(dep, 'nodea')).meta).toEqual({
      state: 'running',
      jobs: [expect.objectContaining({ id: m, preemptible: false, cpus: 1 })],
    });
    expect((await stateOf(dep, 'nodeb')).meta).toEqual({
      state: 'running',
      jobs: [expect.objectContaining({ id: m, preemptible: false, cpus: 2 })],
    });
    await until(async () => (await magrathea('nodea-priv')) === 'none', 'nodea-priv accepts nothing');
    // A priority job cannot preempt it: it waits, and the multi-node job keeps running.
    const s = interactive(['-l', 'select=1:ncpus=1:vnode=nodea-priv', '--', '/bin/true']);
    try {
      const pid = await s.id;
      await sleep(4000);
      expect((await job(pid)).job_state).toBe('Q');
      expect((await job(m)).job_state).toBe('R');
    } finally {
      s.end();
      await s.exited;
    }
  }, 120_000);

  test('a killed daemon: its vnodes leave scheduling after the grace period, no job is ever held, and it comes back', async () => {
    const a = dep.daemons.nodea!;
    const t0 = Date.now();
    await a.kill9();
    // Submitted at once, inside the grace period: the begin hook cannot reach the daemon.
    const ids = [
      await qsub(['-l', 'select=1:ncpus=1:vnode=nodea-meta', '--', '/bin/true']),
      // Through its image's queue: a workq job asks for image meta and never runs in an egee domain
      // (unseen while the lab's qstat helper read only the first of several jobs).
      await qsub(['-q', 'egee', '-l', 'select=1:ncpus=1:vnode=nodea-egee', '--', '/bin/true']),
    ];
    await until(
      async () => {
        const vs = await vnodes();
        return ['meta', 'egee', 'priv'].every((d) => vs.get(`nodea-${d}`)?.resources_available.magrathea === 'none');
      },
      'every nodea vnode accepts nothing',
      20_000,
      50,
    );
    note('daemon kill -9 → its vnodes out of scheduling (ms)', Date.now() - t0);
    await sleep(8000);
    const queued = await jobs(ids);
    expect(queued.size).toBe(ids.length);
    for (const j of queued.values()) {
      expect(j.job_state).toBe('Q');
      expect(j.Hold_Types ?? 'n').toBe('n');
      expect(Number(j.run_count ?? 0)).toBeLessThanOrEqual(3);
    }
    await dep.restartDaemon('nodea');
    await until(
      async () => {
        const js = await jobs(ids);
        return js.size === ids.length && [...js.values()].every((j) => j.job_state === 'F');
      },
      'the jobs ran once the daemon was back',
      60_000,
    );
  }, 150_000);

  test('with the filter down a stale view costs no job a hold: a refused start takes the vnode out from the mom side', async () => {
    await dep.filter!.stop();
    dep.filter = null;
    try {
      const off = await dep.cli([
        'domain',
        'offline',
        'meta',
        '--node',
        `unix:${dep.daemons.nodeb!.socket}`,
        '--reason',
        'lab test',
      ]);
      expect(off.code).toBe(0);
      expect(await magrathea('nodeb-meta')).toBe('normal'); // nobody publishes
      const j = await qsub(['-l', 'select=1:ncpus=1:vnode=nodeb-meta', '--', '/bin/true']);
      await until(async () => (await magrathea('nodeb-meta')) === 'none', 'the begin hook took the vnode out', 30_000);
      await sleep(6000);
      const s = await job(j);
      expect(s.job_state).toBe('Q');
      expect(s.Hold_Types ?? 'n').toBe('n');
      expect(Number(s.run_count ?? 0)).toBeLessThanOrEqual(2);
      expect((await dep.cli(['domain', 'online', 'meta', '--node', `unix:${dep.daemons.nodeb!.socket}`])).code).toBe(0);
    } finally {
      await dep.startFilter();
    }
    await until(async () => (await magrathea('nodeb-meta')) === 'normal', 'the filter publishes again', 30_000);
  }, 120_000);

  test('users cannot make a job priority: qsub, qalter, qmove and pbs_rsub refuse magrathea; a batch job cannot enter the interactive queue', async () => {
    const r1 = await asUser('qsub', ['-l', 'select=1:ncpus=1:magrathea=priority', '--', '/bin/true']);
    expect([r1.code, r1.stderr]).toEqual([expect.any(Number), expect.stringMatching(/set by the system/)]);
    expect(r1.code).not.toBe(0);
    const r2 = await asUser('qsub', ['-q', 'iprio', '--', '/bin/true']);
    expect(r2.stderr).toMatch(/takes interactive jobs/);
    const held = await qsub(['-h', '--', '/bin/true']);
    for (const args of [
      ['-l', 'select=1:ncpus=1:magrathea=priority', held],
      ['-l', 'magrathea=priority', held],
    ]) {
      const r = await asUser('qalter', args);
      expect([r.code === 0, r.stderr]).toEqual([false, expect.stringMatching(/cannot be changed with qalter/)]);
    }
    const mv = await asUser('qmove', ['iprio', held]);
    expect([mv.code === 0, mv.stderr]).toEqual([
      false,
      expect.stringMatching(/cannot be moved into the priority queue/),
    ]);
    const rs = await asUser('pbs_rsub', ['-R', '2330', '-E', '2359', '-l', 'select=1:ncpus=1:magrathea=priority']);
    expect([rs.code === 0, rs.stderr]).toEqual([false, expect.stringMatching(/remove magrathea from the reservation/)]);
    const bad = await asUser('qsub', ['-l', 'select=1:ncpus=1:magrathea_image=centos', '--', '/bin/true']);
    expect(bad.stderr).toMatch(/unknown image centos: this site runs meta, egee/);
    // Nothing changed the held job.
    const j = await job(held);
    expect([j.queue, String((j.Resource_List as Record<string, string>).select ?? '')]).toEqual([
      'workq',
      expect.not.stringMatching(/priority/),
    ]);
  }, 60_000);

  test('values changed behind the filter are re-asserted, and again after a pbs_server restart', async () => {
    await qmgr('set node nodea-egee resources_available.magrathea = priority');
    await qmgr('set node nodea-egee comment = "hand edit"');
    await until(async () => (await magrathea('nodea-egee')) === 'normal', 'nodea-egee re-asserted', 15_000);
    await restartServer();
    await qmgr('set node nodeb-priv resources_available.magrathea = none');
    await until(
      async () => (await magrathea('nodeb-priv')) === 'priority',
      'nodeb-priv re-asserted after the restart',
      20_000,
    );
    const v = await vnodes();
    expect(String(v.get('nodea-egee')?.comment)).toMatch(/^magrathea: free/);
  }, 120_000);

  test('after preemptions and a pbs_server restart no vnode comes back in maintenance', async () => {
    const b = await qsub(['-l', 'select=1:ncpus=1:vnode=nodeb-meta', '--', COUNTER, '120']);
    await until(async () => running(await job(b)), `${b} running`);
    const s = interactive(['-l', 'select=1:ncpus=1:vnode=nodeb-priv', '--', '/bin/sleep', '3']);
    try {
      await suspendedInPbs(dep, b, s, 'nodeb');
      await until(async () => running(await job(b)), `${b} resumed`, 30_000);
    } finally {
      s.end();
      await s.exited;
    }
    // Finished — and perhaps already purged from the history by the filter (that is the point).
    await until(async () => ['F', undefined].includes((await jobs([b])).get(b)?.job_state), `${b} finished`, 60_000);
    await sleep(3000);
    await restartServer();
    await sleep(3000);
    const inMaint = [...(await vnodes())]
      .filter(([, v]) => /maintenance/.test(v.state))
      .map(([n, v]) => `${n} (${v.maintenance_jobs ?? ''})`);
    expect(inMaint).toEqual([]);
  }, 180_000);

  test('a once-suspended job still running across a pbs_server restart: PBS puts its vnode in maintenance; the filter says so and pbs recreate-vnode clears it', async () => {
    const b = await qsub(['-l', 'select=1:ncpus=1:vnode=nodea-meta', '--', COUNTER, '600']);
    await until(async () => running(await job(b)), `${b} running`);
    const s = interactive(['-l', 'select=1:ncpus=1:vnode=nodea-priv', '--', '/bin/sleep', '3']);
    try {
      await suspendedInPbs(dep, b, s, 'nodea');
      await until(async () => running(await job(b)), `${b} resumed`, 30_000);
    } finally {
      s.end();
      await s.exited;
    }
    const logFrom = dep.filter!.logs.length;
    await restartServer();
    // PBS 23.06 brings the vnode back in maintenance for the running job (its own bug); the job runs on.
    await until(
      async () => /maintenance/.test(String((await vnodes()).get('nodea-meta')?.state)),
      'nodea-meta in maintenance after the restart',
      20_000,
    );
    const stuck = await until(
      () => dep.filter!.logs.slice(logFrom).find((l) => /vnode left in maintenance by PBS/.test(String(l.msg))),
      'the filter reported the vnode',
      30_000,
      200,
    );
    expect(stuck).toMatchObject({ vnode: 'nodea-meta', fix: 'magrathea pbs recreate-vnode nodea-meta' });
    expect((await job(b)).job_state).toBe('R');
    const c1 = count(b);
    await until(() => count(b) > c1, `${b} still counting`);
    const recreate = [
      'pbs',
      'recreate-vnode',
      'nodea-meta',
      '--qmgr',
      '/opt/pbs/bin/qmgr',
      '--pbsnodes',
      '/opt/pbs/bin/pbsnodes',
    ];
    const refused = await dep.cli(recreate);
    expect([refused.code, refused.stderr]).toEqual([3, expect.stringMatching(/runs job\(s\) .*wait until they end/)]);
    await pbsCmd('qdel', ['-W', 'force', b]);
    await until(async () => !(await vnodes()).get('nodea-meta')?.jobs, 'nodea-meta runs no job', 30_000);
    const ok = await dep.cli(recreate, 90_000);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringMatching(/nodea-meta is back: free/)]);
    // The filter writes its values again (re-assertion) and the vnode takes jobs.
    await until(async () => (await magrathea('nodea-meta')) === 'normal', 'nodea-meta published again', 30_000);
    const n = await qsub(['-l', 'select=1:ncpus=1:vnode=nodea-meta', '--', '/bin/true']);
    await until(async () => (await job(n)).job_state === 'F', `${n} ran on the re-created vnode`, 60_000);
  }, 240_000);

  test('an idle node is not called stale: liveness comes from heartbeats, not traffic', async () => {
    await sleep(4000);
    const r = await dep.cli([
      'cluster',
      'status',
      '--filter',
      `127.0.0.1:${dep.filter!.grpcPort}`,
      '--stale-after',
      '3',
    ]);
    expect([r.code, r.stdout]).toEqual([0, expect.not.stringMatching(/STALE|UNREACHABLE/)]);
  }, 30_000);

  test("one writer of vnode comments: after starts and ends every comment is the filter's", async () => {
    const a = await qsub(['-l', 'select=1:ncpus=1:vnode=nodea-meta', '--', '/bin/sleep', '2']);
    await until(async () => (await job(a)).job_state === 'F', `${a} finished`, 60_000);
    await idle(dep);
    await sleep(1500);
    for (const n of ['nodea', 'nodeb'])
      for (const d of ['meta', 'egee', 'priv'])
        expect(String((await vnodes()).get(`${n}-${d}`)?.comment)).toMatch(
          /^magrathea: [a-z-]+(, offline)? \(gen \d+\)$/,
        );
  }, 90_000);

  test('a qsig for a job that is gone is not an error: a suspended job deleted during the preemption', async () => {
    const b = await qsub(['-l', 'select=1:ncpus=1:vnode=nodea-meta', '--', COUNTER, '400']);
    await until(async () => running(await job(b)), `${b} running`);
    const logFrom = dep.filter!.logs.length;
    const s = interactive(['-l', 'select=1:ncpus=1:vnode=nodea-priv', '--', '/bin/sleep', '6']);
    try {
      const pid = await s.id;
      await suspendedInPbs(dep, b, s, 'nodea');
      await pbsCmd('qdel', ['-W', 'force', b]);
      await until(async () => (await job(pid)).job_state === 'F', 'the priority job finished', 40_000);
    } finally {
      s.end();
      await s.exited;
    }
    await sleep(3000);
    const errors = dep.filter!.logs.slice(logFrom).filter((l) => l.level === 'error' || l.level === 'fatal');
    expect(errors).toEqual([]);
    // Deleted while admin-suspended, the job stays in PBS's saved maintenance_jobs: the filter purges
    // its history, so a restart does not bring the vnode back in maintenance.
    await until(async () => !(await jobs([b])).has(b), `${b}'s history purged`, 30_000, 500);
    await restartServer();
    expect(String((await vnodes()).get('nodea-meta')?.state)).not.toMatch(/maintenance/);
  }, 90_000);

  test('qmgr errors are caught: install reports an unknown queue (exit 8); the filter logs a vnode PBS does not know and publishes the others', async () => {
    const bad = path.join(dep.dir, 'site-bad.yaml');
    fs.writeFileSync(
      bad,
      siteConfig(dep.dir).replace('publishFromMom: false', 'publishFromMom: false\nnormalQueues: [workq, nosuchq]'),
    );
    const r = await dep.cli(
      ['pbs', 'install', '--config', bad, '--qmgr', '/opt/pbs/bin/qmgr', '--sched-config', SCHED_CONFIG],
      120_000,
    );
    expect(r.code).toBe(8);
    expect(r.stdout).toMatch(/FAIL queue nosuchq: .*does not exist/);
    // A second filter whose config maps a domain to a vnode PBS has never heard of.
    const cfg = fs
      .readFileSync(path.join(dep.dir, 'filter.yaml'), 'utf8')
      .replace(
        /- \{ name: nodeb, address: ("[^"]+") \}/,
        '- { name: nodeb, address: $1, vnodes: { priv: nosuch-vnode } }',
      );
    const f2 = path.join(dep.dir, 'filter2.yaml');
    fs.writeFileSync(f2, cfg);
    const other = await spawnFilter(f2);
    try {
      await until(
        () => other.logs.some((l) => /qmgr/.test(String(l.msg)) && JSON.stringify(l).includes('nosuch-vnode')),
        'the unknown vnode logged',
        20_000,
      );
      const failed = other.logs.find((l) => JSON.stringify(l).includes('nosuch-vnode'))!;
      expect(JSON.stringify(failed)).toMatch(/Unknown node/);
      expect(await magrathea('nodeb-meta')).toBe('normal');
    } finally {
      await other.stop();
    }
    await install(dep.dir, dep.siteFile);
  }, 180_000);

  test('verify --submit runs a probe per image and job class and checks where each ran', async () => {
    const v = await dep.cli(
      [...verifyArgs(dep), '--filter', `127.0.0.1:${dep.filter!.grpcPort}`, '--probe-timeout', '60'],
      240_000,
    );
    expect(v.stdout).toMatch(/ok   probe: image meta \(queue workq\) — job \S+ ran on node[ab]-meta/);
    expect(v.stdout).toMatch(/ok   probe: image egee \(queue egee\) — job \S+ ran on node[ab]-egee/);
    expect(v.stdout).toMatch(/ok   probe: interactive job \(queue iprio\) — job \S+ ran on node[ab]-priv/);
    expect(v.code).toBe(0);
  }, 300_000);

  test('verify --submit: a probe that cannot run fails within --probe-timeout, says what PBS said, and is deleted', async () => {
    await qmgr('set queue egee started = false'); // its jobs stay queued
    try {
      const v = await dep.cli([...verifyArgs(dep), '--probe-timeout', '8'], 240_000);
      const line = v.stdout.split('\n').find((l) => l.includes('probe: image egee'));
      expect(line).toMatch(/^FAIL probe: image egee \(queue egee\) — job (\S+) did not finish within 8 s \(state Q/);
      expect(line).toMatch(/the probe job was deleted$/);
      expect(v.stdout).toMatch(/ok   probe: image meta/);
      expect(v.code).toBe(8);
      const id = /job (\S+) did not finish/.exec(line!)![1]!;
      expect(['F', undefined]).toContain((await jobs([id])).get(id)?.job_state); // not left queued
    } finally {
      await qmgr('set queue egee started = true');
    }
  }, 300_000);

  test('a site without the filter (domains publish from their periodic hook): install, re-install, back — pbs_server never runs our hook as a server periodic hook', async () => {
    const from = serverLogSize();
    const momSite = path.join(dep.dir, 'site-mom.yaml');
    fs.writeFileSync(
      momSite,
      siteConfig(dep.dir).replace('publishFromMom: false', 'publishFromMom: true\nperiodicFreq: 11\nperiodicAlarm: 8'),
    );
    const args = (f: string) => [
      'pbs',
      'install',
      '--config',
      f,
      '--qmgr',
      '/opt/pbs/bin/qmgr',
      '--sched-config',
      SCHED_CONFIG,
    ];
    const first = await dep.cli(args(momSite), 180_000);
    expect([first.code, first.stdout]).toEqual([
      0,
      expect.stringMatching(/ok   hook magrathea_periodic: set hook magrathea_periodic freq = 11/),
    ]);
    const again = await dep.cli(args(momSite), 180_000);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toMatch(/freq =/); // the hook has a script now: never `set freq`
    const back = await dep.cli(args(dep.siteFile), 180_000);
    expect([back.code, back.stdout]).toEqual([
      0,
      expect.stringMatching(/ok   hook magrathea_periodic: delete hook magrathea_periodic/),
    ]);
    await hooksOnMoms(dep.dir);
    await sleep(13_000); // past one freq: a wrongly scheduled server periodic run would show by now
    expect(serverLogSince(from)).not.toMatch(/does not handle \(32768\)|periodic hook is missing information/);
  }, 300_000);

  test('uninstall on a site with job history keeps what is in use and says why; install right after waits for the moms', async () => {
    const args = ['--config', dep.siteFile, '--qmgr', '/opt/pbs/bin/qmgr', '--sched-config', SCHED_CONFIG];
    // A site that has run jobs: the finished job's history references the magrathea resource.
    const done = await qsub(['-l', 'select=1:ncpus=1', '--', '/bin/true']);
    await until(async () => (await job(done)).job_state === 'F', `${done} finished`, 60_000);
    const u = await dep.cli(['pbs', 'uninstall', ...args], 180_000);
    expect(u.code).toBe(0);
    expect(u.stdout).toMatch(/KEPT resource magrathea: .*still referenced by jobs/);
    expect(fs.readFileSync(SCHED_CONFIG, 'utf8')).not.toMatch(/magrathea/);
    expect(fs.existsSync(`${SCHED_CONFIG}.magrathea.orig`)).toBe(true);
    const again = await dep.cli(['pbs', 'uninstall', ...args], 180_000);
    expect(again.code).toBe(0);
    const i = await install(dep.dir, dep.siteFile);
    expect([i.code, i.stdout]).toEqual([0, expect.stringMatching(/0 failed/)]);
    const hooks = await qmgr('list hook');
    for (const h of ['magrathea_queuejob', 'magrathea_begin', 'magrathea_end']) expect(hooks).toContain(`Hook ${h}`);
    await hooksOnMoms(dep.dir);
    expect(fs.readFileSync(SCHED_CONFIG, 'utf8')).toMatch(/magrathea_rank HIGH/);
  }, 400_000);
});

describeLab('OpenPBS 23.06 lab: a frozen (paused) batch domain', () => {
  let dep: Deployment;
  beforeAll(async () => {
    thawAll();
    await cleanJobs();
    dep = await deploy({ metaMode: 'pause' });
    await qmgr('set server node_fail_requeue = 5');
  }, 300_000);
  afterAll(async () => {
    await qmgr('set server node_fail_requeue = 310').catch(() => undefined);
    await cleanJobs().catch(() => undefined);
    await dep?.stop();
    thawAll();
  }, 120_000);

  test('its job survives freeze and thaw although its mom cannot answer (node_fail_requeue 5 s); PBS is not asked what the mom cannot do', async () => {
    const b = await qsub(['-l', 'select=1:ncpus=1:vnode=nodeb-meta', '--', COUNTER, '60']);
    await until(async () => running(await job(b)) && count(b) > 2, `${b} counting`);
    const s = interactive(['-l', 'select=1:ncpus=1:vnode=nodeb-priv', '--', '/bin/sleep', '20']);
    try {
      await s.id;
      await until(() => freezerState('nodeb', 'meta') === 'FROZEN', 'nodeb-meta frozen', 20_000);
      expect(domainPids('nodeb', 'meta').length).toBeGreaterThan(0);
      const c1 = count(b);
      await sleep(12_000); // well past node_fail_requeue
      expect(count(b)).toBe(c1);
      const j = await job(b);
      expect([j.job_state, Number(j.run_count)]).toEqual(['R', 1]);
    } finally {
      s.end();
      await s.exited;
    }
    await until(() => freezerState('nodeb', 'meta') === 'THAWED', 'nodeb-meta thawed', 40_000);
    const done = await until(async () => ((await job(b)).job_state === 'F' ? job(b) : false), `${b} finished`, 60_000);
    expect([Number(done.Exit_status), Number(done.run_count), count(b)]).toEqual([0, 1, 60]);
  }, 180_000);
});
