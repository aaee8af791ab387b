import type { Observed, SiteConfigError } from '../src';
import {
  checkServer,
  compileSiteConfig,
  editSchedConfig,
  hookConfigJson,
  NOTHING_OBSERVED,
  planInstall,
  planUninstall,
  schedConfigLines,
  unEditSchedConfig,
} from '../src';

const site = compileSiteConfig({
  hookFile: '/opt/magrathea/hooks/magrathea_hook.py',
  hookConfigFile: '/etc/magrathea/magrathea_hook.json',
  normalQueues: ['workq', 'long'],
  extraPriorityQueues: ['express'],
  nonPreemptibleQueues: ['mpi'],
});
const commands = (o: Observed, s = site): string[] => planInstall(s, o).steps.map((x) => x.command);

/** What a server holds right after a fresh install of `site` (as qmgr lists it). */
function installed(s = site): Observed {
  const hooks = new Map<string, Record<string, string>>([
    ['magrathea_queuejob', { enabled: 'true', event: 'queuejob,modifyjob,resvsub,movejob', alarm: '5', order: '10' }],
    [
      'magrathea_begin',
      { enabled: 'true', event: 'execjob_begin', alarm: '30', order: '10', fail_action: 'offline_vnodes' },
    ],
    ['magrathea_end', { enabled: 'true', event: 'execjob_end', alarm: '60', order: '10' }],
  ]);
  if (s.publishFromMom)
    hooks.set('magrathea_periodic', {
      enabled: 'true',
      event: 'exechost_startup,exechost_periodic',
      alarm: '10',
      freq: '30',
    });
  return {
    resources: new Map([
      ['magrathea', { type: 'string_array', flag: 'h' }],
      ['magrathea_state', { type: 'string', flag: 'h' }],
      ['magrathea_rank', { type: 'float', flag: 'h' }],
      ['magrathea_image', { type: 'string', flag: 'h' }],
      ['magrathea_cpus', { type: 'long', flag: 'h' }],
    ]),
    queues: new Map([
      ['workq', { 'default_chunk.magrathea': 'normal' }],
      ['long', { 'default_chunk.magrathea': 'normal' }],
      ['express', { 'default_chunk.magrathea': 'priority' }],
      ['iprio', { Priority: '150', 'default_chunk.magrathea': 'priority' }],
    ]),
    hooks,
    server: { 'default_chunk.magrathea': 'normal' },
  };
}
const imports = (name: string) => [
  `import hook ${name} application/x-python default /opt/magrathea/hooks/magrathea_hook.py`,
  `import hook ${name} application/x-config default /etc/magrathea/magrathea_hook.json`,
];

describe('magrathea pbs install', () => {
  test('a fresh install, command by command', () => {
    const hook = (name: string, event: string, attrs: string[]) => [
      `create hook ${name}`,
      `set hook ${name} event = "${event}"`,
      ...attrs.map((a) => `set hook ${name} ${a}`),
      `set hook ${name} enabled = true`,
      ...imports(name),
    ];
    const existing: Observed = {
      ...NOTHING_OBSERVED,
      queues: new Map([
        ['workq', {}],
        ['long', {}],
        ['express', {}],
      ]),
    };
    expect(commands(existing)).toEqual([
      'create resource magrathea type=string_array, flag=h',
      'create resource magrathea_state type=string, flag=h',
      'create resource magrathea_rank type=float, flag=h',
      'create resource magrathea_image type=string, flag=h',
      'create resource magrathea_cpus type=long, flag=h',
      'create queue iprio queue_type=execution',
      'set queue iprio Priority = 150',
      'set queue iprio enabled = true',
      'set queue iprio started = true',
      'set queue iprio default_chunk.magrathea = priority',
      'set queue express default_chunk.magrathea = priority',
      'set queue workq default_chunk.magrathea = normal',
      'set queue long default_chunk.magrathea = normal',
      'set server default_chunk.magrathea = normal',
      ...hook('magrathea_queuejob', 'queuejob,modifyjob,movejob,resvsub', ['alarm = 5', 'order = 10']),
      ...hook('magrathea_begin', 'execjob_begin', ['alarm = 30', 'order = 10', 'fail_action = offline_vnodes']),
      ...hook('magrathea_end', 'execjob_end', ['alarm = 60', 'order = 10']),
      ...hook('magrathea_periodic', 'exechost_startup,exechost_periodic', ['alarm = 10', 'freq = 30']),
    ]);
    expect(planInstall(site, existing).createsQueues).toEqual(['iprio']);
    expect(planInstall(site, existing).steps[14]).toMatchObject({
      command: 'create hook magrathea_queuejob',
      retryWhile: /pending delete/i,
    });
  });

  test('installing again over an installed site only re-imports the hooks: never `set freq` on a hook with a script', () => {
    expect(commands(installed())).toEqual([
      ...imports('magrathea_queuejob'),
      ...imports('magrathea_begin'),
      ...imports('magrathea_end'),
      ...imports('magrathea_periodic'),
    ]);
  });

  test('a changed freq deletes the periodic hook and creates it again; other changes are set in place', () => {
    const s = compileSiteConfig({ ...site, periodicFreq: 60, beginAlarm: 40 });
    const cmds = commands(installed(), s);
    expect(cmds).toEqual(
      expect.arrayContaining([
        'set hook magrathea_begin alarm = 40',
        'delete hook magrathea_periodic',
        'create hook magrathea_periodic',
        'set hook magrathea_periodic freq = 60',
      ]),
    );
    expect(cmds.indexOf('delete hook magrathea_periodic')).toBeLessThan(cmds.indexOf('create hook magrathea_periodic'));
    expect(cmds.filter((c) => / freq = /.test(c))).toEqual(['set hook magrathea_periodic freq = 60']);
  });

  test('with magrathea-filter publishing, the periodic hook is not installed, and removed when present', () => {
    const s = compileSiteConfig({ ...site, publishFromMom: false });
    expect(commands(installed(site), s)).toContain('delete hook magrathea_periodic');
    expect(commands(installed(s), s).join('\n')).not.toContain('magrathea_periodic');
  });

  test('images: their queues are created when missing and default to their image', () => {
    const s = compileSiteConfig({
      ...site,
      images: [
        { name: 'meta', queues: ['workq'] },
        { name: 'egee', queues: ['egee'] },
      ],
    });
    const plan = planInstall(s, installed());
    expect(plan.steps.map((x) => x.command)).toEqual(
      expect.arrayContaining([
        'set queue workq default_chunk.magrathea_image = meta',
        'create queue egee queue_type=execution',
        'set queue egee default_chunk.magrathea = normal',
        'set queue egee default_chunk.magrathea_image = egee',
      ]),
    );
    expect(plan.createsQueues).toEqual(['egee']);
    expect(hookConfigJson(s)).toMatchObject({ images: ['meta', 'egee'] });
  });

  test('verify: one line per queue (a normal queue that is also an image queue), with its image default', () => {
    const s = compileSiteConfig({ ...site, images: [{ name: 'meta', queues: ['workq'] }] });
    const base = installed();
    const obs: Observed = {
      ...base,
      queues: new Map([
        ...base.queues,
        ['workq', { 'default_chunk.magrathea': 'normal', 'default_chunk.magrathea_image': 'meta' }],
      ]),
    };
    const lines = checkServer(s, obs).filter((c) => c.check === 'queue workq');
    expect(lines).toEqual([
      expect.objectContaining({
        status: 'pass',
        detail: 'default_chunk.magrathea = normal, default_chunk.magrathea_image = meta',
      }),
    ]);
  });

  test('what cannot be fixed by install is reported, not run: a resource of the wrong type, a missing queue', () => {
    const o = installed();
    const wrong: Observed = {
      ...o,
      resources: new Map([...o.resources, ['magrathea', { type: 'string', flag: 'h' }]]),
      queues: new Map([...o.queues].filter(([q]) => q !== 'long')),
    };
    const plan = planInstall(site, wrong);
    expect(plan.problems.map((p) => p.message)).toEqual([
      expect.stringMatching(/resource magrathea exists as type=string, flag=h; it must be type=string_array, flag=h/),
      'queue long does not exist; create it or remove it from the site config',
    ]);
    expect(plan.steps.map((x) => x.command).join('\n')).not.toContain('queue long');
  });

  test('the optional runjob hook is installed only when the filter admission URL is given', () => {
    const withFilter = compileSiteConfig({
      ...site,
      filterAdmitUrl: 'http://filter:5681/v1/admit',
      admitTimeoutSeconds: 2,
    });
    expect(commands(installed(), withFilter)).toEqual(
      expect.arrayContaining([
        'create hook magrathea_runjob',
        'set hook magrathea_runjob alarm = 4',
        ...imports('magrathea_runjob'),
      ]),
    );
    expect(hookConfigJson(withFilter)).toMatchObject({
      filter_admit_url: 'http://filter:5681/v1/admit',
      admit_timeout: 2,
    });
    expect(commands(installed()).join('\n')).not.toContain('magrathea_runjob');
  });

  test('the hooks config and the sched_config lines', () => {
    expect(hookConfigJson(site)).toEqual({
      priority_queue: 'iprio',
      priority_queues: ['iprio', 'express'],
      non_preemptible_queues: ['mpi'],
      domain_config: '/etc/magrathea/domain.json',
      timeout: 3,
      end_retries: 3,
      publish_from_mom: true,
      filter_admit_url: null,
      admit_timeout: 1,
      priority_queue_interactive_only: true,
      images: [],
    });
    expect(schedConfigLines(site)).toEqual([
      'resources: "ncpus, mem, arch, host, vnode, aoe, eoe, magrathea, magrathea_image, magrathea_cpus"',
      'node_sort_key: "magrathea_rank HIGH" ALL',
    ]);
  });

  test('uninstall removes the hooks and defaults, deletes only the queues install created, keeps resources still in use', () => {
    const plan = planUninstall(site, installed(), ['iprio']);
    expect(plan.steps.map((x) => x.command)).toEqual([
      'delete hook magrathea_queuejob',
      'delete hook magrathea_begin',
      'delete hook magrathea_end',
      'delete hook magrathea_periodic',
      'unset server default_chunk.magrathea',
      'unset queue workq default_chunk.magrathea',
      'unset queue long default_chunk.magrathea',
      'unset queue express default_chunk.magrathea',
      'delete queue iprio',
      'delete resource magrathea_cpus',
      'delete resource magrathea_image',
      'delete resource magrathea_rank',
      'delete resource magrathea_state',
      'delete resource magrathea',
    ]);
    const res = plan.steps.find((x) => x.command === 'delete resource magrathea');
    expect(res?.keepIf?.pattern.test('Resource busy on job')).toBe(true);
    expect(res?.okIf?.test('Unknown resource')).toBe(true);
    // A priority queue the site had before install is only cleared, not deleted.
    expect(planUninstall(site, installed(), []).steps.map((x) => x.command)).toContain(
      'unset queue iprio default_chunk.magrathea',
    );
  });

  test('sched_config is edited in place: magrathea joins resources:, our sort key goes first, twice is the same as once', () => {
    const original = [
      '# comment',
      'resources: "ncpus, mem, arch, host, vnode, aoe, eoe"',
      'node_sort_key: "sort_priority HIGH" ALL',
      'backfill: true ALL',
    ].join('\n');
    const once = editSchedConfig(original);
    expect(once.split('\n')).toEqual([
      '# comment',
      'resources: "ncpus, mem, arch, host, vnode, aoe, eoe, magrathea, magrathea_image, magrathea_cpus"',
      'node_sort_key: "magrathea_rank HIGH" ALL',
      'node_sort_key: "sort_priority HIGH" ALL',
      'backfill: true ALL',
    ]);
    expect(editSchedConfig(once)).toBe(once);
  });

  test('uninstall takes out only our sched_config lines (later admin edits stay)', () => {
    const original = [
      'resources: "ncpus, mem, arch, host, vnode, aoe, eoe"',
      'node_sort_key: "sort_priority HIGH" ALL',
    ].join('\n');
    const edited = `${editSchedConfig(original)}\nbackfill_depth: 3`;
    expect(unEditSchedConfig(edited)).toBe(`${original}\nbackfill_depth: 3`);
    expect(unEditSchedConfig(original)).toBe(original);
  });

  test('a bad site config reports every problem', () => {
    let problems: readonly string[] = [];
    try {
      compileSiteConfig({
        priorityQueue: 'a queue!',
        periodicFreq: 5,
        periodicAlarm: 10,
        hookConfigFile: '/etc/x.yaml',
        colour: 'red',
        normalQueues: ['iprio'],
        images: [{ name: 'meta', queues: ['iprio'] }, { name: 'bad name', queues: [] }, { queues: ['x'] }],
      });
    } catch (err) {
      problems = (err as SiteConfigError).problems;
    }
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^colour: unknown key/),
        expect.stringMatching(/^priorityQueue: /),
        expect.stringMatching(/^hookConfigFile: must end in \.json/),
        expect.stringMatching(/^periodicAlarm: must be below periodicFreq/),
        'images.0.queues: iprio is a priority queue; image queues hold batch (normal) jobs',
        expect.stringMatching(/^images\.1\.name: "bad name" is not an image name/),
        'images.2.name: is required',
      ]),
    );
    expect(() => compileSiteConfig({ daemonTimeoutSeconds: 20, beginAlarm: 30 })).toThrow(/well under beginAlarm/);
  });
});
