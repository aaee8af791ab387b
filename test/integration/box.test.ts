/** `magrathea box --headless`: the cluster in a box runs its scenario and every scenario state is reached. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { cli } from '../helpers/processes';

test('the cluster in a box reaches every state of its scenario and cleans up after itself', async () => {
  const before = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('magrathea-box-')).length;
  const r = await cli(['box', '--headless', '--nodes', '3', '--step-ms', '50', '--filter-port', '0'], 60_000);
  expect(r.code).toBe(0);
  const summary = (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { summary: Record<string, unknown> }).summary;
  expect(summary).toMatchObject({
    nodes: 3,
    all_scenario_states_reached: true,
    preemptions: 1,
    refusals: 1,
    interrupted: false,
  });
  expect(summary.states_seen).toEqual(
    expect.arrayContaining([
      'free',
      'running-preemptible',
      'occupied',
      'occupied-would-preempt',
      'preempted',
      'running-priority',
    ]),
  );
  expect(r.stdout).toMatch(/node1\/meta: running-preemptible → preempted \(PBS: magrathea=none\)/);
  expect(r.stdout).toMatch(/node1\/meta: preempted → running-preemptible/);
  expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('magrathea-box-')).length).toBe(before);
}, 90_000);

test('bad box options are refused with a clear message', async () => {
  const r = await cli(['box', '--headless', '--nodes', '1']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/--nodes must be from 2 to 50/);
});
