/**
 * LifecycleDisks on a real directory (plain files stand for the qcow2 overlays): the golden copy
 * and its stamp, a renew that keeps a failed job's overlay once (a repeat after a crash keeps the
 * first), the oldest kept removed beyond keepFailed, and nothing kept where keepFailed is 0.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LifecycleDisks } from '../../src/images/lifecycle-disks';

describe('LifecycleDisks', () => {
  let dir: string;
  let now: number;
  let ld: LifecycleDisks;
  const overlay = (dom: string) => path.join(dir, dom, 'root.qcow2');
  const write = (dom: string, text: string) => fs.writeFileSync(overlay(dom), text);
  const read = (f: string) => fs.readFileSync(f, 'utf8');

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-ld-'));
    for (const d of ['a', 'z']) fs.mkdirSync(path.join(dir, d));
    now = 1_700_000_000_000;
    ld = new LifecycleDisks({ overlayOf: overlay }, { a: 2 }, () => now);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('golden: copied with its stamp; a new overlay is the golden copy; dropped with its stamp', async () => {
    write('a', 'booted');
    expect(ld.hasGolden('a', 's1')).toBe(false);
    await ld.captureGolden('a', 's1');
    expect([ld.hasGolden('a', 's1'), ld.hasGolden('a', 's2')]).toEqual([true, false]);
    write('a', 'booted+job');
    expect(await ld.renew('a', '', true)).toBe(false);
    expect(read(overlay('a'))).toBe('booted');
    await ld.dropGolden('a');
    expect(ld.hasGolden('a', 's1')).toBe(false);
    expect(await ld.renew('a', '', false)).toBe(false);
    expect(fs.existsSync(overlay('a'))).toBe(false);
  });

  test('failed jobs: kept once, oldest removed first beyond the limit, listed oldest first', async () => {
    for (const job of ['f1', 'f2', 'f3']) {
      write('a', `disk of ${job}`);
      now += 1000;
      expect(await ld.renew('a', job, false)).toBe(true);
    }
    expect(ld.keptOf('a').map((k) => [k.jobId, read(k.file)])).toEqual([
      ['f2', 'disk of f2'],
      ['f3', 'disk of f3'],
    ]);
    // The same reset run again after a crash (a fresh overlay now): the kept one stays the job's.
    write('a', 'a later overlay');
    expect(await ld.renew('a', 'f3', false)).toBe(true);
    expect(read(ld.keptOf('a')[1]!.file)).toBe('disk of f3');
    expect(fs.existsSync(overlay('a'))).toBe(false);
  });

  test('keepFailed 0 (or a job id that is no file name) keeps nothing', async () => {
    write('z', 'x');
    expect(await ld.renew('z', 'f1', false)).toBe(false);
    expect(ld.keptOf('z')).toEqual([]);
    write('a', 'x');
    expect(await ld.renew('a', '../escape', false)).toBe(false);
    expect(ld.keptOf('a')).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'escape.qcow2'))).toBe(false);
  });
});
