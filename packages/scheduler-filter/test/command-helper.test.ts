/** The command helper: a real helper process running the recording qmgr stand-in. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import pino from 'pino';
import { CommandHelper } from '../src/service/command-helper';
import { asCommandRequest, asCommandResponse } from '../src/service/command-protocol';
import { runProcess } from '../src/service/run-process';

const FIXTURES = path.resolve(__dirname, '../../../test/fixtures');
const QMGR = path.join(FIXTURES, 'fake-qmgr.js');

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const until = async (f: () => boolean): Promise<void> => {
  while (!f()) await new Promise((r) => setTimeout(r, 20));
};
/** Children of a process (from /proc). */
const childrenOf = (pid: number): number[] =>
  fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);

function logs(): { logger: pino.Logger; lines: { msg: string }[] } {
  const lines: { msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as { msg: string });
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

let dir: string;
let qlog: string;
let helpers: CommandHelper[];
const helper = (opts: Partial<ConstructorParameters<typeof CommandHelper>[0]> = {}): CommandHelper => {
  // The commands see the helper's environment (jest's process.env is not what children inherit).
  const h = new CommandHelper({
    logger: pino({ level: 'silent' }),
    env: { ...process.env, FAKE_QMGR_LOG: qlog },
    ...opts,
  });
  helpers.push(h);
  return h;
};
const recorded = (): { args: string[]; lines: string[] }[] =>
  fs.existsSync(qlog)
    ? fs
        .readFileSync(qlog, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { args: string[]; lines: string[] })
    : [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-cmdhelper-'));
  qlog = path.join(dir, 'qmgr.log');
  helpers = [];
});
afterEach(async () => {
  for (const h of helpers) await h.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const BATCH = 'set node n1-a resources_available.magrathea = normal, comment = "x"\nset server scheduling = true\n';

describe('CommandHelper', () => {
  test('runs qmgr with the same command line and stdin as a fork from here, from one helper started once', async () => {
    const h = helper();
    expect(h.pid).toBeNull();
    const a = await h.run(QMGR, ['srv1'], BATCH, 5000);
    const pid = h.pid;
    const b = await h.run(QMGR, ['srv1'], BATCH, 5000);
    const direct = await runProcess(QMGR, ['srv1'], BATCH, 5000);
    expect(a).toEqual(direct);
    expect(b).toEqual(direct);
    expect(pid).not.toBeNull();
    expect(pid).not.toBe(process.pid);
    expect(h.pid).toBe(pid);
    expect(h.starts).toBe(1);
    const rec = recorded();
    expect(rec).toHaveLength(2); // the direct fork ran without FAKE_QMGR_LOG
    for (const r of rec) expect(r).toMatchObject({ args: ['srv1'], lines: BATCH.trim().split('\n') });
  });

  test("qmgr's error lines and exit status come back as they were", async () => {
    const h = helper();
    const r = await h.run(QMGR, [], 'set nonsense\n', 5000);
    expect(r.code).toBe(1);
    expect(r.spawnError).toBeNull();
    expect(r.stderr).toMatch(/syntax error in line 1: set nonsense/);
    const missing = await h.run(path.join(dir, 'no-such-qmgr'), [], '', 5000);
    expect(missing.spawnError).toMatch(/ENOENT/);
    expect(recorded()).toHaveLength(0);
  });

  test('commands run side by side; a hung one is killed at its limit and the others are answered', async () => {
    const h = helper();
    fs.writeFileSync(`${qlog}.hang`, '');
    const hung = h.run(QMGR, [], BATCH, 400);
    const other = await h.run(process.execPath, ['-e', 'process.stdout.write("ok")'], '', 5000);
    expect(other).toMatchObject({ code: 0, stdout: 'ok', timedOut: false });
    expect(await hung).toMatchObject({ timedOut: true });
    expect(h.starts).toBe(1);
  });

  test('a helper that dies fails its commands in flight, and the next command starts a new one', async () => {
    const exits: number[] = [];
    const h = helper({ onExit: () => exits.push(1) });
    fs.writeFileSync(`${qlog}.hang`, '');
    const pending = h.run(QMGR, [], BATCH, 60_000);
    await until(() => h.pid !== null && childrenOf(h.pid).length > 0);
    const first = h.pid as number;
    process.kill(first, 'SIGKILL');
    const r = await pending;
    expect(r.spawnError).toMatch(/command helper exited \(SIGKILL\)/);
    expect(r.code).toBeNull();
    expect(exits).toHaveLength(1);
    fs.rmSync(`${qlog}.hang`);
    const again = await h.run(QMGR, [], BATCH, 5000);
    expect(again).toMatchObject({ code: 0, spawnError: null });
    expect(h.pid).not.toBe(first);
    expect(h.starts).toBe(2);
  });

  test('close stops the helper and kills the commands it was running', async () => {
    const h = helper();
    fs.writeFileSync(`${qlog}.hang`, '');
    const pending = h.run(QMGR, [], BATCH, 60_000);
    await until(() => h.pid !== null && childrenOf(h.pid).length > 0);
    const pid = h.pid as number;
    const [qmgr] = childrenOf(pid);
    await h.close();
    expect(alive(pid)).toBe(false);
    await until(() => !alive(qmgr as number));
    expect((await pending).spawnError).toMatch(/exited/);
    expect(await h.run(QMGR, [], BATCH, 5000)).toMatchObject({ spawnError: 'command helper stopped' });
    fs.rmSync(`${qlog}.hang`);
    expect(recorded()).toHaveLength(0);
  });

  test('answers that do not fit are dropped and logged; the silent helper is killed as hung', async () => {
    const { logger, lines } = logs();
    const h = helper({ logger, main: path.join(FIXTURES, 'junk-helper.js'), hangGraceMs: 300 });
    const r = await h.run(QMGR, [], BATCH, 200);
    expect(r).toMatchObject({ timedOut: true, code: null });
    const msgs = lines.map((l) => l.msg);
    expect(msgs.filter((m) => m === 'command helper sent something that is not an answer; dropped')).toHaveLength(3);
    expect(msgs).toContain('command helper did not answer; killing it');
    expect(recorded()).toHaveLength(0);
  });

  test('a helper that cannot start fails the command (no hang)', async () => {
    const h = helper({ main: path.join(dir, 'missing-helper.js') });
    const r = await h.run(QMGR, [], BATCH, 60_000);
    expect(r.spawnError).toMatch(/command helper exited \(code 1\)/);
  });
});

describe('command protocol', () => {
  test('anything that is not a request or an answer is refused, and well-formed ones pass unchanged', () => {
    fc.assert(
      fc.property(fc.anything(), (m) => {
        const req = asCommandRequest(m);
        if (req) expect(asCommandRequest(JSON.parse(JSON.stringify(req)))).toEqual(req);
        const res = asCommandResponse(m);
        if (res) expect(asCommandResponse(JSON.parse(JSON.stringify(res)))).toEqual(res);
      }),
    );
    const request = fc.record({
      id: fc.nat(),
      file: fc.string({ minLength: 1 }),
      args: fc.array(fc.string()),
      stdin: fc.string(),
      timeoutMs: fc.integer({ min: 1, max: 1e9 }),
    });
    fc.assert(fc.property(request, (r) => expect(asCommandRequest(r)).toEqual(r)));
    expect(asCommandRequest({ id: 1, file: 'qmgr', args: [1], stdin: '', timeoutMs: 10 })).toBeNull();
    expect(asCommandRequest({ id: -1, file: 'qmgr', args: [], stdin: '', timeoutMs: 10 })).toBeNull();
    expect(asCommandResponse({ id: 1, result: { code: 0, stdout: 5 } })).toBeNull();
  });
});
