/**
 * Wake on demand on the real OpenPBS lab (issue 19 part 2): both nodes' `egee` domains are taken
 * down (their moms stop); a job submitted to the egee queue (image egee) makes the filter boot one
 * of them through the daemon (the cgroup driver starts its mom again), and the job runs there once
 * the mom is up — never held, never lost. With no job for idleShutdownMs the domain goes down again.
 * The boot-on-demand time (qsub → running) is written to .cache/pbs-wake-timings.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { getNode, nodeClient, ROOT } from '../helpers/processes';
import type { Deployment } from './deploy';
import { deploy, vnodeName } from './deploy';
import { cleanJobs, describeLab, job, NODES, qsub, recreateStuckVnodes, thawAll, until, vnodeOf, vnodes } from './lab';

const IDLE_MS = 15_000;

const domainOf = async (dep: Deployment, node: string, name: string) => {
  const c = nodeClient(`unix:${dep.daemons[node]!.socket}`);
  try {
    return (await getNode(c)).domains.find((d) => d.name === name)!;
  } finally {
    c.close();
  }
};

const egee = (dep: Deployment, action: 'down' | 'boot', node: string) =>
  dep.cli(['domain', action, 'egee', '--node', `unix:${dep.daemons[node]!.socket}`, '--reason', 'wake test']);

describeLab('OpenPBS 23.06 lab: wake on demand', () => {
  let dep: Deployment;

  beforeAll(async () => {
    thawAll();
    await cleanJobs();
    await recreateStuckVnodes();
    dep = await deploy({
      domainFields: (_node, d) =>
        d === 'egee' ? ['wakeOnDemand: true', `idleShutdownMs: ${IDLE_MS}`, 'bootBackoffMs: 5000'] : [],
      filterPbs: { wakeIntervalMs: 1000 },
    });
  }, 300_000);

  afterAll(async () => {
    await cleanJobs().catch(() => undefined);
    // Leave the lab as found: every egee mom up again.
    if (dep)
      for (const n of NODES) {
        if ((await domainOf(dep, n, 'egee').catch(() => null))?.stored_state !== 'free') await egee(dep, 'boot', n);
        await until(async () => (await domainOf(dep, n, 'egee')).stored_state === 'free', `${n} egee up`, 60_000);
      }
    await dep?.stop();
    thawAll();
  }, 180_000);

  test('a job for the image of a down domain boots it, runs there once its mom is up, and the idle domain goes down again', async () => {
    for (const n of NODES) {
      const r = await egee(dep, 'down', n);
      expect([r.code, r.stderr]).toEqual([0, '']);
    }
    // Published as bootable for its image: accepting nothing, down-bootable, the image kept.
    await until(async () => {
      const vs = await vnodes();
      return NODES.every((n) => {
        const v = vs.get(vnodeName(n, 'egee'));
        return (
          v?.resources_available.magrathea === 'none' &&
          v.resources_available.magrathea_state === 'down-bootable' &&
          v.resources_available.magrathea_image === 'egee' &&
          /boots for image egee/.test(String(v.comment))
        );
      });
    }, 'egee vnodes published down-bootable for image egee');
    const t0 = Date.now();
    const id = await qsub(['-q', 'egee', '-l', 'select=1:ncpus=1', '--', '/bin/sleep', '3']);
    const ran = await until(
      async () => {
        const j = await job(id);
        return j.job_state === 'R' || j.job_state === 'F' ? j : false;
      },
      `${id} running`,
      120_000,
      100,
    );
    const bootToRunMs = Date.now() - t0;
    const vn = vnodeOf(ran);
    expect(vn).toMatch(/^node[ab]-egee$/);
    const node = vn.split('-')[0]!;
    const woken = await domainOf(dep, node, 'egee');
    expect(woken.last_boot?.policy).toBe('boot');
    expect(woken.last_boot?.error).toBe('');
    // Never held or requeued on the way.
    expect(ran.Hold_Types ?? 'n').toBe('n');
    expect(Number(ran.run_count ?? 1)).toBe(1);
    const logs = dep.filter!.logs.filter((l) => l.msg === 'waking a domain for a queued job');
    expect(logs.map((l) => [l.jobId, l.node, l.domain])).toEqual([[id, node, 'egee']]);
    // The other node's egee domain was not woken (one job, one boot).
    const other = NODES.find((n) => n !== node)!;
    expect((await domainOf(dep, other, 'egee')).stored_state).toBe('down-bootable');
    const done = await until(
      async () => {
        const j = await job(id);
        return j.job_state === 'F' ? j : false;
      },
      `${id} finished`,
      60_000,
    );
    expect(Number(done.Exit_status)).toBe(0);
    // Idle: down again after idleShutdownMs with no job.
    const tEnd = Date.now();
    await until(
      async () => (await domainOf(dep, node, 'egee')).stored_state === 'down-bootable',
      `${node} egee idle shutdown`,
      IDLE_MS + 60_000,
      250,
    );
    const idleDownMs = Date.now() - tEnd;
    expect((await domainOf(dep, node, 'egee')).down_reason).toMatch(
      /^idle: no job for \d+ s \(idleShutdownMs 15000\)$/,
    );
    expect(idleDownMs).toBeGreaterThanOrEqual(IDLE_MS - 5000);
    fs.mkdirSync(path.join(ROOT, '.cache'), { recursive: true });
    fs.writeFileSync(
      path.join(ROOT, '.cache/pbs-wake-timings.json'),
      `${JSON.stringify({ bootOnDemandToRunningMs: bootToRunMs, bootMs: woken.last_boot?.millis, idleDownMs }, null, 2)}\n`,
    );
  }, 300_000);
});
