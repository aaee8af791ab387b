import type { NodeState } from '../domain';
import { JournalCorruptError } from '../errors';
import type { JournalRecord, Recovered } from './journal';

/** What the operator can do about a gap (docs/runbook.md, "journal gap"). */
const WAY_OUT =
  'restore snapshot.json and journal.jsonl together from the same backup, or accept the loss and start from what is there: see "journal gap" in docs/runbook.md';

/**
 * Splits journal records into committed commands and dangling intents, after a snapshot.
 * Sequence numbers must follow each other without a hole (each command's intent and outcome
 * share one): a missing record means acknowledged commands are missing, and the state rebuilt
 * from what is left would be wrong (jobs gone, ended jobs back, the generation going backwards).
 * Such a journal is refused (JournalCorruptError) instead of replayed.
 */
export function recoverFrom(
  snapshot: { seq: number; state: NodeState } | null,
  records: readonly JournalRecord[],
  where = 'the journal',
): Omit<Recovered, 'tornBytes'> {
  const after = snapshot?.seq ?? 0;
  const commits: Recovered['commits'][number][] = [];
  const open = new Map<number, Recovered['dangling'][number]>();
  let lastSeq = after;
  // The last sequence number seen after the snapshot (the snapshot's own at first).
  let cur = after;
  // The sequence number of the last commit read.
  let committed = -1;
  for (const [i, r] of records.entries()) {
    if (r.t === 'base') {
      if (i !== 0) throw new JournalCorruptError(`${where} has a base record in the middle (record ${i + 1})`);
      if (snapshot === null)
        throw new JournalCorruptError(
          `${where} continues the snapshot at sequence ${r.seq} (generation ${r.generation}), but there is no snapshot: the snapshot was lost; ${WAY_OUT}`,
        );
      if (r.seq > after)
        throw new JournalCorruptError(
          `${where} continues the snapshot at sequence ${r.seq} (generation ${r.generation}), but snapshot.json is older (sequence ${after}, generation ${snapshot.state.generation}): the commands in between are missing (a snapshot restored from a backup beside a newer journal?); ${WAY_OUT}`,
        );
      lastSeq = Math.max(lastSeq, r.seq);
      continue;
    }
    lastSeq = Math.max(lastSeq, r.seq);
    if (r.seq <= after) continue;
    if (r.seq === cur + 1) cur = r.seq;
    else if (r.seq !== cur)
      throw new JournalCorruptError(
        r.seq > cur
          ? `${where} jumps from sequence ${cur} to ${r.seq} (record ${i + 1}): ${r.seq - cur - 1} command(s) are missing; ${WAY_OUT}`
          : `${where} goes back from sequence ${cur} to ${r.seq} (record ${i + 1}); ${WAY_OUT}`,
      );
    // A sequence number has one command: a second intent or outcome after its commit means two
    // writers (two daemons on one state directory), and neither history can be trusted.
    if (r.seq === committed)
      throw new JournalCorruptError(
        `${where} has a second ${r.t} of sequence ${r.seq} after its commit (record ${i + 1}): two daemons wrote this journal at once; ${WAY_OUT}`,
      );
    if (r.t === 'intent') open.set(r.seq, { seq: r.seq, cmd: r.cmd });
    else if (r.t === 'commit') {
      committed = r.seq;
      open.delete(r.seq);
      commits.push({ seq: r.seq, cmd: r.cmd });
    } else open.delete(r.seq);
  }
  return { snapshot, commits, dangling: [...open.values()], lastSeq };
}
