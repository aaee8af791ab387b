/**
 * Fault suite, classes 5–8: a full disk (a real tmpfs filled to the last page), two daemons on one
 * state directory, a state directory deleted or replaced under a running daemon, and journals with
 * records missing. Every acknowledged job is checked after a restart.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NodeMessage, NodeServiceClient } from '@magrathea/common';
import {
  DAEMON_BIN,
  getNode,
  nodeClient,
  runToExit,
  spawnDaemon,
  statesOf,
  tmpDir,
  unary,
  until,
} from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';
import { healthOf, record, tmpfs, waitFor } from './helpers';

const CONFIG =
  'domains: [{ name: meta }, { name: priv, class: priority }]\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n';

type Answer = { ok: true } | { ok: false; code: grpc.status; reason: string; details: string };

const answer = (p: Promise<unknown>): Promise<Answer> =>
  p.then(
    () => ({ ok: true as const }),
    (e: grpc.ServiceError) => ({
      ok: false as const,
      code: e.code,
      reason: String(e.metadata?.get('magrathea-reason')[0] ?? ''),
      details: e.details,
    }),
  );

const jobsOf = (n: NodeMessage, domain = 'meta'): string[] =>
  (n.domains.find((d) => d.name === domain)?.jobs ?? []).map((j) => j.id).sort();

async function booted(c: NodeServiceClient): Promise<void> {
  await waitFor(
    async () => ['free', 'running-preemptible'].includes(statesOf(await getNode(c)).meta ?? ''),
    'domains booted',
  );
}

/** Writes to `file` until the file system is full, to its last byte. */
function fill(file: string): void {
  const fd = fs.openSync(file, 'a');
  try {
    for (const size of [1 << 16, 4096, 1]) {
      const buf = Buffer.alloc(size, 0x61);
      for (;;) {
        try {
          if (fs.writeSync(fd, buf) < size) break;
        } catch {
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

test('class 5: on a full disk starts are refused with a reason, nothing acknowledged is lost, the daemon restarts', async () => {
  const t = tmpfs('1m');
  const state = path.join(t.dir, 'state');
  const filler = path.join(t.dir, 'filler');
  const opts = { stateDir: state, config: `${CONFIG}snapshotEvery: 16\n`, socket: path.join(t.dir, 'd.sock') };
  let d: DaemonProcess | null = null;
  let c: NodeServiceClient | null = null;
  try {
    d = await spawnDaemon(opts);
    c = nodeClient(d.admin);
    await booted(c);
    const acked = new Set<string>();
    const unexpected: Answer[] = [];
    let refused = 0;
    let tried = 0;
    // Long ids: records and snapshots span pages, so a full disk cuts writes short.
    const id = (i: number) => `${i}.${'j'.repeat(200)}`;
    const cl = c;
    const start = async (i: number) => {
      tried++;
      const a = await answer(unary(cl, cl.StartJob, { domain: 'meta', job_id: id(i), preemptible: true }));
      if (a.ok) acked.add(id(i));
      else if (a.code === grpc.status.FAILED_PRECONDITION && a.reason === 'storage-failed') refused++;
      else unexpected.push(a);
    };
    const end = async (job: string) => {
      tried++;
      const a = await answer(unary(cl, cl.EndJob, { domain: 'meta', job_id: job }));
      if (a.ok) acked.delete(job);
      else if (a.code === grpc.status.FAILED_PRECONDITION && a.reason === 'storage-failed') refused++;
      else unexpected.push(a);
    };
    for (let i = 0; i < 30; i++) await start(i);
    fill(filler);
    // Full, then a page or three freed at a time: writes and snapshots cut short at page boundaries.
    let next = 30;
    for (let round = 0; round < 16; round++) {
      for (let k = 0; k < 12; k++) {
        if (k % 3 === 2 && acked.size > 0) await end([...acked][0]!);
        else await start(next++);
      }
      // Every other round one page comes free (a record, or part of a snapshot, fits), then it is filled again.
      if (round % 2 === 0) fs.truncateSync(filler, Math.max(0, fs.statSync(filler).size - 4096));
      else fill(filler);
    }
    expect(unexpected).toEqual([]);
    expect(refused).toBeGreaterThan(0);
    expect(jobsOf(await getNode(cl))).toEqual([...acked].sort());
    // kill -9 on the full disk, then the space comes back: the restarted daemon has every acknowledged job.
    c.close();
    c = null;
    await d.kill9();
    d = null;
    fs.rmSync(filler);
    d = await spawnDaemon(opts);
    c = nodeClient(d.admin);
    expect(jobsOf(await getNode(c))).toEqual([...acked].sort());
    const c2 = c;
    for (let i = 0; i < 5; i++)
      expect(await answer(unary(c2, c2.StartJob, { domain: 'meta', job_id: id(next++), preemptible: true }))).toEqual({
        ok: true,
      });
    record('5 full disk', { inputs: tried, faults: refused, acked: acked.size, lost: 0, crashes: 0 });
  } finally {
    c?.close();
    await d?.stop();
    t.unmount();
  }
}, 60_000);

test('class 5: a full disk at the first start is exit 74 and leaves nothing behind that stops the next start', async () => {
  const t = tmpfs('256k');
  const state = path.join(t.dir, 'state');
  const filler = path.join(t.dir, 'filler');
  try {
    fs.mkdirSync(state, { mode: 0o700 });
    const fd = fs.openSync(filler, 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(4096, 1));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    const r = await runToExit(
      [DAEMON_BIN, '--state-dir', state, '--listen', '127.0.0.1:0', '--socket', path.join(t.dir, 'd.sock')],
      8000,
    );
    expect([r.code, r.stderr]).toEqual([74, expect.stringMatching(/ENOSPC/)]);
    fs.rmSync(filler);
    const d = await spawnDaemon({ stateDir: state, config: CONFIG, socket: path.join(t.dir, 'd.sock') });
    const c = nodeClient(d.admin);
    try {
      await booted(c);
    } finally {
      c.close();
      await d.stop();
    }
  } finally {
    t.unmount();
  }
}, 40_000);

test('class 6: a second daemon on the same state directory, or on the same socket, is refused; the first keeps serving', async () => {
  const dir = tmpDir('mg-fault-two-');
  const state = path.join(dir, 'state');
  const a = await spawnDaemon({ stateDir: state, config: CONFIG, socket: path.join(dir, 'a.sock') });
  const c = nodeClient(a.admin);
  try {
    await booted(c);
    await unary(c, c.StartJob, { domain: 'meta', job_id: '1.first', preemptible: true });
    const second = (stateDir: string, sock: string) =>
      runToExit([DAEMON_BIN, '--state-dir', stateDir, '--listen', '127.0.0.1:0', '--socket', sock], 8000);
    let r = await second(state, path.join(dir, 'b.sock'));
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/another magrathead is running on the state directory/);
    r = await second(path.join(dir, 'other'), path.join(dir, 'a.sock'));
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/another process answers on .*a\.sock/);
    // Nor with its lock.id deleted (the abstract socket then has another name) ...
    fs.rmSync(path.join(state, 'lock.id'));
    r = await second(state, path.join(dir, 'b.sock'));
    expect([r.code, r.stderr]).toEqual([75, expect.stringMatching(/another magrathead is running on the state/)]);
    // ... nor from another network namespace (abstract sockets are per namespace).
    const other = spawnSync(
      'unshare',
      [
        '-n',
        process.execPath,
        DAEMON_BIN,
        '--state-dir',
        state,
        '--listen',
        '127.0.0.1:0',
        '--socket',
        path.join(dir, 'c.sock'),
      ],
      { encoding: 'utf8', timeout: 8000 },
    );
    expect([other.status, other.stderr]).toEqual([
      75,
      expect.stringMatching(/another magrathead is running on the state/),
    ]);
    // The first one still answers on its socket.
    await unary(c, c.StartJob, { domain: 'meta', job_id: '2.first', preemptible: true });
    c.close();
    // kill -9 leaves no stale lock: it restarts at once (even with an empty lock.id, as a full disk
    // or a kill -9 while an older version wrote it could leave).
    await a.kill9();
    fs.writeFileSync(path.join(state, 'lock.id'), '');
    const a2 = await spawnDaemon({ stateDir: state, config: CONFIG, socket: path.join(dir, 'a.sock') });
    const c2 = nodeClient(a2.admin);
    expect(jobsOf(await getNode(c2))).toEqual(['1.first', '2.first']);
    c2.close();
    await a2.stop();
    record('6 two daemons', { inputs: 2, faults: 1, acked: 2, lost: 0, crashes: 0 });
  } finally {
    c.close();
    await a.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);

test('class 7: a state directory replaced or deleted under the daemon is noticed: commands refused, health NOT_SERVING', async () => {
  const dir = tmpDir('mg-fault-lost-');
  const state = path.join(dir, 'state');
  const opts = { stateDir: state, config: CONFIG, socket: path.join(dir, 'd.sock') };
  let d = await spawnDaemon(opts);
  let c = nodeClient(d.admin);
  try {
    await booted(c);
    const start = (job: string) => answer(unary(c, c.StartJob, { domain: 'meta', job_id: job, preemptible: true }));
    expect(await start('1.s')).toEqual({ ok: true });
    // Replaced: moved away, an empty directory in its place.
    fs.renameSync(state, `${state}.moved`);
    fs.mkdirSync(state, { mode: 0o700 });
    const r = await start('2.s');
    expect(r).toMatchObject({ ok: false, code: grpc.status.FAILED_PRECONDITION, reason: 'state-dir-lost' });
    expect((r as { details: string }).details).toMatch(/was replaced by another directory/);
    expect(await healthOf(d.addr)).toBe('NOT_SERVING');
    expect(jobsOf(await getNode(c))).toEqual(['1.s']);
    // Put back: accepted again.
    fs.rmdirSync(state);
    fs.renameSync(`${state}.moved`, state);
    expect(await start('3.s')).toEqual({ ok: true });
    expect(await healthOf(d.addr)).toBe('SERVING');
    c.close();
    await d.stop();
    d = await spawnDaemon(opts);
    c = nodeClient(d.admin);
    expect(jobsOf(await getNode(c))).toEqual(['1.s', '3.s']);
    // Deleted: refused, and the jobs in memory are logged whole.
    fs.rmSync(state, { recursive: true, force: true });
    expect(await start('4.s')).toMatchObject({ ok: false, reason: 'state-dir-lost' });
    // The log line is read from the daemon's output as it comes: on a loaded machine it may follow the answer.
    const lostLine = () =>
      d.logs.find((l) => l.msg === 'state directory lost: refusing every command until it is back (see the runbook)');
    await until(() => lostLine() !== undefined, 'the state-directory-lost log line');
    expect(JSON.stringify(lostLine()?.jobs)).toContain('3.s');
    expect(await healthOf(d.addr)).toBe('NOT_SERVING');
    record('7 state directory lost', { inputs: 4, faults: 2, acked: 2, lost: 0, crashes: 0 });
  } finally {
    c.close();
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);

test('class 8: a journal with records missing (a hole, an old snapshot beside a newer journal) is refused with the way out', async () => {
  const dir = tmpDir('mg-fault-gap-');
  const state = path.join(dir, 'state');
  const file = (n: string) => path.join(state, n);
  const run = async (every: number, jobs: string[]) => {
    const d = await spawnDaemon({
      stateDir: state,
      config: `${CONFIG}snapshotEvery: ${every}\n`,
      socket: path.join(dir, 'd.sock'),
    });
    const c = nodeClient(d.admin);
    try {
      await booted(c);
      for (const j of jobs) await unary(c, c.StartJob, { domain: 'meta', job_id: j, preemptible: true });
    } finally {
      c.close();
      await d.stop();
    }
  };
  const start = () =>
    runToExit(
      [DAEMON_BIN, '--state-dir', state, '--listen', '127.0.0.1:0', '--socket', path.join(dir, 'd.sock')],
      8000,
    );
  try {
    await run(3, ['1.s', '2.s', '3.s']);
    const backup = fs.readFileSync(file('snapshot.json'));
    await run(4, ['4.s', '5.s', '6.s', '7.s', '8.s', '9.s', '10.s']);
    const snapshot = fs.readFileSync(file('snapshot.json'));
    const journal = fs.readFileSync(file('journal.jsonl'), 'utf8');
    // The runbook's old advice: the snapshot from the backup beside the current journal.
    fs.writeFileSync(file('snapshot.json'), backup);
    let r = await start();
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/snapshot\.json is older .* the commands in between are missing.*journal gap/);
    // A hole inside the journal.
    fs.writeFileSync(file('snapshot.json'), snapshot);
    const lines = journal.split('\n');
    fs.writeFileSync(file('journal.jsonl'), [lines[0], ...lines.slice(2)].join('\n'));
    r = await start();
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/jumps from sequence \d+ to \d+ .* command\(s\) are missing/);
    // The runbook's ways out: cut the journal at the hole (the record the message names) …
    const n = Number(/\(record (\d+)\)/.exec(r.stderr)?.[1]);
    const holed = fs.readFileSync(file('journal.jsonl'), 'utf8').split('\n');
    fs.writeFileSync(file('journal.jsonl'), `${holed.slice(0, n - 1).join('\n')}\n`);
    const cut = await spawnDaemon({ stateDir: state, config: CONFIG, socket: path.join(dir, 'd.sock') });
    await cut.stop();
    // … or start from the snapshot alone.
    fs.renameSync(file('journal.jsonl'), file('journal.jsonl.gap'));
    const alone = await spawnDaemon({ stateDir: state, config: CONFIG, socket: path.join(dir, 'd.sock') });
    await alone.stop();
    // Intact again: it starts with every job.
    fs.writeFileSync(file('snapshot.json'), snapshot);
    fs.writeFileSync(file('journal.jsonl'), journal);
    const d = await spawnDaemon({ stateDir: state, config: CONFIG, socket: path.join(dir, 'd.sock') });
    const c = nodeClient(d.admin);
    expect(jobsOf(await getNode(c)).length).toBe(10);
    c.close();
    await d.stop();
    record('8 journal gaps', { inputs: 2, faults: 2, acked: 10, lost: 0, crashes: 0 });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);
