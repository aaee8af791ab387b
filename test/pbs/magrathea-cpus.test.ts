/**
 * CPU-counting mode on the real OpenPBS lab: `magrathea pbs install` created the host-level
 * resource `magrathea_cpus` (type long, flag h) and listed it in sched_config's `resources:`,
 * and the filter publishes each vnode's free CPUs into it, following a job's start and end.
 */
import * as fs from 'node:fs';
import type { Deployment } from './deploy';
import { deployOnCleanLab, undeploy, vnodeName } from './deploy';
import { cleanJobs, describeLab, job, qmgr, qsub, SCHED_CONFIG, until, vnodeOf, vnodes } from './lab';

const cpusOf = async (vn: string): Promise<number | null> => {
  const v = (await vnodes()).get(vn)?.resources_available.magrathea_cpus;
  return v === undefined ? null : Number(v);
};

describeLab('OpenPBS lab: resources_available.magrathea_cpus (CPU-counting mode)', () => {
  let dep: Deployment;

  beforeAll(async () => {
    dep = await deployOnCleanLab({ cpuCounting: 2 });
  }, 300_000);

  afterAll(() => undeploy(dep), 120_000);

  test('install created the resource and listed it in sched_config; the value follows a job start and end', async () => {
    const listed = await qmgr('list resource magrathea_cpus');
    expect(listed).toMatch(/type = long/);
    expect(listed).toMatch(/flag = h/);
    expect(fs.readFileSync(SCHED_CONFIG, 'utf8')).toMatch(/^resources: ".*\bmagrathea_cpus\b.*"/m);
    await until(
      async () => (await cpusOf(vnodeName('nodea', 'meta'))) === 2,
      'nodea-meta publishes 2 free CPUs',
      60_000,
    );

    const id = await qsub(['-l', 'select=1:ncpus=1', '--', '/bin/sleep', '60']);
    const vn = await until(
      async () => {
        const j = await job(id);
        return j.job_state === 'R' ? vnodeOf(j) : null;
      },
      'the job runs',
      120_000,
    );
    const node = vn.split('-')[0]!;
    // One of the node's two CPUs is held: every domain of that node may take one more now.
    await until(async () => (await cpusOf(vn)) === 1, `${vn} publishes 1 free CPU`, 60_000);
    await until(async () => (await cpusOf(vnodeName(node, 'priv'))) === 1, `${node}-priv publishes 1 free CPU`, 60_000);

    await cleanJobs();
    await until(async () => (await cpusOf(vn)) === 2, `${vn} publishes 2 free CPUs again`, 60_000);
  }, 400_000);
});
