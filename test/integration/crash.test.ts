/**
 * kill -9 at random points during random commands (with real journals on disk): after every
 * restart the invariants hold, every acknowledged job is still there, and the daemon's state is
 * exactly what an independent replay of the journal gives.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import type { NodeMessage, NodeServiceClient } from '@magrathea/common';
import { checkInvariants, FileJournal, transition } from '@magrathea/node-daemon';
import type { NodeState } from '@magrathea/node-daemon';
import { getNode, nodeClient, spawnDaemon, tmpDir, unary } from '../helpers/processes';

const CONFIG = `
domains:
  - { name: meta, class: normal }
  - { name: egee, class: normal }
  - { name: priv, class: priority }
driver:
  kind: simulated
  simulated: { latencyMs: { boot: 5, preempt: 2, resume: 2, grow: 1, shrink: 1 } }
snapshotEvery: 25
`;

/** Replays the journal on disk exactly as the daemon will, without starting it. */
function replayOnDisk(stateDir: string): NodeState {
  const rec = new FileJournal(stateDir).open();
  let s = rec.snapshot!.state;
  for (const { cmd } of rec.commits) {
    const r = transition(s, cmd);
    if (!r.ok) throw new Error(`journal record no longer applies: ${r.message}`);
    s = r.next;
  }
  return s;
}

function viewInvariants(n: NodeMessage): string[] {
  const errs: string[] = [];
  const holders = n.domains.filter((d) => d.stored_state === 'running' || d.stored_state === 'running-preemptible');
  if (holders.length > 1) errs.push(`several holders: ${holders.map((d) => d.name).join(',')}`);
  const prioRuns = n.domains.some((d) => d.domain_class === 'priority' && d.stored_state === 'running');
  if (n.domains.some((d) => d.stored_state === 'preempted') && !prioRuns)
    errs.push('preempted without a running priority domain');
  return errs;
}

type Op =
  | { kind: 'start'; domain: string; job: string; preemptible: boolean }
  | { kind: 'end'; domain: string | null; job: string }
  | { kind: 'action'; domain: string; action: string };

const DEFINITE = new Set([grpc.status.FAILED_PRECONDITION, grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT]);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('start' as const),
      domain: fc.constantFrom('meta', 'egee', 'priv'),
      job: fc.integer({ min: 0, max: 15 }).map((i) => `${i}.pbs`),
      preemptible: fc.boolean(),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('end' as const),
      domain: fc.constant(null),
      job: fc.integer({ min: 0, max: 15 }).map((i) => `${i}.pbs`),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('action' as const),
      domain: fc.constantFrom('meta', 'egee', 'priv'),
      action: fc.constantFrom('offline', 'online', 'down', 'boot', 'freeze', 'defrost'),
    }),
  },
);

describe('crash safety (kill -9 during random commands)', () => {
  test('1,000+ random commands with kill -9 at 25 random points lose no acknowledged job', async () => {
    const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100000);
    // Reproduce a failure with CRASH_SEED=<seed>.
    process.stdout.write(`crash test seed ${seed}\n`);
    // 25 rounds of 40–59 commands each: at least 1,000 commands, a kill -9 after each round's cut point.
    const rounds = 25;
    const perRound = 60;
    const ops = fc.sample(opArb, { numRuns: perRound * rounds, seed });
    const cutPoints = fc.sample(fc.integer({ min: 40, max: 59 }), { numRuns: rounds, seed: seed + 1 });
    let executed = 0;
    const dir = tmpDir('mg-crash-');
    const state = path.join(dir, 'state');
    const acked = new Map<string, string>(); // job → domain, acknowledged and not ended
    let lastAckedGeneration = 0;
    let totalAcked = 0;
    let kills = 0;

    for (let round = 0; round < rounds; round++) {
      const d = await spawnDaemon({ stateDir: state, config: CONFIG });
      const c: NodeServiceClient = nodeClient(d.admin);
      // After a restart: the daemon holds exactly the acknowledged jobs (in-doubt ones were settled below).
      const n0 = await getNode(c);
      expect(viewInvariants(n0)).toEqual([]);
      expect(Number(n0.generation)).toBeGreaterThanOrEqual(lastAckedGeneration);
      const present = new Map(n0.domains.flatMap((x) => x.jobs.map((j) => [j.id, x.name] as const)));
      for (const [job, dom] of acked) expect([job, present.get(job)]).toEqual([job, dom]);

      const inFlight = new Set<Promise<unknown>>();
      const inDoubt = new Set<string>();
      const perJob = new Map<string, Promise<unknown>>();
      const mine = ops.slice(round * perRound, round * perRound + perRound);
      const cut = cutPoints[round]!;
      for (let i = 0; i < mine.length; i++) {
        const op = mine[i]!;
        if (i === cut) break;
        executed++;
        const track = (job: string, p: Promise<unknown>) => {
          inDoubt.add(job);
          const q = p.then(
            () => inDoubt.delete(job),
            (err: grpc.ServiceError) => {
              // Only a definitive refusal proves nothing was committed; a call cut off by the
              // kill may have been committed before its answer was lost: it stays in doubt.
              if (DEFINITE.has(err.code)) inDoubt.delete(job);
            },
          );
          perJob.set(job, q);
          inFlight.add(q);
          void q.finally(() => inFlight.delete(q));
        };
        // One command per job id at a time, so the test's model of what was acknowledged is exact.
        if (op.kind !== 'action') await perJob.get(op.job);
        if (op.kind === 'start') {
          track(
            op.job,
            unary<object, { generation: string }>(c, c.StartJob, {
              domain: op.domain,
              job_id: op.job,
              preemptible: op.preemptible,
            }).then((r) => {
              acked.set(op.job, op.domain);
              totalAcked++;
              lastAckedGeneration = Math.max(lastAckedGeneration, Number(r.generation));
            }),
          );
        } else if (op.kind === 'end') {
          const dom = acked.get(op.job) ?? 'meta';
          track(
            op.job,
            unary<object, { generation: string; warning: string }>(c, c.EndJob, { domain: dom, job_id: op.job }).then(
              (r) => {
                if (!r.warning) acked.delete(op.job);
                lastAckedGeneration = Math.max(lastAckedGeneration, Number(r.generation));
              },
            ),
          );
        } else {
          inFlight.add(
            unary(c, c.DomainAction, { domain: op.domain, action: op.action, reason: 'crash test' }).catch(
              (e: grpc.ServiceError) => e,
            ),
          );
        }
        // Keep up to four commands in flight, so the kill lands in the middle of some.
        if (inFlight.size >= 4) await Promise.race(inFlight);
      }
      await d.kill9();
      kills++;
      c.close();
      await Promise.allSettled([...inFlight]);

      // The journal on disk replays to a state that satisfies the invariants and holds every acknowledged job.
      const replayed = replayOnDisk(state);
      expect(checkInvariants(replayed)).toEqual([]);
      const onDisk = new Map(replayed.domains.flatMap((x) => x.jobs.map((j) => [j.id, x.name] as const)));
      for (const [job, dom] of acked) {
        if (!inDoubt.has(job)) expect([job, onDisk.get(job)]).toEqual([job, dom]);
      }
      // Settle the in-doubt commands from what was actually committed.
      for (const job of inDoubt) {
        const dom = onDisk.get(job);
        if (dom) acked.set(job, dom);
        else acked.delete(job);
      }

      // The restarted daemon reports exactly the replayed state.
      const d2 = await spawnDaemon({ stateDir: state, config: CONFIG });
      const c2 = nodeClient(d2.admin);
      // The daemon recovered exactly that generation (it may commit right after, e.g. relaunching
      // an interrupted boot), and holds exactly those jobs.
      const recovered = d2.logs.find((l) => l.msg === 'state recovered');
      expect(recovered?.generation).toBe(replayed.generation);
      const n = await getNode(c2);
      expect(n.domains.map((x) => [x.name, x.jobs.map((j) => j.id)])).toEqual(
        replayed.domains.map((x) => [x.name, x.jobs.map((j) => j.id)]),
      );
      c2.close();
      await d2.stop();
    }
    expect(kills).toBe(rounds);
    expect(executed).toBeGreaterThanOrEqual(1000);
    process.stdout.write(`crash test: ${executed} commands, ${kills} kill -9, ${totalAcked} acknowledged starts\n`);
    expect(totalAcked).toBeGreaterThan(10);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 300_000);
});
