/**
 * `magrathea pbs verify`: an admin's self-test after install. Pure checks over what was read from
 * PBS (qmgr listings, sched_config, the hook tracking file, pbsnodes JSON) and, optionally, from
 * magrathea-filter; the reading is done by the CLI.
 */
import type { Observed } from './installer';
import { editSchedConfig, hookSpecs, planInstall, RESOURCES } from './installer';
import type { SiteConfig } from './site-config';

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skip';

export interface Check {
  readonly check: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

const pass = (check: string, detail = ''): Check => ({ check, status: 'pass', detail });
const fail = (check: string, detail: string): Check => ({ check, status: 'fail', detail });

/** Resources, queue and server defaults and hooks: what install would still change is a failure. */
export function checkServer(site: SiteConfig, obs: Observed): Check[] {
  const out: Check[] = [];
  for (const r of RESOURCES) {
    const cur = obs.resources.get(r.name);
    if (!cur) out.push(fail(`resource ${r.name}`, 'missing'));
    else if (cur.type !== r.type || (cur.flag ?? '') !== r.flag)
      out.push(
        fail(
          `resource ${r.name}`,
          `type=${cur.type ?? '?'}, flag=${cur.flag ?? ''}; needs type=${r.type}, flag=${r.flag}`,
        ),
      );
    else out.push(pass(`resource ${r.name}`, `type=${r.type}, flag=${r.flag}`));
  }
  const plan = planInstall(site, obs);
  for (const p of plan.problems) out.push(fail(p.group, p.message));
  const pending = plan.steps.filter(
    (s) => !s.command.startsWith('import hook ') && !s.command.startsWith('create resource '),
  );
  const groups = new Set([...pending.map((s) => s.group)]);
  for (const g of groups)
    out.push(
      fail(
        g,
        `differs from the site config; install would run: ${pending
          .filter((s) => s.group === g)
          .map((s) => s.command)
          .join('; ')}`,
      ),
    );
  for (const h of hookSpecs(site))
    if (!groups.has(`hook ${h.name}`) && obs.hooks.has(h.name)) {
      const a = obs.hooks.get(h.name) ?? {};
      out.push(
        pass(
          `hook ${h.name}`,
          `enabled, events ${a.event ?? ''}, alarm ${a.alarm ?? '?'}${a.order ? `, order ${a.order}` : ''}${a.fail_action ? `, fail_action ${a.fail_action}` : ''}${a.freq && h.freq !== null ? `, freq ${a.freq}` : ''}`,
        ),
      );
    }
  // A queue can be both a normal queue and an image's: one line each, with every default of ours it holds.
  const queues = new Set([
    site.priorityQueue,
    ...site.extraPriorityQueues,
    ...site.normalQueues,
    ...site.images.flatMap((i) => i.queues),
  ]);
  for (const q of queues)
    if (!groups.has(`queue ${q}`) && obs.queues.has(q)) {
      const a = obs.queues.get(q) ?? {};
      const image = a['default_chunk.magrathea_image'];
      out.push(
        pass(
          `queue ${q}`,
          `default_chunk.magrathea = ${a['default_chunk.magrathea'] ?? '?'}${image !== undefined ? `, default_chunk.magrathea_image = ${image}` : ''}`,
        ),
      );
    }
  if (!groups.has('server')) out.push(pass('server', 'default_chunk.magrathea = normal'));
  return out;
}

export function checkSchedConfig(text: string | null, file: string | null): Check {
  if (text === null)
    return {
      check: 'sched_config',
      status: 'skip',
      detail: file ? `cannot read ${file}` : 'not on the PBS server host (give --sched-config)',
    };
  return editSchedConfig(text) === text
    ? pass(
        'sched_config',
        'resources: lists magrathea, magrathea_image, magrathea_cpus; node_sort_key magrathea_rank first',
      )
    : fail('sched_config', 'lacks the magrathea lines: run magrathea pbs install --sched-config FILE');
}

/**
 * The mom hooks reached every mom: the server's tracking file (`<mom>:<port> <hook> <action> <tid>`,
 * appended, so the last line per mom and hook counts) shows no pending action for them.
 */
export function checkHooksPushed(site: SiteConfig, tracking: string | null): Check {
  const check = 'hooks pushed to the moms';
  if (tracking === null) return { check, status: 'skip', detail: 'the server tracking file is not readable here' };
  const last = new Map<string, number>();
  for (const line of tracking.split('\n')) {
    const m = /^(\S+) (\S+) (\d+) \S+$/.exec(line.trim());
    if (m) last.set(`${m[1] ?? ''} ${m[2] ?? ''}`, Number(m[3]));
  }
  const ours = new Set(hookSpecs(site).map((h) => h.name));
  const pending = [...last].filter(([k, action]) => action !== 0 && ours.has(k.split(' ')[1] ?? ''));
  return pending.length === 0
    ? pass(check)
    : fail(
        check,
        `not yet on: ${pending
          .map(([k]) => k.replace(' ', ' (') + ')')
          .slice(0, 10)
          .join(', ')}${pending.length > 10 ? ', …' : ''}`,
      );
}

/** One vnode from `pbsnodes -av -F json`. */
export interface PbsVnode {
  readonly state: string;
  readonly magrathea: string | null;
  readonly magratheaState: string | null;
  readonly image: string | null;
  readonly comment: string;
}

/** A JSON scalar as text, or null. */
const str = (v: unknown): string | null =>
  typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;

export function parsePbsnodesJson(text: string): Map<string, PbsVnode> {
  const o = JSON.parse(text) as { nodes?: Record<string, Record<string, unknown>> };
  const out = new Map<string, PbsVnode>();
  for (const [name, n] of Object.entries(o.nodes ?? {})) {
    const ra = (n.resources_available ?? {}) as Record<string, unknown>;
    out.set(name, {
      state: str(n.state) ?? '',
      magrathea: str(ra.magrathea),
      magratheaState: str(ra.magrathea_state),
      image: str(ra.magrathea_image),
      comment: str(n.comment) ?? '',
    });
  }
  return out;
}

/** What magrathea-filter says of a vnode. */
export interface FilterVnode {
  readonly node: string;
  readonly reachable: boolean;
  readonly vnode: string;
  readonly magrathea: string;
  readonly state: string;
}

/** Every vnode the filter serves exists in PBS and holds what the filter publishes; every daemon is reachable. */
export function checkVnodes(pbs: ReadonlyMap<string, PbsVnode>, filter: readonly FilterVnode[] | null): Check[] {
  if (filter === null) {
    const ours = [...pbs].filter(([, v]) => v.magrathea !== null);
    return [
      {
        check: 'vnodes',
        status: ours.length > 0 ? 'warn' : 'fail',
        detail: `${ours.length} vnode(s) carry resources_available.magrathea; give --filter ADDR to check them against their daemons`,
      },
    ];
  }
  const out: Check[] = [];
  for (const node of new Set(filter.map((f) => f.node))) {
    const down = filter.filter((f) => f.node === node && !f.reachable);
    out.push(
      down.length > 0
        ? fail(`node ${node}`, 'its magrathead is not reachable from magrathea-filter')
        : pass(`node ${node}`, 'magrathead reachable'),
    );
  }
  for (const f of filter) {
    const v = pbs.get(f.vnode);
    if (!v) out.push(fail(`vnode ${f.vnode}`, 'not a PBS node (create it, or fix the filter config vnodes map)'));
    else if (v.magrathea !== f.magrathea)
      out.push(
        fail(
          `vnode ${f.vnode}`,
          `PBS holds magrathea=${v.magrathea ?? '(unset)'}, magrathea-filter publishes ${f.magrathea}`,
        ),
      );
    else if (v.state.includes('maintenance') && f.state !== 'preempted')
      out.push(fail(`vnode ${f.vnode}`, `in PBS state ${v.state} although the domain is ${f.state}`));
    else out.push(pass(`vnode ${f.vnode}`, `magrathea=${f.magrathea}, ${f.state}`));
  }
  return out;
}
