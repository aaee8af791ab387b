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
