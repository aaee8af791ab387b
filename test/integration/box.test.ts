/**
 * `magrathea box`: the cluster in a box runs its scenario and every scenario state is reached;
 * nothing it started outlives it, whether it is stopped, its terminal closes, or it is killed.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { CLI_BIN, cli, until } from '../helpers/processes';

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
  // The narrative is words, not JSON.
  expect(r.stdout).toMatch(/» interactive job 200\.pbs \(qsub -I\) starts in node1\/priv and preempts meta:/);
  expect(r.stdout.split('\n').filter((l) => l.startsWith('»') && /[[\]{}"]/.test(l))).toEqual([]);
  expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('magrathea-box-')).length).toBe(before);
}, 90_000);

test('bad box options are refused with a clear message', async () => {
  const r = await cli(['box', '--headless', '--nodes', '1']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/--nodes must be from 2 to 50/);
});

/** Pids of the processes whose command line names `dir` (the box's daemons and filter). */
function childrenOf(dir: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)) pids.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Starts a box that keeps running after its scenario; resolves once its daemons and filter are up. */
async function startBox(): Promise<{ box: ChildProcess; dir: string; out: () => string }> {
  const box = spawn(process.execPath, [CLI_BIN, 'box', '--nodes', '2', '--step-ms', '50', '--filter-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  box.stdout.on('data', (b: Buffer) => (out += b.toString()));
  box.stderr.on('data', (b: Buffer) => (out += b.toString()));
  await until(() => /state in (\S+)/.test(out), 'the box is up', 60_000);
  const dir = /state in (\S+)/.exec(out)![1]!;
  expect(childrenOf(dir)).toHaveLength(3); // two daemons and the filter
  return { box, dir, out: () => out };
}

describe('nothing outlives the box', () => {
  const started: { box: ChildProcess; dir: string }[] = [];
  afterEach(() => {
    // Whatever a failed test left: kill it, so that one failure does not leak into the next.
    for (const { box, dir } of started.splice(0)) {
      box.kill('SIGKILL');
      for (const pid of childrenOf(dir)) process.kill(pid, 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([
    ['Ctrl-C (SIGINT)', 'SIGINT'],
    ['its terminal closing (SIGHUP)', 'SIGHUP'],
    ['kill (SIGTERM)', 'SIGTERM'],
  ] as const)(
    '%s: the daemons and the filter stop, the state directory is removed',
    async (_what, signal) => {
      const b = await startBox();
      started.push(b);
      const exited = new Promise<number | null>((r) => b.box.once('exit', (code) => r(code)));
      b.box.kill(signal);
      expect(await exited).toBe(0);
      expect(childrenOf(b.dir)).toEqual([]);
      expect(fs.existsSync(b.dir)).toBe(false);
    },
    90_000,
  );

  test('kill -9 of the box: its children notice and stop by themselves', async () => {
    const b = await startBox();
    started.push(b);
    b.box.kill('SIGKILL');
    await until(() => childrenOf(b.dir).length === 0, 'the daemons and the filter stopped', 30_000);
    // They stopped cleanly (their logs are files in the state directory, kept after a kill -9).
    expect(fs.readFileSync(`${b.dir}/filter.log`, 'utf8')).toMatch(/"msg":"magrathea-filter stopped"/);
    expect(fs.readFileSync(`${b.dir}/node1/magrathead.log`, 'utf8')).toMatch(/"reason":"the parent process exited"/);
  }, 90_000);
});
