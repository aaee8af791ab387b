import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileJournal } from '../../src/journal/file-journal';
import { JournalCorruptError, StateDirError, StateDirLostError, StateDirUnsafeError } from '../../src/errors';
import type { Command } from '../../src/domain';
import { bootedNode } from './core-helpers';

const cmd = (jobId: string): Command => ({ kind: 'end-job', domain: 'meta', jobId, atMs: 1 });

describe('FileJournal', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-journal-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('records survive a reopen; intents without an outcome are reported dangling', () => {
    const j = new FileJournal(dir);
    expect(j.open().commits).toEqual([]);
    j.append({ t: 'intent', seq: 1, cmd: cmd('a') }, true);
    j.append({ t: 'commit', seq: 1, cmd: cmd('a') }, true);
    j.append({ t: 'intent', seq: 2, cmd: cmd('b') }, true);
    j.append({ t: 'abort', seq: 2 }, true);
    j.append({ t: 'intent', seq: 3, cmd: cmd('c') }, true);
    j.close();
    const r = new FileJournal(dir).open();
    expect(r.commits.map((c) => c.seq)).toEqual([1]);
    expect(r.dangling.map((c) => c.seq)).toEqual([3]);
    expect(r.lastSeq).toBe(3);
    expect(r.tornBytes).toBe(0);
  });

  test('a torn last record is cut off and the journal stays appendable', () => {
    const j = new FileJournal(dir);
    j.open();
    j.append({ t: 'commit', seq: 1, cmd: cmd('a') }, true);
    j.close();
    fs.appendFileSync(path.join(dir, 'journal.jsonl'), '1234abcd {"t":"commit","se');
    const j2 = new FileJournal(dir);
    const r = j2.open();
    expect(r.commits.map((c) => c.seq)).toEqual([1]);
    expect(r.tornBytes).toBeGreaterThan(0);
    j2.append({ t: 'commit', seq: 2, cmd: cmd('b') }, true);
    j2.close();
    expect(new FileJournal(dir).open().commits.map((c) => c.seq)).toEqual([1, 2]);
  });

  test('a bad checksum on the last complete line is treated as torn too', () => {
    const j = new FileJournal(dir);
    j.open();
    j.append({ t: 'commit', seq: 1, cmd: cmd('a') }, true);
    j.close();
    fs.appendFileSync(path.join(dir, 'journal.jsonl'), '00000000 {"t":"commit","seq":2}\n');
    expect(new FileJournal(dir).open().commits.map((c) => c.seq)).toEqual([1]);
  });

  test('corruption before the last record stops the start-up with the line number', () => {
    const j = new FileJournal(dir);
    j.open();
    j.append({ t: 'commit', seq: 1, cmd: cmd('a') }, true);
    j.append({ t: 'commit', seq: 2, cmd: cmd('b') }, true);
    j.close();
    const p = path.join(dir, 'journal.jsonl');
    const text = fs.readFileSync(p, 'utf8').replace('"seq":1', '"seq":7');
    fs.writeFileSync(p, text);
    expect(() => new FileJournal(dir).open()).toThrow(JournalCorruptError);
    expect(() => new FileJournal(dir).open()).toThrow(/line 1/);
  });

  test('compaction writes a snapshot and empties the journal; older records are skipped after a crash between the two renames', () => {
    const j = new FileJournal(dir);
    j.open();
    j.append({ t: 'commit', seq: 1, cmd: cmd('a') }, true);
    j.append({ t: 'commit', seq: 2, cmd: cmd('b') }, true);
    const old = fs.readFileSync(path.join(dir, 'journal.jsonl'));
    const state = bootedNode();
    j.compact(state, 2);
    j.append({ t: 'commit', seq: 3, cmd: cmd('c') }, true);
    j.close();
    let r = new FileJournal(dir).open();
    expect(r.snapshot?.seq).toBe(2);
    expect(r.snapshot?.state).toEqual(state);
    expect(r.commits.map((c) => c.seq)).toEqual([3]);
    // Simulate a crash after the snapshot rename but before the journal was replaced.
    fs.writeFileSync(path.join(dir, 'journal.jsonl'), old);
    r = new FileJournal(dir).open();
    expect(r.commits).toEqual([]);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('a corrupt snapshot is reported, not ignored', () => {
    fs.writeFileSync(path.join(dir, 'snapshot.json'), 'garbage');
    expect(() => new FileJournal(dir).open()).toThrow(/snapshot .* is corrupt/);
  });

  test('a state directory that is not writable is a clear error', () => {
    const file = path.join(dir, 'not-a-dir');
    fs.writeFileSync(file, 'x');
    expect(() => new FileJournal(path.join(file, 'state')).open()).toThrow(StateDirError);
  });

  test('the state directory is created with mode 0700 and the journal 0600', () => {
    const sub = path.join(dir, 'new');
    const j = new FileJournal(sub);
    j.open();
    j.close();
    expect(fs.statSync(sub).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(sub, 'journal.jsonl')).mode & 0o777).toBe(0o600);
  });

  test('a hole in the sequence numbers is refused with where it is and the way out', () => {
    const j = new FileJournal(dir);
    j.open();
    for (let i = 1; i <= 5; i++) j.append({ t: 'commit', seq: i, cmd: cmd(`j${i}`) }, true);
    j.close();
    const p = path.join(dir, 'journal.jsonl');
    const lines = fs.readFileSync(p, 'utf8').split('\n');
    fs.writeFileSync(p, [...lines.slice(0, 2), ...lines.slice(4)].join('\n'));
    expect(() => new FileJournal(dir).open()).toThrow(
      /jumps from sequence 2 to 5 \(record 3\): 2 command\(s\) are missing.*journal gap/,
    );
  });

  test('two commits of one sequence number (two daemons wrote the journal) are refused, not both replayed', () => {
    const j = new FileJournal(dir);
    j.open();
    j.append({ t: 'commit', seq: 1, cmd: cmd('j1') }, true);
    j.append({ t: 'intent', seq: 2, cmd: cmd('a2') }, true);
    j.append({ t: 'commit', seq: 2, cmd: cmd('a2') }, true);
    j.append({ t: 'commit', seq: 2, cmd: cmd('b2') }, true);
    j.close();
    expect(() => new FileJournal(dir).open()).toThrow(
      /second commit of sequence 2 after its commit \(record 4\): two daemons wrote this journal at once.*journal gap/,
    );
  });

  test('an old snapshot beside a newer journal (a backup restored) is refused, not replayed with a gap', () => {
    const j = new FileJournal(dir);
    j.open();
    const state = bootedNode();
    j.compact(state, 0);
    const backup = fs.readFileSync(path.join(dir, 'snapshot.json'));
    for (let i = 1; i <= 3; i++) j.append({ t: 'commit', seq: i, cmd: cmd(`j${i}`) }, true);
    j.compact({ ...state, generation: state.generation + 3 }, 3);
    j.append({ t: 'commit', seq: 4, cmd: cmd('j4') }, true);
    j.close();
    fs.writeFileSync(path.join(dir, 'snapshot.json'), backup);
    expect(() => new FileJournal(dir).open()).toThrow(
      /continues the snapshot at sequence 3 .* but snapshot.json is older \(sequence 0/,
    );
    fs.rmSync(path.join(dir, 'snapshot.json'));
    expect(() => new FileJournal(dir).open()).toThrow(/there is no snapshot: the snapshot was lost/);
  });

  test('a state directory (or a parent) writable by other users is refused; so is a planted link', () => {
    const sub = path.join(dir, 'open');
    fs.mkdirSync(sub);
    fs.chmodSync(sub, 0o777);
    expect(() => new FileJournal(sub).open()).toThrow(StateDirUnsafeError);
    expect(() => new FileJournal(sub).open()).toThrow(/writable by other users \(mode 0777\).*chmod 0700/);
    const parent = path.join(dir, 'parent');
    fs.mkdirSync(path.join(parent, 'state'), { recursive: true });
    fs.chmodSync(parent, 0o777);
    expect(() => new FileJournal(path.join(parent, 'state')).open()).toThrow(
      /parent .* writable by other users .* not sticky/,
    );
    fs.chmodSync(parent, 0o1777); // sticky, like /tmp: nobody can replace what is ours in it
    expect(() => new FileJournal(path.join(parent, 'state')).open()).not.toThrow();
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'precious');
    const st = path.join(dir, 'linked');
    fs.mkdirSync(st);
    fs.symlinkSync(victim, path.join(st, 'snapshot.json'));
    expect(() => new FileJournal(st).open()).toThrow(/snapshot.json is a symbolic link/);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
  });

  test('temporary files are created fresh: a link planted where an old daemon put its temp file is never written through', () => {
    const victim = path.join(dir, '..', `victim-${path.basename(dir)}`);
    fs.writeFileSync(victim, 'precious');
    try {
      const j = new FileJournal(dir);
      j.open();
      fs.symlinkSync(victim, path.join(dir, 'snapshot.json.tmp'));
      j.compact(bootedNode(), 0);
      j.close();
      expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
      expect(new FileJournal(dir).open().snapshot?.seq).toBe(0);
    } finally {
      fs.rmSync(victim, { force: true });
    }
  });

  test('a state directory deleted or replaced under the journal makes appends throw, and they work again once it is back', () => {
    const j = new FileJournal(path.join(dir, 'st'));
    j.open();
    j.append({ t: 'commit', seq: 1, cmd: cmd('a') }, true);
    fs.renameSync(path.join(dir, 'st'), path.join(dir, 'moved'));
    expect(() => j.append({ t: 'commit', seq: 2, cmd: cmd('b') }, true)).toThrow(StateDirLostError);
    fs.mkdirSync(path.join(dir, 'st'), { mode: 0o700 });
    expect(() => j.verify()).toThrow(/was replaced by another directory/);
    fs.rmdirSync(path.join(dir, 'st'));
    fs.renameSync(path.join(dir, 'moved'), path.join(dir, 'st'));
    j.append({ t: 'commit', seq: 2, cmd: cmd('b') }, true);
    fs.rmSync(path.join(dir, 'st', 'journal.jsonl'));
    expect(() => j.verify()).toThrow(/lost its journal/);
    j.close();
  });
});
