/** The invariants of ARCHITECTURE §3, as a checker that returns every violation found. */
import type { NodeState } from './types';
import { holdsMachine, isDown, isIdle } from './transition';
import { cpuProblems } from './cpu-counting';
import { draftOf } from './draft';

export function checkInvariants(s: NodeState): string[] {
  const errors: string[] = [];
  const m = s.cpuCounting;
  const holders = s.domains.filter((d) => holdsMachine(d.state));
  // CPU-counting mode: several domains may hold the machine while their jobs fit it.
  if (m) errors.push(...cpuProblems(s.domains.map(draftOf), m));
  else if (holders.length > 1)
    errors.push(`more than one domain holds the machine: ${holders.map((d) => d.name).join(', ')}`);
  const priorityRuns = s.domains.some((d) => d.class === 'priority' && d.state === 'running');
  for (const d of s.domains) {
    if (d.state === 'preempted' && !priorityRuns) errors.push(`${d.name} is preempted but no priority domain runs`);
    if (d.generation > s.generation) errors.push(`${d.name} generation ${d.generation} > node ${s.generation}`);
    if ((isIdle(d.state) || isDown(d.state) || d.state === 'booting' || d.state === 'removed') && d.jobs.length > 0) {
      errors.push(`${d.name} is ${d.state} but has ${d.jobs.length} job(s)`);
    }
    if ((holdsMachine(d.state) || d.state === 'preempted') && d.jobs.length === 0) {
      errors.push(`${d.name} is ${d.state} without jobs`);
    }
    if (d.state === 'running-preemptible' && (d.class !== 'normal' || d.jobs.some((j) => !j.preemptible))) {
      errors.push(`${d.name} is running-preemptible with a non-preemptible job or as a priority domain`);
    }
    if (d.class === 'priority' && d.jobs.some((j) => j.preemptible))
      errors.push(`${d.name} (priority) has a preemptible job`);
    if (d.state === 'preempted' && d.jobs.some((j) => j.suspendedSinceMs === null)) {
      errors.push(`${d.name} is preempted but has a job that is not suspended`);
    }
    const suspended = d.jobs.filter((j) => j.suspendedSinceMs !== null);
    const partly = m !== undefined && m.perJob.includes(d.name) && holdsMachine(d.state);
    if (d.state !== 'preempted' && suspended.length > 0 && !partly) {
      errors.push(`${d.name} is ${d.state} but has a suspended job`);
    }
    if (partly && suspended.some((j) => !j.preemptible))
      errors.push(`${d.name} has a suspended job that is not preemptible`);
    if (partly && d.jobs.length > 0 && suspended.length === d.jobs.length)
      errors.push(`${d.name} is ${d.state} but every job in it is suspended`);
    if (suspended.length > 0 && !priorityRuns) errors.push(`${d.name} has a suspended job but no priority domain runs`);
    if (d.state === 'occupied-would-preempt' && d.class !== 'priority')
      errors.push(`${d.name} is normal but would-preempt`);
  }
  const ids = s.domains.flatMap((d) => d.jobs.map((j) => j.id));
  if (new Set(ids).size !== ids.length) errors.push('a job id appears twice on the node');
  return errors;
}
