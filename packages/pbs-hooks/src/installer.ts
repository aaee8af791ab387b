/**
 * What deploying Magrathea on a PBS site means, as qmgr steps planned from what the server holds
 * now (so install, re-install and uninstall are each safe to re-run on a live site), plus the
 * sched_config edits. Pure: the steps are run by deploy.ts.
 *
 * Facts from a real OpenPBS 23.06 that shape the plan:
 * - `set hook H freq = N` on a hook that already has a script schedules it as a *server* periodic
 *   hook whatever its events; once such a hook is deleted, pbs_server can spin on the stale task
 *   ("periodic hook is missing information", gigabytes of log). So freq is set only on a hook that
 *   has just been created (no script yet); a changed freq means delete, wait, create.
 * - A deleted mom hook stays "pending delete" until every mom has dropped it; creating one of the
 *   same name meanwhile fails, so a create waits for the name to come free.
 * - A resource referenced by any job (history included) cannot be deleted ("Resource busy on job"):
 *   uninstall keeps it and says so.
 */
import type { SiteConfig } from './site-config';

export const HOOKS = {
  queuejob: 'magrathea_queuejob',
  begin: 'magrathea_begin',
  end: 'magrathea_end',
  periodic: 'magrathea_periodic',
  runjob: 'magrathea_runjob',
} as const;

/** The custom resources, in creation order. */
export const RESOURCES: readonly { readonly name: string; readonly type: string; readonly flag: string }[] = [
  { name: 'magrathea', type: 'string_array', flag: 'h' },
  { name: 'magrathea_state', type: 'string', flag: 'h' },
  { name: 'magrathea_rank', type: 'float', flag: 'h' },
  { name: 'magrathea_image', type: 'string', flag: 'h' },
  // CPU-counting mode: the CPUs a job may take on the vnode now (`select=…:magrathea_cpus=N`).
  { name: 'magrathea_cpus', type: 'long', flag: 'h' },
];

/** What the PBS server holds now (qmgr `list` of each kind): name → attributes. */
export interface Observed {
  readonly resources: ReadonlyMap<string, Readonly<Record<string, string>>>;
  readonly queues: ReadonlyMap<string, Readonly<Record<string, string>>>;
  readonly hooks: ReadonlyMap<string, Readonly<Record<string, string>>>;
  readonly server: Readonly<Record<string, string>>;
}

export const NOTHING_OBSERVED: Observed = { resources: new Map(), queues: new Map(), hooks: new Map(), server: {} };

/** One qmgr command, with what its known failures mean. */
export interface Step {
  /** Steps of one group (a hook, a queue) stop at the first failure: later ones are skipped. */
  readonly group: string;
  readonly command: string;
  /** A failure whose message matches is retried until `waitSeconds` (a hook name pending delete). */
  readonly retryWhile?: RegExp;
  /** A failure whose message matches means there was nothing to do (deleting what is gone). */
  readonly okIf?: RegExp;
  /** A failure whose message matches leaves the object in place, with this explanation. */
  readonly keepIf?: { readonly pattern: RegExp; readonly note: string };
}

/** A problem found while planning (nothing is run for it). */
export interface PlanProblem {
  readonly group: string;
  readonly message: string;
}

export interface Plan {
  readonly steps: readonly Step[];
  readonly problems: readonly PlanProblem[];
  /** Queues this plan creates (recorded so uninstall removes only those). */
  readonly createsQueues: readonly string[];
}

export const PENDING_DELETE = /pending delete/i;

/** The hooks' JSON config (imported as application/x-config; read by magrathea_hook.py). */
export function hookConfigJson(site: SiteConfig): Record<string, unknown> {
  return {
    priority_queue: site.priorityQueue,
    priority_queues: [site.priorityQueue, ...site.extraPriorityQueues],
    non_preemptible_queues: [...site.nonPreemptibleQueues],
    domain_config: site.domainConfig,
    timeout: site.daemonTimeoutSeconds,
    end_retries: site.endRetries,
    publish_from_mom: site.publishFromMom,
    filter_admit_url: site.filterAdmitUrl,
    admit_timeout: site.admitTimeoutSeconds,
    priority_queue_interactive_only: site.priorityQueueInteractiveOnly,
    images: site.images.map((i) => i.name),
  };
}

interface HookSpec {
  readonly name: string;
  readonly events: readonly string[];
  /** Attributes besides event/enabled, as qmgr prints them. */
  readonly attrs: Readonly<Record<string, string>>;
  readonly freq: number | null;
}

/** The hooks this site wants. */
export function hookSpecs(site: SiteConfig): HookSpec[] {
  const specs: HookSpec[] = [
    {
      name: HOOKS.queuejob,
      events: ['queuejob', 'modifyjob', 'movejob', 'resvsub'],
      attrs: { alarm: '5', order: '10' },
      freq: null,
    },
    {
      name: HOOKS.begin,
      events: ['execjob_begin'],
      attrs: { alarm: String(site.beginAlarm), order: '10', fail_action: 'offline_vnodes' },
      freq: null,
    },
    { name: HOOKS.end, events: ['execjob_end'], attrs: { alarm: String(site.endAlarm), order: '10' }, freq: null },
  ];
  // With magrathea-filter the filter is the one writer of the vnodes: no periodic hook.
  if (site.publishFromMom)
    specs.push({
      name: HOOKS.periodic,
      events: ['exechost_startup', 'exechost_periodic'],
      attrs: { alarm: String(site.periodicAlarm) },
      freq: site.periodicFreq,
    });
  if (site.filterAdmitUrl)
    specs.push({
      name: HOOKS.runjob,
      events: ['runjob'],
      attrs: { alarm: String(site.admitTimeoutSeconds + 2), order: '10' },
      freq: null,
    });
  return specs;
}

const sameEvents = (a: string | undefined, b: readonly string[]): boolean =>
  a !== undefined &&
  [...a.split(',')]
    .map((s) => s.trim())
    .sort()
    .join(',') === [...b].sort().join(',');

function createHookSteps(site: SiteConfig, h: HookSpec): Step[] {
  const g = `hook ${h.name}`;
  // A mom hook must be enabled, with its events set, before the import (PTL's note).
  return [
    { group: g, command: `create hook ${h.name}`, retryWhile: PENDING_DELETE },
    { group: g, command: `set hook ${h.name} event = "${h.events.join(',')}"` },
    ...Object.entries(h.attrs).map(([k, v]) => ({ group: g, command: `set hook ${h.name} ${k} = ${v}` })),
    // Only on a hook without a script (just created): see the file comment.
    ...(h.freq !== null ? [{ group: g, command: `set hook ${h.name} freq = ${h.freq}` }] : []),
    { group: g, command: `set hook ${h.name} enabled = true` },
    ...importSteps(site, h.name, g),
  ];
}

function importSteps(site: SiteConfig, name: string, g: string): Step[] {
  return [
    { group: g, command: `import hook ${name} application/x-python default ${site.hookFile}` },
    { group: g, command: `import hook ${name} application/x-config default ${site.hookConfigFile}` },
  ];
}

function hookSteps(site: SiteConfig, h: HookSpec, cur: Readonly<Record<string, string>> | undefined): Step[] {
  const g = `hook ${h.name}`;
  if (!cur) return createHookSteps(site, h);
  if (h.freq !== null && cur.freq !== String(h.freq)) {
    return [
      { group: g, command: `delete hook ${h.name}`, okIf: /not found|Unknown hook/i },
      ...createHookSteps(site, h),
    ];
  }
  const steps: Step[] = [];
  if (!sameEvents(cur.event, h.events))
    steps.push({ group: g, command: `set hook ${h.name} event = "${h.events.join(',')}"` });
  for (const [k, v] of Object.entries(h.attrs))
    if (cur[k] !== v) steps.push({ group: g, command: `set hook ${h.name} ${k} = ${v}` });
  if (cur.enabled !== 'true') steps.push({ group: g, command: `set hook ${h.name} enabled = true` });
  return [...steps, ...importSteps(site, h.name, g)];
}

function setIfDifferent(
  steps: Step[],
  group: string,
  object: string,
  attrs: Readonly<Record<string, string>> | undefined,
  key: string,
  value: string,
): void {
  if (attrs?.[key] !== value) steps.push({ group, command: `set ${object} ${key} = ${value}` });
}

/** The steps that bring the server to the site's configuration, from what it holds now. */
export function planInstall(site: SiteConfig, obs: Observed): Plan {
  const steps: Step[] = [];
  const problems: PlanProblem[] = [];
  const createsQueues: string[] = [];
  for (const r of RESOURCES) {
    const cur = obs.resources.get(r.name);
    const g = `resource ${r.name}`;
    if (!cur) steps.push({ group: g, command: `create resource ${r.name} type=${r.type}, flag=${r.flag}` });
    else if (cur.type !== r.type || (cur.flag ?? '') !== r.flag)
      problems.push({
        group: g,
        message: `resource ${r.name} exists as type=${cur.type ?? '?'}, flag=${cur.flag ?? ''}; it must be type=${r.type}, flag=${r.flag} (delete it first if no job uses it)`,
      });
  }
  const queue = (
    name: string,
    create: boolean,
    defaults: Record<string, string>,
    extra: Record<string, string>,
  ): void => {
    const g = `queue ${name}`;
    const cur = obs.queues.get(name);
    if (!cur && !create) {
      problems.push({ group: g, message: `queue ${name} does not exist; create it or remove it from the site config` });
      return;
    }
    if (!cur) {
      createsQueues.push(name);
      steps.push({ group: g, command: `create queue ${name} queue_type=execution` });
      for (const [k, v] of Object.entries(extra)) steps.push({ group: g, command: `set queue ${name} ${k} = ${v}` });
      steps.push(
        { group: g, command: `set queue ${name} enabled = true` },
        { group: g, command: `set queue ${name} started = true` },
      );
    } else {
      for (const [k, v] of Object.entries(extra)) setIfDifferent(steps, g, `queue ${name}`, cur, k, v);
    }
    for (const [k, v] of Object.entries(defaults))
      setIfDifferent(steps, g, `queue ${name}`, cur, `default_chunk.${k}`, v);
  };
  queue(
    site.priorityQueue,
    site.createPriorityQueue,
    { magrathea: 'priority' },
    { Priority: String(site.priorityQueuePriority) },
  );
  for (const q of site.extraPriorityQueues) queue(q, false, { magrathea: 'priority' }, {});
  const imageOf = new Map<string, string>();
  for (const img of site.images) for (const q of img.queues) imageOf.set(q, img.name);
  for (const q of site.normalQueues)
    queue(
      q,
      false,
      { magrathea: 'normal', ...(imageOf.has(q) ? { magrathea_image: imageOf.get(q) as string } : {}) },
      {},
    );
  for (const [q, img] of imageOf)
    if (!site.normalQueues.includes(q)) queue(q, true, { magrathea: 'normal', magrathea_image: img }, {});
  // Chunks of jobs in any other queue still ask for a token (queue defaults apply first).
  setIfDifferent(steps, 'server', 'server', obs.server, 'default_chunk.magrathea', 'normal');
  const wanted = hookSpecs(site);
  for (const h of wanted) steps.push(...hookSteps(site, h, obs.hooks.get(h.name)));
  for (const name of Object.values(HOOKS))
    if (obs.hooks.has(name) && !wanted.some((h) => h.name === name))
      steps.push({ group: `hook ${name}`, command: `delete hook ${name}`, okIf: /not found|Unknown hook/i });
  return { steps, problems, createsQueues };
}

/**
 * The steps that remove Magrathea: hooks, queue and server defaults, the queues install created
 * (`createdQueues`, from the install record) and the resources. Resources and queues still in use
 * are kept, with the reason.
 */
export function planUninstall(site: SiteConfig, obs: Observed, createdQueues: readonly string[]): Plan {
  const steps: Step[] = [];
  const gone = /not found|Unknown hook|Unknown queue|Unknown resource/i;
  for (const name of Object.values(HOOKS))
    if (obs.hooks.has(name)) steps.push({ group: `hook ${name}`, command: `delete hook ${name}`, okIf: gone });
  if (obs.server['default_chunk.magrathea'] !== undefined)
    steps.push({ group: 'server', command: 'unset server default_chunk.magrathea' });
  for (const [name, attrs] of obs.queues) {
    if (createdQueues.includes(name)) {
      steps.push({
        group: `queue ${name}`,
        command: `delete queue ${name}`,
        okIf: gone,
        keepIf: {
          pattern: /not empty|busy|has jobs/i,
          note: `queue ${name} still holds jobs; delete it once they are done`,
        },
      });
      continue;
    }
    for (const k of ['default_chunk.magrathea', 'default_chunk.magrathea_image'])
      if (attrs[k] !== undefined) steps.push({ group: `queue ${name}`, command: `unset queue ${name} ${k}` });
  }
  for (const r of [...RESOURCES].reverse())
    if (obs.resources.has(r.name))
      steps.push({
        group: `resource ${r.name}`,
        command: `delete resource ${r.name}`,
        okIf: gone,
        keepIf: {
          pattern: /busy/i,
          note: `resource ${r.name} is still referenced by jobs (job history counts); run "qmgr -c 'delete resource ${r.name}'" once they are purged`,
        },
      });
  void site;
  return { steps, problems: [], createsQueues: [] };
}

/** The resources the scheduler must match on (sched_config `resources:`). */
const OURS = ['magrathea', 'magrathea_image', 'magrathea_cpus'];

/** The lines sched_config needs (then SIGHUP pbs_sched). */
export function schedConfigLines(site: SiteConfig): string[] {
  const list = site.schedResources
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const r of OURS) if (!list.includes(r)) list.push(r);
  return [`resources: "${list.join(', ')}"`, SORT_KEY];
}

const SORT_KEY = 'node_sort_key: "magrathea_rank HIGH" ALL';

function resourcesLine(line: string, edit: (list: string[]) => string[]): string | null {
  const m = /^resources:\s*"([^"]*)"(.*)$/.exec(line);
  if (!m) return null;
  const list = (m[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return `resources: "${edit(list).join(', ')}"${m[2] ?? ''}`;
}

/**
 * Applies the sched_config lines to the text of a sched_config file: the `resources:` line gains
 * magrathea, magrathea_image and magrathea_cpus, and our node_sort_key goes first (later keys only break ties).
 * Applying it twice is the same as once.
 */
export function editSchedConfig(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let sawResources = false;
  let placedSortKey = false;
  for (const line of lines) {
    const r = resourcesLine(line, (list) => [...list, ...OURS.filter((o) => !list.includes(o))]);
    if (r !== null) {
      sawResources = true;
      out.push(r);
      continue;
    }
    if (/^node_sort_key:\s*"magrathea_rank /.test(line)) continue;
    if (/^node_sort_key:/.test(line) && !placedSortKey) {
      out.push(SORT_KEY);
      placedSortKey = true;
    }
    out.push(line);
  }
  if (!sawResources) out.push(`resources: "ncpus, mem, arch, host, vnode, aoe, eoe, ${OURS.join(', ')}"`);
  if (!placedSortKey) out.push(SORT_KEY);
  return out.join('\n');
}

/** Takes our edits out of a sched_config text again (the rest, including later admin edits, stays). */
export function unEditSchedConfig(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^node_sort_key:\s*"magrathea_rank /.test(line))
    .map((line) => resourcesLine(line, (list) => list.filter((x) => !OURS.includes(x))) ?? line)
    .join('\n');
}
