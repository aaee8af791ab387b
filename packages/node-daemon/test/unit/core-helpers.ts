import fc from 'fast-check';
import type { Command, NodeState, TransitionResult } from '../../src/domain';
import { initialNodeState, transition } from '../../src/domain';

export const META = { name: 'meta', class: 'normal' as const };
export const EGEE = { name: 'egee', class: 'normal' as const };
export const PRIV = { name: 'priv', class: 'priority' as const };

/** Applies a command that must be accepted. */
export function apply(s: NodeState, c: Command): NodeState {
  const r = transition(s, c);
  if (!r.ok) throw new Error(`refused ${c.kind} ${c.domain}: ${r.reason} ${r.message}`);
  return r.next;
}

export function bootedNode(domains = [META, EGEE, PRIV], atMs = 1000): NodeState {
  let s = initialNodeState(domains, atMs);
  for (const d of domains) {
    s = apply(s, { kind: 'action', action: 'boot', domain: d.name, reason: '', atMs });
    s = apply(s, { kind: 'boot-complete', domain: d.name, atMs });
  }
  return s;
}

export const start = (domain: string, jobId: string, preemptible = true, atMs = 2000, cpus = 1): Command => ({
  kind: 'start-job',
  domain,
  jobId,
  preemptible,
  cpus,
  expectedGeneration: 0,
  atMs,
});
export const end = (domain: string, jobId: string, atMs = 3000): Command => ({ kind: 'end-job', domain, jobId, atMs });

export function states(s: NodeState): Record<string, string> {
  return Object.fromEntries(s.domains.map((d) => [d.name, d.state]));
}

export function refusal(r: TransitionResult): string {
  return r.ok ? 'accepted' : r.reason;
}

/** Stamps commands with times that grow by the given steps from 1000. */
export function stamp(cmds: [Omit<Command, 'atMs'>, number][]): Command[] {
  let t = 1000;
  return cmds.map(([c, dt]) => {
    t += dt;
    return { ...c, atMs: t } as Command;
  });
}

/**
 * Random commands of the properties over the domains `names`: job starts, boot ends and the
 * boot/down/reboot actions (each test adds its own commands beside these).
 */
export function baseCommandArbs(names: readonly string[]) {
  return [
    fc.record({
      kind: fc.constant('start-job' as const),
      domain: fc.constantFrom(...names),
      jobId: fc.constantFrom('j1', 'j2', 'j3', 'j4'),
      preemptible: fc.boolean(),
      cpus: fc.constant(1),
      expectedGeneration: fc.constant(0),
    }),
    fc.record({ kind: fc.constant('boot-complete' as const), domain: fc.constantFrom(...names) }),
    fc.record({
      kind: fc.constant('boot-failed' as const),
      domain: fc.constantFrom(...names),
      reason: fc.constant('x'),
    }),
    fc.record({
      kind: fc.constant('action' as const),
      domain: fc.constantFrom(...names),
      action: fc.constantFrom('boot' as const, 'down' as const, 'reboot' as const),
      reason: fc.constant(''),
    }),
  ] as const;
}
