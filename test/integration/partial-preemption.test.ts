/**
 * CPU-counting mode through a real magrathead (simulated driver, real journal on disk): a
 * priority job suspends only the jobs it needs, GetNode, WatchNode and the CLI show which,
 * the suspension survives a daemon restart, a start that does not fit is refused with its
 * reason, and the jobs are resumed when the CPUs are free again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { NodeServiceClient } from '@magrathea/common';
import {
  cli,
  collectWatch,
  getNode,
  nodeClient,
  spawnDaemon,
  statesOf,
  tmpDir,
  unary,
  until,
} from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const CONFIG = `
driver: { kind: simulated }
cpuCounting: { cpus: 8 }
domains:
  - { name: meta, class: normal, autostart: true }
  - { name: egee, class: normal, autostart: true }
  - { name: priv, class: priority, autostart: true }
`;

interface JobRef {
  domain: string;
  job_id: string;
}

describe('partial preemption through a real daemon (CPU-counting mode)', () => {
  let dir: string;
  let d: DaemonProcess | undefined;
  let c: NodeServiceClient | undefined;

  const boot = async () => {
    d = await spawnDaemon({ stateDir: path.join(dir, 'state'), config: CONFIG });
    c = nodeClient(d.admin);
    const client = c;
    await until(async () => Object.values(statesOf(await getNode(client))).every((s) => s === 'free'), 'domains up');
    return client;
  };

  beforeEach(() => {
    dir = tmpDir('mg-partial-');
  });

  afterEach(async () => {
    c?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('only the cheapest job is suspended, shown everywhere, kept across a restart, and resumed', async () => {
    let client = await boot();
    const n0 = await getNode(client);
    expect(n0).toMatchObject({ cpu_counting: true, cpus: 8 });
    await unary(client, client.StartJob, { domain: 'meta', job_id: '1.pbs', preemptible: true, cpus: 4 });
    await unary(client, client.StartJob, { domain: 'meta', job_id: '2.pbs', preemptible: true, cpus: 2 });
    await unary(client, client.StartJob, { domain: 'egee', job_id: '3.pbs', preemptible: true, cpus: 2 });
    expect(statesOf(await getNode(client))).toMatchObject({
      meta: 'running-preemptible',
      egee: 'running-preemptible',
      priv: 'occupied-would-preempt',
    });
    const watch = collectWatch(client, Number((await getNode(client)).generation));
    try {
      const r = await unary<object, { suspended_jobs: JobRef[]; preempted: string[]; phases: { name: string }[] }>(
        client,
        client.StartJob,
        { domain: 'priv', job_id: '4.pbs', cpus: 2 },
      );
      // 2 CPUs needed, none free: one 2-CPU job, no waste; of the two, egee's (the tie falls by domain name).
      expect(r.suspended_jobs).toEqual([{ domain: 'egee', job_id: '3.pbs' }]);
      expect(r.preempted).toEqual(['egee']);
      expect(r.phases.map((p) => p.name)).toEqual(['stop-jobs:egee', 'grow:priv']);
      await watch.waitFor((es) =>
        es.some((e) => e.change?.job_id === '4.pbs' && e.change.domains.some((x) => x.name === 'egee')),
      );
    } finally {
      watch.stream.cancel();
    }
    const n1 = await getNode(client);
    const meta = n1.domains.find((x) => x.name === 'meta')!;
    expect(meta.state).toBe('running-preemptible');
    expect(meta.jobs.map((j) => [j.id, j.suspended])).toEqual([
      ['1.pbs', false],
      ['2.pbs', false],
    ]);
    expect(meta).toMatchObject({ cpus_running: 6, cpus_suspended: 0, cpus_free: 0, per_job_suspension: true });
    const egee = n1.domains.find((x) => x.name === 'egee')!;
    expect(egee.state).toBe('preempted');
    expect(egee.jobs[0]).toMatchObject({ id: '3.pbs', suspended: true, preemptions: 1 });

    // The start arbiter: a batch job does not fit (the suspended job's CPUs are spoken for).
    const err = await unary(client, client.StartJob, { domain: 'meta', job_id: '5.pbs', preemptible: true }).catch(
      (e: grpc.ServiceError) => e,
    );
    expect((err as grpc.ServiceError).metadata.get('magrathea-reason')).toEqual(['no-free-cpus']);
    expect((err as grpc.ServiceError).details).toMatch(/needs 1 CPU\(s\); 0 of the node's 8 are free for batch work/);

    const status = await cli(['status', '--node', d!.addr]);
    expect(status.stdout).toMatch(/egee +normal +- +preempted +3\.pbs/);

    // The suspension is in the journal: a restarted daemon has the same jobs suspended.
    client.close();
    await d!.stop();
    client = await (async () => {
      d = await spawnDaemon({ stateDir: path.join(dir, 'state'), config: CONFIG });
      c = nodeClient(d.admin);
      return c;
    })();
    const n2 = await getNode(client);
    expect(n2.domains.find((x) => x.name === 'egee')!.jobs[0]).toMatchObject({ id: '3.pbs', suspended: true });
    expect(statesOf(n2)).toMatchObject({ meta: 'running-preemptible', egee: 'preempted', priv: 'running-priority' });

    const e = await unary<object, { resumed_jobs: JobRef[]; resumed: string[] }>(client, client.EndJob, {
      domain: 'priv',
      job_id: '4.pbs',
    });
    expect(e.resumed_jobs).toEqual([{ domain: 'egee', job_id: '3.pbs' }]);
    expect(e.resumed).toEqual(['egee']);
    expect(statesOf(await getNode(client)).egee).toBe('running-preemptible');
  }, 60_000);

  test('a priority job needing part of one domain leaves that domain running, its other jobs too', async () => {
    const client = await boot();
    for (const [id, cpus] of [
      ['10.pbs', 3],
      ['11.pbs', 3],
      ['12.pbs', 2],
    ] as const)
      await unary(client, client.StartJob, { domain: 'meta', job_id: id, preemptible: true, cpus });
    const r = await unary<object, { suspended_jobs: JobRef[]; preempted: string[] }>(client, client.StartJob, {
      domain: 'priv',
      job_id: '13.pbs',
      cpus: 3,
    });
    // 3 needed: a 3-CPU job (no waste), not the 2-CPU one (too small) nor both.
    expect(r.suspended_jobs).toHaveLength(1);
    expect(['10.pbs', '11.pbs']).toContain(r.suspended_jobs[0]!.job_id);
    expect(r.preempted).toEqual([]);
    const n = await getNode(client);
    expect(statesOf(n).meta).toBe('running-preemptible');
    const out = await cli(['domain', 'show', 'meta', '--node', d!.addr]);
    expect(out.stdout).toMatch(/CpusRunning=5 CpusSuspended=3 CpusFree=0 Suspension=per-job/);
    const status = await cli(['status', '--node', d!.addr]);
    expect(status.stdout).toContain(`suspended ${r.suspended_jobs[0]!.job_id}`);
  }, 60_000);
});
