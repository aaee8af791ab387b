/**
 * Fault suite, classes 1 and 14: what a node daemon says is untrusted. Hostile daemons (real gRPC
 * servers on 127.0.0.1:0) feed the real magrathea-filter, which publishes through the recording
 * qmgr and qsig stand-ins.
 */
import * as fs from 'node:fs';
import type { NodeEventInput } from '@magrathea/common';
import { tmpDir } from '../helpers/processes';
import { domainMsg, fakeDaemon, jobMsg, pbsFilter, record, snapshotOf, waitFor } from './helpers';

/** What qmgr may get from the filter: exactly these shapes, nothing a daemon could steer. */
const SET_NODE =
  /^set node [A-Za-z0-9][A-Za-z0-9_.-]* resources_available\.magrathea = (none|normal|priority), resources_available\.magrathea_state = [a-z-]+, resources_available\.magrathea_rank = -?\d+(\.\d+)?, comment = "[\x20-\x21\x23-\x5b\x5d-\x7e]*"(, resources_available\.magrathea_image = [A-Za-z0-9][A-Za-z0-9_.-]*)?$/;
const PBS_JOB = /^[0-9]+(\[[0-9]*\])?(\.[A-Za-z0-9][A-Za-z0-9_.-]*)?$/;

test('class 1: hostile names, values, domain counts and vnodes of other nodes never reach qmgr or qsig', async () => {
  const dir = tmpDir('mg-fault-names-');
  const job = (id: string) => jobMsg(id, true);
  // The honest neighbour "a-x": its vnode a-x-meta is named in the filter's config.
  const honest = await fakeDaemon((call) => {
    call.write(snapshotOf('a-x', 1, [domainMsg('meta', 'free', 1)]));
  });
  const hostile: NodeEventInput[] = [
    snapshotOf('a', 7, [
      domainMsg('x-meta', 'running', 7), // would be a-x-meta: the neighbour's vnode
      domainMsg('bad\nset server scheduling = false', 'free', 7),
      domainMsg('nan', 'occupied-would-preempt', 7, { domain_class: 'priority', preempted_cpu_seconds: NaN }),
      domainMsg('inf', 'occupied-would-preempt', 7, { domain_class: 'priority', preempted_cpu_seconds: Infinity }),
      domainMsg('odd', 'free"; delete node x', 7, { image: 'img\nset server x', offline_reason: 'r'.repeat(1 << 20) }),
      domainMsg('jobs', 'preempted', 7, {
        jobs: [job('-s'), job('--help'), job('12.srv'), job('1;rm -rf /'), job('x'.repeat(400))],
        last_release: {
          at_ms: '0',
          mode: 'throttle',
          memory_released_bytes: '0',
          cpu_weight_before: 0,
          cpu_weight_after: 0,
          phases: [],
        },
      }),
      ...Array.from({ length: 10_000 }, (_, i) => domainMsg(`d${i}`, 'free', 7)),
    ]),
  ];
  const attacker = await fakeDaemon((call) => {
    for (const e of hostile) call.write(e);
  });
  let f: Awaited<ReturnType<typeof pbsFilter>> | null = null;
  try {
    f = await pbsFilter(dir, [
      `  - { name: a, address: "${attacker.addr}" }`,
      `  - { name: a-x, address: "${honest.addr}", vnodes: { meta: a-x-meta } }`,
    ]);
    const pf = f;
    await waitFor(() => pf.qmgrLines().some((l) => l.startsWith('set node a-x-meta ')), 'the neighbour published');
    await waitFor(() => pf.qmgrLines().some((l) => l.startsWith('set node a-nan ')), 'the hostile node published');
    await waitFor(() => pf.qsigJobs().length > 0, 'accounting signalled the preempted jobs');
    await new Promise((r) => setTimeout(r, 500));
    const lines = pf.qmgrLines();
    const bad = lines.filter((l) => !SET_NODE.test(l) && l !== 'set server scheduling = true');
    expect(bad).toEqual([]);
    const vnodesOfA = new Set(lines.map((l) => /^set node (a-(?!x-)\S+) /.exec(l)?.[1]).filter(Boolean));
    expect(vnodesOfA.size).toBeLessThanOrEqual(64);
    // Only the neighbour writes its vnode.
    expect(
      lines.filter((l) => l.startsWith('set node a-x-meta ')).every((l) => l.includes('magrathea_state = free')),
    ).toBe(true);
    expect(pf.qsigJobs().every((j) => PBS_JOB.test(j))).toBe(true);
    expect(pf.qsigJobs()).toContain('12.srv');
    expect(pf.filter.proc.exitCode).toBeNull();
    record('1 names from a daemon', { inputs: hostile.length + 10_006 + 5, faults: 0, acked: 0, lost: 0, crashes: 0 });
  } finally {
    await f?.filter.stop();
    await attacker.close();
    await honest.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

test('class 14: a daemon sending generations out of order is re-read after a growing wait, not in a tight loop', async () => {
  const dir = tmpDir('mg-fault-order-');
  const d = await fakeDaemon((call) => {
    call.write(snapshotOf('n', 10, [domainMsg('meta', 'free', 10)]));
    call.write({
      generation: '5',
      change: {
        cause: 't',
        domain: 'meta',
        job_id: '',
        at_ms: '0',
        domains: [domainMsg('meta', 'occupied', 5)],
        job_changes: [],
      },
    });
  });
  let f: Awaited<ReturnType<typeof pbsFilter>> | null = null;
  try {
    f = await pbsFilter(dir, [`  - { name: n, address: "${d.addr}" }`]);
    const pf = f;
    await waitFor(() => d.calls >= 1, 'the first watch');
    const c0 = d.calls;
    await new Promise((r) => setTimeout(r, 5000));
    const calls = d.calls - c0;
    // 100 + 200 + 400 + 800 + 1600 ms, then every 2 s: about 6 in 5 s (the old code: thousands).
    expect(calls).toBeLessThanOrEqual(12);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(pf.filter.proc.exitCode).toBeNull();
    record('14 out-of-order generations', { inputs: d.calls * 2, faults: 0, acked: 0, lost: 0, crashes: 0 });
  } finally {
    await f?.filter.stop();
    await d.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
