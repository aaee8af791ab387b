import type { NodeState } from '../domain';
import type { JournalRecord, Recovered } from './journal';

/** Splits journal records into committed commands and dangling intents, after a snapshot. */
export function recoverFrom(
  snapshot: { seq: number; state: NodeState } | null,
  records: readonly JournalRecord[],
): Omit<Recovered, 'tornBytes'> {
  const after = snapshot?.seq ?? 0;
  const commits: Recovered['commits'][number][] = [];
  const open = new Map<number, Recovered['dangling'][number]>();
  let lastSeq = after;
  for (const r of records) {
    lastSeq = Math.max(lastSeq, r.seq);
    if (r.seq <= after) continue;
    if (r.t === 'intent') open.set(r.seq, { seq: r.seq, cmd: r.cmd });
    else if (r.t === 'commit') {
      open.delete(r.seq);
      commits.push({ seq: r.seq, cmd: r.cmd });
    } else open.delete(r.seq);
  }
  return { snapshot, commits, dangling: [...open.values()], lastSeq };
}
