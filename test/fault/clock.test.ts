/**
 * Fault suite, class 15: the wall clock stepped back an hour (test/fixtures/clock-step.js, on
 * SIGUSR2) under a running daemon and filter. Durations run on the monotonic clock: reconciliation
 * goes on, a 2 s flap hold ends after 2 s, in the daemon and in the filter's admission.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeMessage } from '@magrathea/common';
import { getNode, nodeClient, ROOT, spawnDaemon, spawnFilter, tmpDir, unary } from '../helpers/processes';
import { record, waitFor } from './helpers';

const STEP = ['--require', path.join(ROOT, 'test/fixtures/clock-step.js')];

test('class 15: a wall clock stepped back an hour stretches neither reconciliation nor a flap hold', async () => {
  const dir = tmpDir('mg-fault-clock-');
  const d = await spawnDaemon({
    stateDir: path.join(dir, 'state'),
    nodeArgs: STEP,
    config: [
      'domains: [{ name: meta }, { name: priv, class: priority }]',
      'driver: { simulated: { latencyMs: { boot: 0 } } }',
      'reconcileCron: "*/1 * * * * *"',
      'flapDamping: { maxFlaps: 1, windowMs: 60000, holdMs: 2000 }',
      '',
    ].join('\n'),
  });
  const c = nodeClient(d.admin);
  const cfg = path.join(dir, 'filter.yaml');
  fs.writeFileSync(
    cfg,
    `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }\nnodes:\n  - { name: n1, address: "${d.addr}" }\n`,
  );
  const f = await spawnFilter(cfg, {}, STEP);
  const admit = async (): Promise<boolean> => {
    const r = await fetch(`http://127.0.0.1:${f.httpPort}/v1/admit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ job_class: 'normal', vnodes: ['n1-meta'] }),
    });
    return ((await r.json()) as { admit: boolean }).admit;
  };
  const meta = (n: NodeMessage) => n.domains.find((x) => x.name === 'meta')!;
  try {
    await waitFor(async () => meta(await getNode(c)).state === 'free', 'booted');
    await waitFor(admit, 'the filter admits on n1-meta');
    // Two drops within the window: held for 2 s.
    for (const action of ['offline', 'online', 'offline', 'online'])
      await unary(c, c.DomainAction, { domain: 'meta', action, reason: 'flap' });
    expect(meta(await getNode(c)).held_until_ms).not.toBe('0');
    await waitFor(async () => !(await admit()), 'the filter holds n1-meta');
    // A reconciliation has observed the domain (the one at start skips a domain whose boot is still in flight).
    await waitFor(
      async () => meta(await getNode(c)).observed?.observed_at_ms !== undefined,
      'a first observation of meta',
    );
    const observedBefore = meta(await getNode(c)).observed?.observed_at_ms;
    d.proc.kill('SIGUSR2');
    f.proc.kill('SIGUSR2');
    // Reconciliation goes on after the step (each run stamps its observation, now an hour earlier).
    await waitFor(
      async () => {
        const o = meta(await getNode(c)).observed?.observed_at_ms;
        return o !== undefined && o !== observedBefore && Number(o) < Number(observedBefore) - 3_000_000;
      },
      'a reconciliation after the clock step',
      6000,
    );
    // The hold ends 2 s after it began, not an hour later; the filter admits again.
    await waitFor(async () => meta(await getNode(c)).held_until_ms === '0', 'the daemon ends the hold', 8000);
    await waitFor(admit, 'the filter admits on n1-meta again', 8000);
    record('15 wall clock stepped back', { inputs: 4, faults: 2, acked: 0, lost: 0, crashes: 0 });
  } finally {
    c.close();
    await f.stop();
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);
