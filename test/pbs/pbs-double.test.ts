/**
 * The `pbs` test double against the real `pbs` module: the same hook scenarios run through the
 * double (test/pbs_double, used by the fast hook tests) and through OpenPBS's own
 * `pbs_python --hook` (the real module, offline: event input file, site data, resourcedef), and
 * must come out the same — accept/reject and the message, rerun, the vnode attributes set and the
 * job resources set. This is where every behaviour the double models is checked once against PBS.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runHook } from '../helpers/hooks';
import type { HookResult, HookScenario } from '../helpers/hooks';
import { spawnDaemon, tmpDir } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';
import { HOOK_FILE } from './deploy';
import { run } from './lab';

const PBS_PYTHON = '/opt/pbs/bin/pbs_python';
const available = fs.existsSync(PBS_PYTHON);

interface Observed {
  outcome: 'accept' | 'reject';
  reject_msg: string | null;
  rerun: boolean;
  vnode_sets: Record<string, Record<string, string>>;
  resource_sets: Record<string, string>;
}

const norm = (v: unknown): string => {
  const s = String(v);
  return /^-?\d+(\.\d+)?$/.test(s) ? String(Number(s)) : s;
};

function fromDouble(r: HookResult): Observed {
  const vnode_sets: Record<string, Record<string, string>> = {};
  for (const [v, attrs] of Object.entries(r.vnode_sets))
    vnode_sets[v] = Object.fromEntries(Object.entries(attrs).map(([k, x]) => [k, norm(x)]));
  return {
    outcome: r.outcome === 'reject' ? 'reject' : 'accept',
    reject_msg: r.reject_msg,
    rerun: r.rerun,
    vnode_sets,
    resource_sets: Object.fromEntries(Object.entries(r.job_sets).filter(([k]) => k.startsWith('Resource_List.'))),
  };
}

const EVENT_NAMES: Record<string, string> = {
  QUEUEJOB: 'queuejob',
  MODIFYJOB: 'modifyjob',
  MOVEJOB: 'movejob',
  RESVSUB: 'resvsub',
  EXECJOB_BEGIN: 'execjob_begin',
  EXECJOB_END: 'execjob_end',
  EXECHOST_PERIODIC: 'exechost_periodic',
  EXECHOST_STARTUP: 'exechost_startup',
};

/** The double's scenario as pbs_python --hook input lines (pbs.event().…=value). */
function inputOf(s: HookScenario): string[] {
  const e = s.event;
  const str = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v));
  const lines = [`pbs.event().type=${EVENT_NAMES[e.type] ?? e.type}`, `pbs.event().hook_name=${s.hook ?? 'magrathea'}`];
  if (e.requestor) lines.push(`pbs.event().requestor=${str(e.requestor)}`);
  if (e.requestor_host) lines.push(`pbs.event().requestor_host=${str(e.requestor_host)}`);
  const obj = (prefix: string, o: Record<string, unknown>): void => {
    for (const [k, v] of Object.entries(o)) {
      if (v === null || v === undefined) continue;
      if (k === 'Resource_List')
        for (const [r, x] of Object.entries(v as Record<string, unknown>))
          lines.push(`${prefix}.Resource_List[${r}]=${str(x)}`);
      else lines.push(`${prefix}.${k}=${str(v)}`);
    }
  };
  if (e.job) obj('pbs.event().job', e.job as Record<string, unknown>);
  if (e.resv) obj('pbs.event().resv', e.resv as Record<string, unknown>);
  // pbs_python --hook takes no src_queue (movejob's source queue); the hook does not read it.
  for (const v of Object.keys(e.vnode_list ?? {}))
    lines.push(`pbs.event().vnode_list["${v}"].resources_available[ncpus]=2`);
  if (s.local_nodename) lines.push(`pbs.get_local_nodename()=${s.local_nodename}`);
  return lines;
}

async function fromReal(s: HookScenario, dir: string, n: number): Promise<Observed> {
  const inFile = path.join(dir, `${n}.in`);
  const outFile = path.join(dir, `${n}.out`);
  const data = path.join(dir, `${n}.data`);
  const resdef = path.join(dir, `${n}.resourcedef`);
  fs.writeFileSync(inFile, `${inputOf(s).join('\n')}\n`);
  const server = (s.server ?? {}) as { queues?: Record<string, unknown>; managers?: string };
  fs.writeFileSync(
    data,
    [
      'pbs.server().name=pbsserver',
      ...(server.managers ? [`pbs.server().managers=${server.managers}`] : []),
      ...Object.keys(server.queues ?? {}).map((q) => `pbs.server().queue("${q}").queue_type=Execution`),
      '',
    ].join('\n'),
  );
  const defs = s.resourcedef ?? ['magrathea', 'magrathea_state', 'magrathea_rank', 'magrathea_image'];
  const types: Record<string, string> = { magrathea: 'string_array', magrathea_rank: 'float' };
  fs.writeFileSync(resdef, defs.map((r) => `${r} type=${types[r] ?? 'string'} flag=h\n`).join(''));
  const env = { ...process.env, ...(s.config_file ? { PBS_HOOK_CONFIG_FILE: s.config_file } : {}) };
  if (!s.config_file) delete env.PBS_HOOK_CONFIG_FILE;
  const r = await run('env', [
    ...Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`),
    PBS_PYTHON,
    '--hook',
    '-i',
    inFile,
    '-o',
    outFile,
    '-s',
    data,
    '-r',
    resdef,
    '-L',
    dir,
    HOOK_FILE,
  ]);
  const out = fs.existsSync(outFile) ? fs.readFileSync(outFile, 'utf8') : '';
  if (!out) throw new Error(`pbs_python --hook gave no output (${r.code}): ${r.stderr}`);
  const o: Observed = { outcome: 'accept', reject_msg: null, rerun: false, vnode_sets: {}, resource_sets: {} };
  for (const line of out.split('\n')) {
    let m: RegExpExecArray | null;
    if (line === 'pbs.event().reject=True') o.outcome = 'reject';
    else if ((m = /^pbs\.event\(\)\.reject_msg=(.*)$/.exec(line))) o.reject_msg = m[1] ?? '';
    else if (line === 'pbs.event().job._rerun=True') o.rerun = true;
    else if ((m = /^pbs\.event\(\)\.job\.Resource_List\[([^,\]]+)(?:,[^\]]*)?\]=(.*)$/.exec(line)))
      o.resource_sets[`Resource_List.${m[1]}`] = m[2] ?? '';
    else if (
      (m = /^pbs\.event\(\)\.vnode_list\["([^"]+)"\]\.resources_available\[([^,\]]+)(?:,[^\]]*)?\]=(.*)$/.exec(line))
    )
      (o.vnode_sets[m[1] ?? ''] ??= {})[`resources_available.${m[2]}`] = norm(m[3]);
    else if ((m = /^pbs\.event\(\)\.vnode_list\["([^"]+)"\]\.(comment|state)=(.*)$/.exec(line)))
      (o.vnode_sets[m[1] ?? ''] ??= {})[m[2] ?? ''] = norm(m[3]);
  }
  return o;
}

(available ? describe : describe.skip)('the pbs double behaves as the real pbs module (pbs_python --hook)', () => {
  let dir: string;
  let daemon: DaemonProcess;
  const cfg = (name: string, o: Record<string, unknown>): string => {
    const f = path.join(dir, `${name}.json`);
    fs.writeFileSync(f, JSON.stringify(o));
    return f;
  };
  let site: string;
  let siteMom: string;
  let siteEgee: string;
  let siteDown: string;

  beforeAll(async () => {
    dir = tmpDir('mg-double-');
    fs.writeFileSync(path.join(dir, 'meta.token'), 'meta-token-0123456789abcdef\n', { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'egee.token'), 'egee-token-0123456789abcdef\n', { mode: 0o600 });
    daemon = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: [
        'hookApi: { listen: "127.0.0.1:0" }',
        'driver: { simulated: { latencyMs: { boot: 0 } } }',
        'domains:',
        `  - { name: meta, tokenFile: ${path.join(dir, 'meta.token')} }`,
        `  - { name: egee, tokenFile: ${path.join(dir, 'egee.token')} }`,
        '  - { name: priv, class: priority }',
      ].join('\n'),
    });
    const port = Number(daemon.logs.find((l) => l.msg === 'magrathead ready')?.hookPort);
    const dom = (d: string, url = `http://127.0.0.1:${port}`) =>
      cfg(`${d}-domain`, { daemon_url: url, domain: d, token_file: path.join(dir, `${d}.token`) });
    const base = { priority_queue: 'iprio', images: ['meta', 'egee'], timeout: 2 };
    site = cfg('site', { ...base, domain_config: dom('meta'), publish_from_mom: false });
    siteMom = cfg('site-mom', { ...base, domain_config: dom('meta'), publish_from_mom: true });
    siteEgee = cfg('site-egee', { ...base, domain_config: dom('egee'), publish_from_mom: true });
    siteDown = cfg('site-down', { ...base, domain_config: dom('meta', 'http://127.0.0.1:1'), publish_from_mom: false });
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const server = { queues: { workq: {}, iprio: {}, egee: {} }, managers: 'root@pbsserver,admin@*' };
  const job = (extra: Record<string, unknown>) => ({ queue: 'workq', ...extra });
  const begin = (id: string, config: () => string, exec = '(va:ncpus=1)'): HookScenario => ({
    event: {
      type: 'EXECJOB_BEGIN',
      requestor: 'pbs_mom',
      job: { id, queue: 'workq', exec_vnode: exec },
      vnode_list: { va: {} },
    },
    local_nodename: 'va',
    config_file: config(),
  });
  const scenarios: [string, () => HookScenario][] = [
    [
      'queuejob: interactive, tokens in every chunk',
      () => ({
        event: {
          type: 'QUEUEJOB',
          requestor: 'alice',
          job: job({ interactive: 1, Resource_List: { select: '2:ncpus=2+1:mem=1gb' } }),
        },
        server,
        config_file: site,
      }),
    ],
    [
      'queuejob: a hand-set magrathea',
      () => ({
        event: {
          type: 'QUEUEJOB',
          requestor: 'alice',
          job: job({ Resource_List: { select: '1:ncpus=1:magrathea=priority' } }),
        },
        server,
        config_file: site,
      }),
    ],
    [
      'queuejob: a batch job in the interactive queue',
      () => ({
        event: { type: 'QUEUEJOB', requestor: 'alice', job: { queue: 'iprio', Resource_List: { ncpus: 1 } } },
        server,
        config_file: site,
      }),
    ],
    [
      'queuejob: an unknown image',
      () => ({
        event: {
          type: 'QUEUEJOB',
          requestor: 'alice',
          job: job({ Resource_List: { select: '1:ncpus=1:magrathea_image=centos' } }),
        },
        server,
        config_file: site,
      }),
    ],
    [
      'queuejob: magrathea_image not defined on the server',
      () => ({
        event: { type: 'QUEUEJOB', requestor: 'alice', job: job({ Resource_List: { select: '1:ncpus=1' } }) },
        server,
        config_file: site,
        resourcedef: ['magrathea', 'magrathea_state', 'magrathea_rank'],
      }),
    ],
    [
      'queuejob: no hook config (never blocks)',
      () => ({
        event: { type: 'QUEUEJOB', requestor: 'alice', job: job({ Resource_List: { select: '1:ncpus=1' } }) },
        server,
        config_file: path.join(dir, 'missing.json'),
      }),
    ],
    [
      'modifyjob: a user names magrathea',
      () => ({
        event: {
          type: 'MODIFYJOB',
          requestor: 'alice',
          requestor_host: 'login1',
          job: { Resource_List: { select: '1:ncpus=1:magrathea=priority' } },
        },
        server,
        config_file: site,
      }),
    ],
    [
      'modifyjob: a manager may',
      () => ({
        event: {
          type: 'MODIFYJOB',
          requestor: 'admin',
          requestor_host: 'login1',
          job: { Resource_List: { magrathea: 'priority' } },
        },
        server,
        config_file: site,
      }),
    ],
    // movejob is not here: pbs_python --hook cannot build a movejob's job object offline; the live suite covers qmove.
    [
      'resvsub: a reservation naming magrathea',
      () => ({
        event: {
          type: 'RESVSUB',
          requestor: 'alice',
          resv: { Resource_List: { select: '1:ncpus=1:magrathea=priority' } },
        },
        server,
        config_file: site,
      }),
    ],
    ['execjob_begin: accepted (domains publish)', () => begin('1.pbs', () => siteMom)],
    ['execjob_begin: refused, occupied (domains publish)', () => begin('2.pbs', () => siteEgee)],
    ['execjob_begin: daemon unreachable (filter publishes)', () => begin('3.pbs', () => siteDown)],
    [
      'execjob_begin: no domain config',
      () => begin('4.pbs', () => cfg('site-nodom', { domain_config: path.join(dir, 'none.json') })),
    ],
    ['execjob_begin: a sister of a two-host job', () => begin('5.pbs', () => siteMom, '(vb:ncpus=1)+(va:ncpus=2)')],
    [
      'execjob_end: the accepted job ends',
      () => ({
        event: {
          type: 'EXECJOB_END',
          requestor: 'pbs_mom',
          job: { id: '1.pbs', queue: 'workq' },
          vnode_list: { va: {} },
        },
        local_nodename: 'va',
        config_file: siteMom,
      }),
    ],
    [
      'exechost_periodic: publishes the domain',
      () => ({
        event: { type: 'EXECHOST_PERIODIC', vnode_list: { va: {} } },
        local_nodename: 'va',
        config_file: siteMom,
      }),
    ],
    [
      'exechost_periodic: with the filter publishing, writes nothing',
      () => ({ event: { type: 'EXECHOST_PERIODIC', vnode_list: { va: {} } }, local_nodename: 'va', config_file: site }),
    ],
  ];

  test.each(scenarios.map(([name, s], i) => [name, s, i] as const))('%s', async (_name, make, i) => {
    const s = make();
    // The real module runs first: begin/end change the daemon's state, so each runs once per side in order.
    const real = await fromReal(s, dir, i);
    if (s.event.type === 'EXECJOB_BEGIN' || s.event.type === 'EXECJOB_END') {
      // Undo what the real run did at the daemon, so the double meets the same state.
      const id = String((s.event.job as Record<string, unknown>).id);
      if (s.event.type === 'EXECJOB_BEGIN' && real.outcome === 'accept')
        await runHook({
          event: { type: 'EXECJOB_END', job: { id, queue: 'workq' }, vnode_list: { va: {} } },
          local_nodename: 'va',
          config_file: s.config_file ?? null,
        });
      if (s.event.type === 'EXECJOB_END') await runHook(begin(id, () => siteMom));
    }
    const double = fromDouble(await runHook(s));
    expect(double).toEqual(real);
  });
});
