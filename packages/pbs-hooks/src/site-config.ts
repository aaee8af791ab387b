/** The PBS site configuration read by `magrathea pbs install` (YAML, validated, every problem at once). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigChecker, parseYamlStrict } from '@magrathea/common';

/** Where the hook script lives in this package. */
export const HOOK_SCRIPT = path.resolve(__dirname, '../hooks/magrathea_hook.py');

export interface SiteConfig {
  /** The hook script to import into PBS. Default: this package's hooks/magrathea_hook.py. */
  readonly hookFile: string;
  /** Where the installer writes the hooks' JSON config (imported as the hooks' config file). */
  readonly hookConfigFile: string;
  /** Queues whose jobs are normal (batch) jobs. Default [workq]. */
  readonly normalQueues: readonly string[];
  /** The queue priority/interactive jobs are routed to. Default iprio. */
  readonly priorityQueue: string;
  /** Create the priority queue (execution queue) if true. Default true. */
  readonly createPriorityQueue: boolean;
  /** Its PBS Priority (≥ 150 makes it an express queue). Default 150. */
  readonly priorityQueuePriority: number;
  /** Further queues whose jobs are priority jobs (routed to priorityQueue). */
  readonly extraPriorityQueues: readonly string[];
  /** Queues whose jobs are never preemptible. */
  readonly nonPreemptibleQueues: readonly string[];
  /** The per-domain JSON file inside each guest (daemon_url, domain, token_file). */
  readonly domainConfig: string;
  /** exechost_periodic frequency and alarm, seconds. Defaults 30 and 10. */
  readonly periodicFreq: number;
  readonly periodicAlarm: number;
  /** execjob_begin and execjob_end alarms, seconds. Defaults 30 and 60. */
  readonly beginAlarm: number;
  readonly endAlarm: number;
  /** Time limit of each call to the node daemon, seconds. Default 3. */
  readonly daemonTimeoutSeconds: number;
  /** EndJob attempts. Default 3. */
  readonly endRetries: number;
  /** Domains publish their own state on their vnodes (set false when magrathea-filter publishes). Default true. */
  readonly publishFromMom: boolean;
  /** The current `resources:` list of sched_config, to which magrathea is appended. */
  readonly schedResources: string;
  /** magrathea-filter's admission URL (http://HOST:PORT/v1/admit): installs the optional runjob hook. */
  readonly filterAdmitUrl: string | null;
  /** Time limit of the runjob admission call, seconds (it blocks pbs_server). Default 1. */
  readonly admitTimeoutSeconds: number;
  /**
   * The images the domains run side by side (each domain publishes its image as
   * `resources_available.magrathea_image`). Jobs in an image's queues run only in domains of that
   * image; `qsub -l select=…:magrathea_image=NAME` asks for one explicitly. Default: none (jobs
   * may run in any normal domain).
   */
  readonly images: readonly ImageSpec[];
  /** Refuse batch jobs submitted straight to the interactive priority queue (managers excepted). Default true. */
  readonly priorityQueueInteractiveOnly: boolean;
  /** How long install waits for a deleted mom hook to be dropped by every mom before re-creating it, seconds. Default 120. */
  readonly hookDeleteWaitSeconds: number;
  /** PBS server passed to qmgr (`qmgr -c CMD SERVER`), or null for the default server. */
  readonly server: string | null;
}

export interface ImageSpec {
  /** The image name, as the domains' `image` in magrathead's config. */
  readonly name: string;
  /** Queues whose jobs run in this image (created by install when missing). */
  readonly queues: readonly string[];
}

const QUEUE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
/** Image names: the domain-name alphabet (they are published as a PBS string resource). */
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function images(c: ConfigChecker, v: unknown): ImageSpec[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    c.fail('images', 'must be a list of { name, queues }');
    return [];
  }
  const out: ImageSpec[] = [];
  v.forEach((item, i) => {
    const p = `images.${i}`;
    const o = c.object(item, p, ['name', 'queues']);
    if (!o) return;
    const name = c.string(o, 'name', p, { pattern: IMAGE, patternText: 'an image name (letters, digits, ._-)' });
    if (o.name === undefined) c.fail(`${p}.name`, 'is required');
    const qs = o.queues ?? [];
    if (!Array.isArray(qs) || !qs.every((q) => typeof q === 'string' && QUEUE.test(q))) {
      c.fail(`${p}.queues`, 'must be a list of PBS queue names (letters, digits, ._-, at most 15)');
      return;
    }
    if (name && out.some((x) => x.name === name)) c.fail(`${p}.name`, `image ${name} is listed twice`);
    else if (name) out.push({ name, queues: qs as string[] });
  });
  return out;
}
const SAFE_PATH = /^\/[^'"\s;`$\\]*$/;

export class SiteConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid PBS site configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export function compileSiteConfig(doc: unknown): SiteConfig {
  const c = new ConfigChecker();
  const keys = [
    'hookFile',
    'hookConfigFile',
    'normalQueues',
    'priorityQueue',
    'createPriorityQueue',
    'priorityQueuePriority',
    'extraPriorityQueues',
    'nonPreemptibleQueues',
    'domainConfig',
    'periodicFreq',
    'periodicAlarm',
    'beginAlarm',
    'endAlarm',
    'daemonTimeoutSeconds',
    'endRetries',
    'publishFromMom',
    'schedResources',
    'filterAdmitUrl',
    'admitTimeoutSeconds',
    'images',
    'priorityQueueInteractiveOnly',
    'hookDeleteWaitSeconds',
    'server',
  ] as const;
  const o = c.object(doc ?? {}, '', keys);
  const pathOf = (k: string, def: string): string =>
    c.string(o, k, '', { pattern: SAFE_PATH, patternText: 'an absolute path without quotes or spaces' }) ?? def;
  const queues = (k: string, def: string[]): string[] => {
    const v = o?.[k];
    if (v === undefined || v === null) return def;
    if (!Array.isArray(v) || !v.every((q) => typeof q === 'string' && QUEUE.test(q))) {
      c.fail(k, 'must be a list of PBS queue names (letters, digits, ._-, at most 15)');
      return def;
    }
    return v as string[];
  };
  const site: SiteConfig = {
    hookFile: pathOf('hookFile', HOOK_SCRIPT),
    hookConfigFile: pathOf('hookConfigFile', '/etc/magrathea/magrathea_hook.json'),
    normalQueues: queues('normalQueues', ['workq']),
    priorityQueue: c.string(o, 'priorityQueue', '', { pattern: QUEUE, patternText: 'a PBS queue name' }) ?? 'iprio',
    createPriorityQueue: c.bool(o, 'createPriorityQueue', '') ?? true,
    priorityQueuePriority: c.int(o, 'priorityQueuePriority', '', -1024, 1023) ?? 150,
    extraPriorityQueues: queues('extraPriorityQueues', []),
    nonPreemptibleQueues: queues('nonPreemptibleQueues', []),
    domainConfig: pathOf('domainConfig', '/etc/magrathea/domain.json'),
    periodicFreq: c.int(o, 'periodicFreq', '', 1, 86400) ?? 30,
    periodicAlarm: c.int(o, 'periodicAlarm', '', 1, 3600) ?? 10,
    beginAlarm: c.int(o, 'beginAlarm', '', 1, 3600) ?? 30,
    endAlarm: c.int(o, 'endAlarm', '', 1, 3600) ?? 60,
    daemonTimeoutSeconds: c.int(o, 'daemonTimeoutSeconds', '', 1, 20) ?? 3,
    endRetries: c.int(o, 'endRetries', '', 1, 10) ?? 3,
    publishFromMom: c.bool(o, 'publishFromMom', '') ?? true,
    schedResources: c.string(o, 'schedResources', '') ?? 'ncpus, mem, arch, host, vnode, aoe, eoe',
    filterAdmitUrl:
      c.string(o, 'filterAdmitUrl', '', { pattern: /^https?:\/\/[^\s'"]+$/, patternText: 'an http(s) URL' }) ?? null,
    admitTimeoutSeconds: c.int(o, 'admitTimeoutSeconds', '', 1, 5) ?? 1,
    images: images(c, o?.images),
    priorityQueueInteractiveOnly: c.bool(o, 'priorityQueueInteractiveOnly', '') ?? true,
    hookDeleteWaitSeconds: c.int(o, 'hookDeleteWaitSeconds', '', 1, 3600) ?? 120,
    server:
      c.string(o, 'server', '', { pattern: /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, patternText: 'a PBS server name' }) ?? null,
  };
  if (!site.hookConfigFile.endsWith('.json'))
    c.fail('hookConfigFile', 'must end in .json (PBS checks the suffix on import)');
  const all = [...site.normalQueues, site.priorityQueue, ...site.extraPriorityQueues];
  if (new Set(all).size !== all.length)
    c.fail('normalQueues', 'a queue is listed twice (normal, priority and extra priority queues must differ)');
  const priority = new Set([site.priorityQueue, ...site.extraPriorityQueues]);
  const imageOfQueue = new Map<string, string>();
  site.images.forEach((img, i) => {
    for (const q of img.queues) {
      if (priority.has(q))
        c.fail(`images.${i}.queues`, `${q} is a priority queue; image queues hold batch (normal) jobs`);
      const other = imageOfQueue.get(q);
      if (other) c.fail(`images.${i}.queues`, `queue ${q} is listed for images ${other} and ${img.name}`);
      imageOfQueue.set(q, img.name);
    }
  });
  if (site.periodicAlarm >= site.periodicFreq)
    c.fail('periodicAlarm', `must be below periodicFreq (${site.periodicFreq} s)`);
  if (site.daemonTimeoutSeconds * 2 > site.beginAlarm)
    c.fail('daemonTimeoutSeconds', `must be well under beginAlarm (at most half of ${site.beginAlarm} s)`);
  if (site.daemonTimeoutSeconds * 2 > site.periodicAlarm)
    c.fail('daemonTimeoutSeconds', `must be well under periodicAlarm (at most half of ${site.periodicAlarm} s)`);
  const endWorst = site.endRetries * site.daemonTimeoutSeconds + 0.5 * (2 ** (site.endRetries - 1) - 1) * 2;
  if (endWorst >= site.endAlarm)
    c.fail(
      'endRetries',
      `${site.endRetries} attempts of ${site.daemonTimeoutSeconds} s plus back-off (${endWorst} s) do not fit in endAlarm (${site.endAlarm} s)`,
    );
  if (c.problems.length > 0) throw new SiteConfigError(c.problems);
  return site;
}

export function loadSiteConfig(file: string | undefined): SiteConfig {
  if (file === undefined) return compileSiteConfig({});
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new SiteConfigError([`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  const r = parseYamlStrict(text, file);
  if (!r.ok) throw new SiteConfigError(r.problems);
  const doc = r.value;
  return compileSiteConfig(doc);
}
