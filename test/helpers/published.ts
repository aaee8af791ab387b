/** The recording PBS commands of the filter tests, and what the recording qmgr was given: its batches, and what PBS holds after them. */
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
/** The recording PBS commands (test/fixtures). */
export const QMGR = path.join(ROOT, 'test/fixtures/fake-qmgr.js');
export const QSIG = path.join(ROOT, 'test/fixtures/fake-qsig.js');
export const QSTAT = path.join(ROOT, 'test/fixtures/fake-qstat.js');
export const PBSNODES = path.join(ROOT, 'test/fixtures/fake-pbsnodes.js');
/** A simulated node with two batch domains and a priority one, booting at once. */
export const DAEMON_CONFIG = `
domains: [{ name: meta }, { name: egee }, { name: priv, class: priority }]
driver: { simulated: { latencyMs: { boot: 0 } } }
`;

export interface Values {
  magrathea: string;
  state: string;
  rank: number;
  comment: string;
}

export function readBatches(log: string): { t: number; lines: string[]; ppid: number }[] {
  if (!fs.existsSync(log)) return [];
  return fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { t: number; lines: string[]; ppid: number });
}

export function parseSet(line: string): [string, Values] | null {
  const m =
    /^set node (\S+) resources_available\.magrathea = (\S+), resources_available\.magrathea_state = (\S+), resources_available\.magrathea_rank = (\S+), comment = "([^"]*)"$/.exec(
      line,
    );
  return m ? [m[1]!, { magrathea: m[2]!, state: m[3]!, rank: Number(m[4]), comment: m[5]! }] : null;
}

/** What PBS holds now: the last value written for each vnode. */
export function published(log: string): Map<string, Values> {
  const m = new Map<string, Values>();
  for (const b of readBatches(log))
    for (const l of b.lines) {
      const p = parseSet(l);
      if (p) m.set(p[0], p[1]);
    }
  return m;
}
