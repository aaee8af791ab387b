/**
 * Deploys Magrathea on the lab the way docs/pbs-site-setup.md says: one magrathead per physical
 * node (cgroup driver, one domain per lab mom, hook API on the bridge), each domain's
 * /etc/magrathea/domain.json and token inside its mom's namespace, `magrathea pbs install` with the
 * real qmgr, and magrathea-filter publishing through the real qmgr/qsig.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, ROOT, spawnDaemon, spawnFilter, tmpDir } from '../helpers/processes';
import type { CliResult, DaemonProcess, FilterProcess } from '../helpers/processes';
import {
  BRIDGE_IP,
  CGROUP_ROOT,
  cleanJobs,
  DOMAINS,
  NODES,
  PBS_BIN,
  recreateStuckVnodes,
  SCHED_CONFIG,
  thawAll,
  until,
} from './lab';

export const HOOK_FILE = path.join(ROOT, 'packages/pbs-hooks/hooks/magrathea_hook.py');
const MOM_PREFIX = '/var/lib/magrathea-pbslab/mom-in-cgroup.sh';

export type Mode = 'throttle' | 'pause';

export interface DeployOptions {
  /** Preemption mode of each node's `meta` domain (default throttle). */
  readonly metaMode?: Mode;
  /** Extra filter `pbs:` settings. */
  readonly filterPbs?: Record<string, unknown>;
  readonly graceMs?: number;
  /** Extra YAML fields of a domain's entry in its node's config (e.g. `wakeOnDemand: true`). */
  readonly domainFields?: (node: string, domain: string) => readonly string[];
  /** CPU-counting mode with this many CPUs per node (default: exclusive mode). */
  readonly cpuCounting?: number;
}

export interface Deployment {
  readonly dir: string;
  readonly siteFile: string;
  readonly daemons: Record<string, DaemonProcess>;
  filter: FilterProcess | null;
  /** `magrathea ARGS` (the CLI binary). */
  cli(args: readonly string[], timeoutMs?: number): Promise<CliResult>;
  /** Starts the node daemon of `node` again on the same state directory (after a stop or kill). */
  restartDaemon(node: string): Promise<DaemonProcess>;
  startFilter(): Promise<FilterProcess>;
  /** Stops daemons and filter (domains, i.e. the moms, keep running). */
  stop(): Promise<void>;
}

export const vnodeName = (node: string, domain: string): string => `${node}-${domain}`;

function daemonConfig(dir: string, node: string, opts: DeployOptions): string {
  const domains = DOMAINS.map((d) => {
    const cmd = `hostname ${vnodeName(node, d)}; exec ${MOM_PREFIX} /opt/pbs/sbin/pbs_mom`;
    return [
      `  - name: ${d}`,
      `    class: ${d === 'priv' ? 'priority' : 'normal'}`,
      `    image: ${d === 'egee' ? 'egee' : 'meta'}`,
      `    preemption: ${d === 'meta' ? (opts.metaMode ?? 'throttle') : 'throttle'}`,
      `    tokenFile: ${path.join(dir, node, `${d}.token`)}`,
      `    command: ${JSON.stringify(['ip', 'netns', 'exec', `ns-${vnodeName(node, d)}`, 'unshare', '--uts', 'sh', '-c', cmd])}`,
      ...(opts.domainFields?.(node, d) ?? []).map((f) => `    ${f}`),
    ].join('\n');
  });
  return [
    `node: { name: ${node} }`,
    `hookApi: { listen: "${BRIDGE_IP}:0", allowNonLoopback: true }`,
    `heartbeatMs: 500`,
    `driver:`,
    `  kind: cgroup`,
    `  cgroup: { root: ${CGROUP_ROOT}-${node} }`,
    ...(opts.cpuCounting ? [`cpuCounting: { cpus: ${opts.cpuCounting} }`] : []),
    `domains:`,
    ...domains,
    '',
  ].join('\n');
}

function filterConfig(dir: string, opts: DeployOptions): string {
  const pbs = {
    qmgr: path.join(PBS_BIN, 'qmgr'),
    qsig: path.join(PBS_BIN, 'qsig'),
    qstat: path.join(PBS_BIN, 'qstat'),
    pbsnodes: path.join(PBS_BIN, 'pbsnodes'),
    reassertIntervalMs: 2000,
    accountingRecheckMs: 1000,
    ...opts.filterPbs,
  };
  return [
    'nodes:',
    ...NODES.map((n) => `  - { name: ${n}, address: "unix:${path.join(dir, n, 'state', 'd.sock')}" }`),
    `graceMs: ${opts.graceMs ?? 3000}`,
    `pbs: ${JSON.stringify(pbs)}`,
    'listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }',
    'log: { level: debug }',
    '',
  ].join('\n');
}

export function siteConfig(dir: string, extra = ''): string {
  return [
    `hookFile: ${HOOK_FILE}`,
    `hookConfigFile: ${path.join(dir, 'magrathea_hook.json')}`,
    'publishFromMom: false',
    'hookDeleteWaitSeconds: 90',
    'images:',
    '  - { name: meta, queues: [workq] }',
    '  - { name: egee, queues: [egee] }',
    extra,
    '',
  ].join('\n');
}

/** Every mom holds the current hook script and config (the server pushes them asynchronously). */
export async function hooksOnMoms(dir: string): Promise<void> {
  const script = fs.readFileSync(HOOK_FILE, 'utf8');
  const cfg = fs.readFileSync(path.join(dir, 'magrathea_hook.json'), 'utf8');
  await until(
    () =>
      NODES.every((n) =>
        DOMAINS.every((d) => {
          const h = `/var/spool/pbs-dom/${vnodeName(n, d)}/mom_priv/hooks`;
          try {
            return (
              ['magrathea_begin', 'magrathea_end'].every((k) => fs.readFileSync(`${h}/${k}.PY`, 'utf8') === script) &&
              fs.readFileSync(`${h}/magrathea_begin.CF`, 'utf8') === cfg
            );
          } catch {
            return false;
          }
        }),
      ),
    'the hooks reached every mom',
    60_000,
    500,
  );
}

export async function install(dir: string, siteFile: string): Promise<CliResult> {
  const r = await cli(
    ['pbs', 'install', '--config', siteFile, '--qmgr', path.join(PBS_BIN, 'qmgr'), '--sched-config', SCHED_CONFIG],
    180_000,
  );
  if (r.code === 0) await hooksOnMoms(dir);
  return r;
}

async function startDaemon(dir: string, node: string, opts: DeployOptions): Promise<DaemonProcess> {
  const stateDir = path.join(dir, node, 'state');
  const d = await spawnDaemon({ stateDir, config: daemonConfig(dir, node, opts) });
  const ready = d.logs.find((l) => l.msg === 'magrathead ready') ?? {};
  const hookPort = Number(ready.hookPort);
  // Each domain's own file inside its mom's namespace (/etc/netns/ns-X/magrathea = /etc/magrathea there).
  for (const dom of DOMAINS) {
    const etc = `/etc/netns/ns-${vnodeName(node, dom)}/magrathea`;
    fs.mkdirSync(etc, { recursive: true, mode: 0o700 });
    fs.copyFileSync(path.join(dir, node, `${dom}.token`), path.join(etc, 'token'));
    fs.chmodSync(path.join(etc, 'token'), 0o600);
    fs.writeFileSync(
      path.join(etc, 'domain.json'),
      JSON.stringify({
        daemon_url: `http://${BRIDGE_IP}:${hookPort}`,
        domain: dom,
        token_file: '/etc/magrathea/token',
      }),
      { mode: 0o600 },
    );
  }
  return d;
}

/** Tokens, daemons, `magrathea pbs install`, filter. Throws (after cleaning up) if a step fails. */
export async function deploy(opts: DeployOptions = {}): Promise<Deployment> {
  const dir = tmpDir('mg-pbslab-');
  for (const n of NODES) {
    fs.mkdirSync(path.join(dir, n), { recursive: true });
    for (const d of DOMAINS)
      fs.writeFileSync(
        path.join(dir, n, `${d}.token`),
        `${n}-${d}-${Math.random().toString(36).slice(2)}${Date.now()}`,
        {
          mode: 0o600,
        },
      );
  }
  const daemons: Record<string, DaemonProcess> = {};
  const dep: Deployment = {
    dir,
    siteFile: path.join(dir, 'site.yaml'),
    daemons,
    filter: null,
    cli: (args, timeoutMs) => cli(args, timeoutMs),
    restartDaemon: async (node) => {
      daemons[node] = await startDaemon(dir, node, opts);
      return daemons[node];
    },
    startFilter: async () => {
      fs.writeFileSync(path.join(dir, 'filter.yaml'), filterConfig(dir, opts));
      dep.filter = await spawnFilter(path.join(dir, 'filter.yaml'));
      return dep.filter;
    },
    stop: async () => {
      await dep.filter?.stop();
      dep.filter = null;
      for (const d of Object.values(daemons))
        if (d.proc.exitCode === null && d.proc.signalCode === null) await d.stop();
    },
  };
  try {
    for (const n of NODES) daemons[n] = await startDaemon(dir, n, opts);
    fs.writeFileSync(dep.siteFile, siteConfig(dir));
    const r = await install(dir, dep.siteFile);
    if (r.code !== 0) throw new Error(`magrathea pbs install failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    await dep.startFilter();
    return dep;
  } catch (err) {
    await dep.stop().catch(() => undefined);
    throw err;
  }
}

/** A suite's start: the lab cleared of what an earlier suite left (frozen groups, jobs, stuck vnodes), then deployed. */
export async function deployOnCleanLab(opts: DeployOptions = {}): Promise<Deployment> {
  thawAll();
  await cleanJobs();
  await recreateStuckVnodes();
  return deploy(opts);
}

/** A suite's end: its jobs gone, daemons and filter stopped, every group thawed. */
export async function undeploy(dep: Deployment | undefined): Promise<void> {
  await cleanJobs().catch(() => undefined);
  await dep?.stop();
  thawAll();
}
