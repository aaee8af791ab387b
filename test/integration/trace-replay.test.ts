/**
 * The trace replay (bench/sim) on small slices of both real logs: through real daemons and the
 * real filter, every job is started once and ended once, never two domains of a node are
 * active together (as the filter reported them), and the policies differ where they must.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, tmpDir } from '../helpers/processes';

interface Result {
  policy: string;
  jobs: number;
  started: number;
  unplaceable: number;
  priorityJobs: number;
  preemptions: number;
  jobsSuspended: number;
  suspendedCpuHours: number;
  activeViews: number;
  violations: string[];
}
interface Summary {
  badLines: number;
  results: Result[];
}

const DATA =
  process.env.MAGRATHEA_DATA ??
  [path.resolve(ROOT, '../shared/data'), '/work/shared/data'].find((d) => fs.existsSync(d)) ??
  path.resolve(ROOT, '../shared/data');
const hasData = fs.existsSync(path.join(DATA, 'sdsc-blue-2000'));
if (!hasData) process.stdout.write(`trace replay tests skipped: ${DATA} is missing\n`);
const maybe = hasData ? describe : describe.skip;

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bench/sim/cli.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}

async function replayCli(args: string[]): Promise<{ code: number | null; out: Summary | null; err: string }> {
  const r = await run(['--json', ...args]);
  return { ...r, out: r.out.trim() ? (JSON.parse(r.out) as Summary) : null };
}

describe('the replay CLI', () => {
  test('--help says how to use it; bad usage is exit 2 with a reason and nothing run', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^usage: node bench\/sim\/cli\.js \(--log NAME \| --swf FILE --machines FILE\)/);
    for (const o of ['--machines FILE', '--priority-queues LIST', '--policy P', '--jobs N', '--json'])
      expect(help.out).toContain(o);
    const cases: [string[], RegExp][] = [
      [['--bogus'], /Unknown option '--bogus'/],
      [['--swf', 'x.swf'], /give --log NAME, or --swf FILE with --machines FILE/],
      [['--log', 'nope'], /unknown log "nope"/],
      [['--log', 'sdsc-blue', '--policy', 'fifo'], /unknown policy "fifo"/],
      [['--log', 'sdsc-blue', '--policy', 'partial,fifo'], /unknown policy "fifo"/],
      [['--log', 'sdsc-blue', '--policy', 'partial,partial'], /repeated policy "partial"/],
      [['--log', 'sdsc-blue', '--jobs=-3'], /--jobs must be a whole number, got "-3"/],
      [['--log', 'sdsc-blue', '--jobs', '-3'], /Option '--jobs' argument is ambiguous/],
      [['--log', 'sdsc-blue', '--priority-queues', 'a;b'], /"a;b" is not a queue number or name/],
    ];
    for (const [args, msg] of cases) {
      const r = await run(args);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
      expect(r.out).toBe('');
    }
  });

  test('any SWF log with an Alea machine table: extra fields, names for users and queues, priority queues by name', async () => {
    const dir = tmpDir('mg-swf-any-');
    try {
      const machines = path.join(dir, 'site.machines');
      fs.writeFileSync(
        machines,
        '# id name nodes cpus speed\n0 alpha 2 4 1000\n1 beta 1 8 2000 more fields\n2 gamma x 4\n',
      );
      const swf = path.join(dir, 'other-tool.swf');
      const job = (id: number, t: number, procs: number, user: string, queue: string, extra = '') =>
        `${id} ${t} 0 20 ${procs} -1 -1 ${procs} -1 -1 1 ${user} staff ./app ${queue} -1 -1 -1${extra}`;
      fs.writeFileSync(
        swf,
        [
          '; Queue: 1 batch',
          '; Queue: 2 interactive',
          job(1, 0, 2, 'alice', '1', ' 17.5 extra'),
          job(2, 5, 4, 'bob', '2'),
          job(3, 7, 1, 'carol', 'fast'),
          job(4, 9, 1, 'dave', '1').replace(' 20 ', ' abc '),
          job(5, 9, 1, 'erin', '1').replace(/ -1$/, ''),
          '',
        ].join('\n'),
      );
      const r = await replayCli(['--swf', swf, '--machines', machines, '--priority-queues', 'interactive,fast']);
      expect(r.err).toContain('site.machines line 4: bad node count "x"');
      expect(r.err).toContain('other-tool.swf: line 6: field 4 is not a number: "abc"');
      expect(r.err).toContain('other-tool.swf: line 7: expected at least 18 fields, found 17');
      expect(r.code).toBe(0);
      expect(r.out).toMatchObject({ badLines: 2, machine: { nodes: 3, cpus: 16 } });
      expect(r.out!.results[0]).toMatchObject({ policy: 'magrathea', jobs: 3, started: 3, priorityJobs: 2 });
      expect(r.out!.results[0]!.violations).toEqual([]);

      const table = await run(['--swf', swf, '--machines', machines]);
      expect(table.code).toBe(0);
      expect(table.err).toContain('no --priority-queues given: every job is batch (normal) work');
      expect(table.out).toMatch(/^\| policy \| jobs \| chunk starts \|/m);
      expect(table.out).toMatch(/^\| magrathea \| 3 \| 3 \|/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

maybe('trace replay through real daemons and the real filter', () => {
  test('SDSC Blue, 400 jobs, every policy: each job started and ended once, no two domains active (partial: running CPUs within the node), preemption only under magrathea and partial', async () => {
    const r = await replayCli(['--log', 'sdsc-blue', '--jobs', '400', '--policy', 'all']);
    expect(r.err).not.toMatch(/failed/);
    expect(r.code).toBe(0);
    const by = Object.fromEntries(r.out!.results.map((x) => [x.policy, x]));
    for (const x of r.out!.results) {
      expect(x.violations).toEqual([]);
      expect(x.activeViews).toBeGreaterThan(100); // the exclusivity check saw real running states
      expect(x.started + x.unplaceable).toBe(x.jobs);
    }
    expect(by.magrathea!.unplaceable).toBe(0);
    expect(by.magrathea!.priorityJobs).toBeGreaterThan(50);
    expect(by.magrathea!.preemptions).toBeGreaterThan(0);
    expect(by.static!.preemptions).toBe(0);
    expect(by.nopriority!.preemptions).toBe(0);
    // Partial preemption: the daemons name the jobs they suspend, and every one comes back (each job ended once).
    expect(by.partial!.unplaceable).toBe(0);
    expect(by.partial!.preemptions).toBeGreaterThan(0);
    expect(by.partial!.jobsSuspended).toBeGreaterThanOrEqual(by.partial!.preemptions);
    expect(by.partial!.suspendedCpuHours).toBeGreaterThan(0);
    expect(by.magrathea!.jobsSuspended).toBeGreaterThanOrEqual(by.magrathea!.preemptions);
  }, 400_000);

  test('MetaCentrum 2009, 600 jobs around the q5/q10 arrivals: accounting holds', async () => {
    const r = await replayCli(['--log', 'metacentrum', '--from', '40000', '--jobs', '600']);
    expect(r.code).toBe(0);
    const x = r.out!.results[0]!;
    expect(x.violations).toEqual([]);
    expect(x.started).toBe(x.jobs);
    expect(x.priorityJobs).toBeGreaterThan(0);
  }, 400_000);

  test('bad input: bad lines are reported with their numbers and the replay goes on; a missing file is a clear error', async () => {
    const dir = tmpDir('mg-swf-');
    const f = path.join(dir, 'bad.swf');
    const ok = (id: number, t: number, procs: number, queue: number) =>
      `${id} ${t} 5 100 ${procs} -1 -1 -1 -1 -1 1 1 -1 -1 ${queue} -1 -1 -1`;
    fs.writeFileSync(
      f,
      [
        '; a header comment',
        ok(1, 0, 8, 3),
        '2 10 5 100 8 -1 -1 -1 -1 -1 1 1 -1 -1 3 -1 -1',
        ok(3, 20, 8, 0).replace(' 100 ', ' abc '),
        ok(4, 30, 5000, 3),
        ok(5, 40, 16, 0),
        '',
      ].join('\n'),
    );
    const r = await replayCli(['--log', 'sdsc-blue', '--swf', f]);
    expect(r.code).toBe(0);
    expect(r.err).toContain('bad.swf: line 3: expected at least 18 fields, found 17');
    expect(r.err).toContain('bad.swf: line 4: field 4 is not a number: "abc"');
    expect(r.err).toContain('bad.swf: line 5: job 4 asks for 5000 CPUs; the machine can give at most 1152');
    expect(r.out!.badLines).toBe(3);
    expect(r.out!.results[0]!.started).toBe(2);

    const missing = await replayCli(['--log', 'sdsc-blue', '--swf', path.join(dir, 'nope.swf')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/nope\.swf: cannot read \(ENOENT\)/);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 200_000);
});
