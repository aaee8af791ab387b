import type { SiteConfigError } from '../src';
import {
  compileSiteConfig,
  editSchedConfig,
  hookConfigJson,
  installCommands,
  schedConfigLines,
  uninstallCommands,
} from '../src';

const site = compileSiteConfig({
  hookFile: '/opt/magrathea/hooks/magrathea_hook.py',
  hookConfigFile: '/etc/magrathea/magrathea_hook.json',
  normalQueues: ['workq', 'long'],
  extraPriorityQueues: ['express'],
  nonPreemptibleQueues: ['mpi'],
});

describe('magrathea pbs install', () => {
  test('the qmgr commands, command by command', () => {
    const hook = (name: string, event: string, attrs: string[]) => [
      `create hook ${name}`,
      `set hook ${name} event = "${event}"`,
      ...attrs.map((a) => `set hook ${name} ${a}`),
      `set hook ${name} enabled = true`,
      `import hook ${name} application/x-python default /opt/magrathea/hooks/magrathea_hook.py`,
      `import hook ${name} application/x-config default /etc/magrathea/magrathea_hook.json`,
    ];
    expect(installCommands(site)).toEqual([
      'create resource magrathea type=string_array, flag=h',
      'create resource magrathea_state type=string, flag=h',
      'create resource magrathea_rank type=float, flag=h',
      'create queue iprio queue_type=execution',
      'set queue iprio Priority = 150',
      'set queue iprio enabled = true',
      'set queue iprio started = true',
      'set queue iprio default_chunk.magrathea = priority',
      'set queue express default_chunk.magrathea = priority',
      'set queue workq default_chunk.magrathea = normal',
      'set queue long default_chunk.magrathea = normal',
      'set server default_chunk.magrathea = normal',
      ...hook('magrathea_queuejob', 'queuejob', ['alarm = 5', 'order = 10']),
      ...hook('magrathea_begin', 'execjob_begin', ['alarm = 30', 'order = 10', 'fail_action = offline_vnodes']),
      ...hook('magrathea_end', 'execjob_end', ['alarm = 60', 'order = 10']),
      ...hook('magrathea_periodic', 'exechost_startup,exechost_periodic', ['freq = 30', 'alarm = 10']),
    ]);
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
    });
    expect(schedConfigLines(site)).toEqual([
      'resources: "ncpus, mem, arch, host, vnode, aoe, eoe, magrathea"',
      'node_sort_key: "magrathea_rank HIGH" ALL',
    ]);
  });

  test('the optional runjob hook is installed (and uninstalled) only when the filter admission URL is given', () => {
    const withFilter = compileSiteConfig({
      hookFile: '/opt/h.py',
      filterAdmitUrl: 'http://filter:5681/v1/admit',
      admitTimeoutSeconds: 2,
    });
    expect(installCommands(withFilter).slice(-7)).toEqual([
      'create hook magrathea_runjob',
      'set hook magrathea_runjob event = "runjob"',
      'set hook magrathea_runjob alarm = 4',
      'set hook magrathea_runjob order = 10',
      'set hook magrathea_runjob enabled = true',
      'import hook magrathea_runjob application/x-python default /opt/h.py',
      'import hook magrathea_runjob application/x-config default /etc/magrathea/magrathea_hook.json',
    ]);
    expect(hookConfigJson(withFilter)).toMatchObject({
      filter_admit_url: 'http://filter:5681/v1/admit',
      admit_timeout: 2,
    });
    expect(uninstallCommands(withFilter)).toContain('delete hook magrathea_runjob');
    expect(installCommands(site).join('\n')).not.toContain('magrathea_runjob');
    expect(uninstallCommands(site)).not.toContain('delete hook magrathea_runjob');
  });

  test('uninstall reverses install', () => {
    expect(uninstallCommands(site)).toEqual([
      'delete hook magrathea_queuejob',
      'delete hook magrathea_begin',
      'delete hook magrathea_end',
      'delete hook magrathea_periodic',
      'unset server default_chunk.magrathea',
      'unset queue workq default_chunk.magrathea',
      'unset queue long default_chunk.magrathea',
      'unset queue express default_chunk.magrathea',
      'delete queue iprio',
      'delete resource magrathea_rank',
      'delete resource magrathea_state',
      'delete resource magrathea',
    ]);
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
      'resources: "ncpus, mem, arch, host, vnode, aoe, eoe, magrathea"',
      'node_sort_key: "magrathea_rank HIGH" ALL',
      'node_sort_key: "sort_priority HIGH" ALL',
      'backfill: true ALL',
    ]);
    expect(editSchedConfig(once)).toBe(once);
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
      ]),
    );
    expect(() => compileSiteConfig({ daemonTimeoutSeconds: 20, beginAlarm: 30 })).toThrow(/well under beginAlarm/);
  });
});
