/**
 * `magrathea pbs recreate-vnode V`: deletes a vnode and creates it again as it was — the only way
 * out of a `maintenance` state that OpenPBS 23.06 keeps after a pbs_server restart (its database
 * never drops an emptied maintenance_jobs, and nothing but an admin-resume of a listed job clears
 * the state). Refused while the vnode runs jobs or holds reservations.
 */
import type { RunQmgr } from './qmgr';

/** Attributes the mom reports (or PBS sets) by itself: re-setting them would pin them as admin values. */
const REPORTED = new Set([
  'state',
  'pcpus',
  'resources_available.arch',
  'resources_available.mem',
  'resources_available.ncpus',
  'resources_available.vnode',
  'resources_available.host',
  'resources_available.magrathea',
  'resources_available.magrathea_state',
  'resources_available.magrathea_rank',
  'resources_available.magrathea_image',
  'resources_available.magrathea_cpus',
  'comment',
]);

export interface VnodeFacts {
  readonly mom: string;
  readonly port: number | null;
  readonly host: string;
  readonly jobs: readonly string[];
  readonly reservations: readonly string[];
}

/** The commands that re-create the vnode, from `qmgr -c "print node V"` and its pbsnodes facts. */
export function recreateCommands(vnode: string, printed: string, facts: VnodeFacts): string[] {
  const create = [
    `Mom=${facts.mom}`,
    ...(facts.port ? [`Port=${facts.port}`] : []),
    `resources_available.host=${facts.host}`,
  ];
  const sets: string[] = [];
  for (const line of printed.split('\n')) {
    const m = /^set node (\S+) (\S+) = (.*)$/.exec(line.trim());
    if (!m || m[1] !== vnode || REPORTED.has(m[2] ?? '')) continue;
    sets.push(`set node ${vnode} ${m[2] ?? ''} = ${m[3] ?? ''}`);
  }
  return [`delete node ${vnode}`, `create node ${vnode} ${create.join(',')}`, ...sets];
}

/** Why the vnode may not be re-created now, or null. */
export function refuseRecreate(facts: VnodeFacts): string | null {
  if (facts.jobs.length > 0) return `it runs job(s) ${facts.jobs.join(', ')}: wait until they end`;
  if (facts.reservations.length > 0) return `it holds reservation(s) ${facts.reservations.join(', ')}`;
  return null;
}

export interface RecreateResult {
  readonly commands: readonly string[];
  readonly ran: boolean;
  readonly error: string;
}

/** Runs the re-creation (one qmgr per command); stops at the first failure and says which. */
export async function recreateVnode(
  run: RunQmgr,
  vnode: string,
  facts: VnodeFacts,
  dryRun: boolean,
): Promise<RecreateResult> {
  const printed = await run(`print node ${vnode}`);
  if (!printed.ok) return { commands: [], ran: false, error: printed.error };
  const commands = recreateCommands(vnode, printed.output, facts);
  if (dryRun) return { commands, ran: false, error: '' };
  for (const c of commands) {
    const r = await run(c);
    if (!r.ok) return { commands, ran: true, error: `${c}: ${r.error}` };
  }
  return { commands, ran: true, error: '' };
}
