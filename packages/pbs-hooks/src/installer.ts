/**
 * The exact qmgr commands and sched_config lines that deploy Magrathea on a PBS site, and
 * their reverse. Reference: shared/reference/openpbs-hooks.md §1.1, §3, §4.
 */
import type { SiteConfig } from './site-config';

export const HOOKS = {
  queuejob: 'magrathea_queuejob',
  begin: 'magrathea_begin',
  end: 'magrathea_end',
  periodic: 'magrathea_periodic',
  runjob: 'magrathea_runjob',
} as const;

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
  };
}

function hook(site: SiteConfig, name: string, events: string, attrs: [string, string | number][]): string[] {
  // A mom hook must be enabled, with its events set, before the import (PTL's note, §1.1).
  return [
    `create hook ${name}`,
    `set hook ${name} event = "${events}"`,
    ...attrs.map(([k, v]) => `set hook ${name} ${k} = ${v}`),
    `set hook ${name} enabled = true`,
    `import hook ${name} application/x-python default ${site.hookFile}`,
    `import hook ${name} application/x-config default ${site.hookConfigFile}`,
  ];
}

/** qmgr commands, in order, one per line (what `qmgr` reads on stdin). */
export function installCommands(site: SiteConfig): string[] {
  const cmds = [
    'create resource magrathea type=string_array, flag=h',
    'create resource magrathea_state type=string, flag=h',
    'create resource magrathea_rank type=float, flag=h',
  ];
  if (site.createPriorityQueue) {
    cmds.push(
      `create queue ${site.priorityQueue} queue_type=execution`,
      `set queue ${site.priorityQueue} Priority = ${site.priorityQueuePriority}`,
      `set queue ${site.priorityQueue} enabled = true`,
      `set queue ${site.priorityQueue} started = true`,
    );
  }
  cmds.push(`set queue ${site.priorityQueue} default_chunk.magrathea = priority`);
  for (const q of site.extraPriorityQueues) cmds.push(`set queue ${q} default_chunk.magrathea = priority`);
  for (const q of site.normalQueues) cmds.push(`set queue ${q} default_chunk.magrathea = normal`);
  // Chunks of jobs in any other queue still ask for a token (queue defaults apply first).
  cmds.push('set server default_chunk.magrathea = normal');
  cmds.push(
    ...hook(site, HOOKS.queuejob, 'queuejob', [
      ['alarm', 5],
      ['order', 10],
    ]),
    ...hook(site, HOOKS.begin, 'execjob_begin', [
      ['alarm', site.beginAlarm],
      ['order', 10],
      ['fail_action', 'offline_vnodes'],
    ]),
    ...hook(site, HOOKS.end, 'execjob_end', [
      ['alarm', site.endAlarm],
      ['order', 10],
    ]),
    ...hook(site, HOOKS.periodic, 'exechost_startup,exechost_periodic', [
      ['freq', site.periodicFreq],
      ['alarm', site.periodicAlarm],
    ]),
  );
  if (site.filterAdmitUrl) {
    cmds.push(
      ...hook(site, HOOKS.runjob, 'runjob', [
        ['alarm', site.admitTimeoutSeconds + 2],
        ['order', 10],
      ]),
    );
  }
  return cmds;
}

export function uninstallCommands(site: SiteConfig): string[] {
  const cmds = Object.values(HOOKS)
    .filter((h) => h !== HOOKS.runjob || site.filterAdmitUrl)
    .map((h) => `delete hook ${h}`);
  cmds.push('unset server default_chunk.magrathea');
  for (const q of site.normalQueues) cmds.push(`unset queue ${q} default_chunk.magrathea`);
  for (const q of site.extraPriorityQueues) cmds.push(`unset queue ${q} default_chunk.magrathea`);
  if (site.createPriorityQueue) cmds.push(`delete queue ${site.priorityQueue}`);
  else cmds.push(`unset queue ${site.priorityQueue} default_chunk.magrathea`);
  cmds.push('delete resource magrathea_rank', 'delete resource magrathea_state', 'delete resource magrathea');
  return cmds;
}

/** The lines sched_config needs (then SIGHUP pbs_sched). */
export function schedConfigLines(site: SiteConfig): string[] {
  const list = site.schedResources
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!list.includes('magrathea')) list.push('magrathea');
  return [`resources: "${list.join(', ')}"`, 'node_sort_key: "magrathea_rank HIGH" ALL'];
}

/**
 * Applies the sched_config lines to the text of a sched_config file: the `resources:` line
 * gains magrathea, and our node_sort_key goes first (later keys only break ties).
 */
export function editSchedConfig(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let sawResources = false;
  let placedSortKey = false;
  for (const line of lines) {
    const m = /^resources:\s*"([^"]*)"(.*)$/.exec(line);
    if (m) {
      sawResources = true;
      const list = (m[1] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (!list.includes('magrathea')) list.push('magrathea');
      out.push(`resources: "${list.join(', ')}"${m[2] ?? ''}`);
      continue;
    }
    if (/^node_sort_key:\s*"magrathea_rank /.test(line)) continue;
    if (/^node_sort_key:/.test(line) && !placedSortKey) {
      out.push('node_sort_key: "magrathea_rank HIGH" ALL');
      placedSortKey = true;
    }
    out.push(line);
  }
  if (!sawResources) out.push('resources: "ncpus, mem, arch, host, vnode, aoe, eoe, magrathea"');
  if (!placedSortKey) out.push('node_sort_key: "magrathea_rank HIGH" ALL');
  return out.join('\n');
}
