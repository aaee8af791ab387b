/** `magrathea pbs install|uninstall|verify`: deploy Magrathea on a PBS site, and check it. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { Command } from 'commander';
import type { DeployReport, SiteConfig } from '@magrathea/pbs-hooks';
import {
  createQmgr,
  recreateVnode,
  refuseRecreate,
  install,
  loadSiteConfig,
  planInstall,
  NOTHING_OBSERVED,
  QmgrUnavailableError,
  schedConfigLines,
  SiteConfigError,
  uninstall,
} from '@magrathea/pbs-hooks';
import { CliError, EXIT } from '../client';
import type { Io } from '../output';
import type { ProgramDeps } from '../program';
import { addVerifyCommand } from './pbs-verify';

export interface PbsOptions {
  config?: string;
  dryRun?: boolean;
  json?: boolean;
  qmgr: string;
  schedConfig?: string;
}

export function siteOf(file: string | undefined): SiteConfig {
  try {
    return loadSiteConfig(file);
  } catch (err) {
    if (err instanceof SiteConfigError) throw new CliError(err.message, EXIT.usage);
    throw err;
  }
}

/** PBS_HOME's sched_config when this host is the PBS server (read from /etc/pbs.conf). */
export function defaultSchedConfig(): string | null {
  try {
    const conf = fs.readFileSync('/etc/pbs.conf', 'utf8');
    const home = /^PBS_HOME=(.+)$/m.exec(conf)?.[1]?.trim();
    const file = `${home ?? '/var/spool/pbs'}/sched_priv/sched_config`;
    return fs.existsSync(file) ? file : null;
  } catch {
    return null;
  }
}

const MARK: Record<string, string> = {
  done: 'ok  ',
  unchanged: 'same',
  kept: 'KEPT',
  failed: 'FAIL',
  skipped: 'skip',
  planned: 'plan',
};

function printReport(io: Io, what: string, r: DeployReport, json: boolean): void {
  if (json) {
    io.out(JSON.stringify({ ok: r.ok, steps: r.outcomes }));
    return;
  }
  for (const o of r.outcomes) {
    const detail = o.detail ? ` — ${o.detail}` : '';
    const line = `${MARK[o.status] ?? o.status} ${o.group}: ${o.command || '(not run)'}${detail}`;
    // A planned file write or sched_config edit is no qmgr command: shown as a shell comment.
    if (o.status === 'planned') io.out(/^(write|edit) /.test(o.command) ? `# ${o.command}` : `qmgr -c '${o.command}'`);
    else io.out(line);
  }
  const n = (s: string): number => r.outcomes.filter((o) => o.status === s).length;
  if (r.outcomes.some((o) => o.status !== 'planned'))
    io.out(
      `${what}: ${n('done')} done, ${n('unchanged')} unchanged, ${n('kept')} kept, ${n('failed')} failed, ${n('skipped')} skipped`,
    );
}

export function addPbsCommands(program: Command, deps: ProgramDeps): void {
  const { io } = deps;
  const pbs = program
    .command('pbs')
    .description('deploy Magrathea on a PBS site (hooks, resources, queues, sched_config) and check it');
  const common = (c: Command): Command =>
    c
      .option('--config <file>', 'PBS site configuration (YAML; see docs/pbs-site-setup.md)')
      .option('--dry-run', 'print what would be done, change nothing')
      .option('--json', 'print the report as JSON')
      .option('--qmgr <path>', 'the qmgr executable', 'qmgr')
      .option(
        '--sched-config <file>',
        'the scheduler sched_config to edit (default: PBS_HOME/sched_priv/sched_config when it exists here)',
      );

  const runDeploy = async (o: PbsOptions, what: 'install' | 'uninstall', fn: typeof install): Promise<void> => {
    const site = siteOf(o.config);
    const run = createQmgr({ qmgr: o.qmgr, server: site.server, timeoutMs: 60_000 });
    const schedConfig = o.schedConfig ?? defaultSchedConfig();
    let report: DeployReport;
    try {
      report = await fn(
        site,
        { run, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), now: () => Date.now(), signal: deps.signal },
        {
          schedConfig,
          dryRun: o.dryRun === true,
        },
      );
    } catch (err) {
      if (!(err instanceof QmgrUnavailableError)) throw err;
      if (!o.dryRun || what !== 'install') throw new CliError(err.message, EXIT.unavailable);
      // A dry run away from the server shows what a fresh install would do.
      io.err(`# ${err.message}; showing a fresh install`);
      const plan = planInstall(site, NOTHING_OBSERVED);
      report = {
        ok: true,
        outcomes: plan.steps.map((s) => ({ group: s.group, command: s.command, status: 'planned', detail: '' })),
      };
    }
    printReport(io, what, report, o.json === true);
    if (!schedConfig && what === 'install' && !o.json) {
      io.out("no sched_config here: add these lines to the scheduler's sched_config, then send pbs_sched SIGHUP:");
      for (const l of schedConfigLines(site)) io.out(`  ${l}`);
    }
    if (!report.ok) throw new CliError(`${what}: PBS refused some steps (see above)`, EXIT.pbsRefused);
  };

  common(pbs.command('install').description('create or update the resources, queues, defaults and hooks')).action(
    (o: PbsOptions) => runDeploy(o, 'install', install),
  );
  common(
    pbs.command('uninstall').description('remove the hooks, defaults, queues and resources install created'),
  ).action((o: PbsOptions) => runDeploy(o, 'uninstall', uninstall));
  addVerifyCommand(pbs, deps);

  pbs
    .command('recreate-vnode <vnode>')
    .description('delete a vnode PBS keeps in maintenance and create it again as it was (refused while it runs jobs)')
    .option('--qmgr <path>', 'the qmgr executable', 'qmgr')
    .option('--pbsnodes <path>', 'the pbsnodes executable', 'pbsnodes')
    .option('--config <file>', 'PBS site configuration (for the PBS server name)')
    .option('--dry-run', 'print the qmgr commands, change nothing')
    .option('--wait <seconds>', 'wait this long for the vnode to be up again', '60')
    .action(
      async (vnode: string, o: { qmgr: string; pbsnodes: string; config?: string; dryRun?: boolean; wait: string }) => {
        if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(vnode)) throw new CliError(`${vnode}: not a vnode name`, EXIT.usage);
        const site = siteOf(o.config);
        const read = async (): Promise<Record<string, unknown> | null> => {
          const r = await runTool(o.pbsnodes, ['-v', vnode, '-F', 'json']);
          try {
            const n = (JSON.parse(r.stdout) as { nodes?: Record<string, Record<string, unknown>> }).nodes?.[vnode];
            return n ?? null;
          } catch {
            return null;
          }
        };
        const n = await read();
        if (!n) throw new CliError(`${vnode}: PBS knows no such vnode (pbsnodes -v ${vnode})`, EXIT.notFound);
        const list = (v: unknown): string[] =>
          Array.isArray(v) ? v.map(String) : typeof v === 'string' && v ? v.split(',') : [];
        const ra = (n.resources_available ?? {}) as Record<string, unknown>;
        const facts = {
          mom: typeof n.Mom === 'string' ? n.Mom : vnode,
          port: typeof n.Port === 'number' ? n.Port : null,
          host: typeof ra.host === 'string' ? ra.host : vnode,
          jobs: list(n.jobs),
          reservations: list(n.resv),
        };
        const why = refuseRecreate(facts);
        if (why) throw new CliError(`${vnode} is not re-created: ${why}`, EXIT.refused);
        const run = createQmgr({ qmgr: o.qmgr, server: site.server, timeoutMs: 60_000 });
        const r = await recreateVnode(run, vnode, facts, o.dryRun === true);
        for (const c of r.commands) io.out(o.dryRun ? `qmgr -c '${c}'` : `ok   ${c}`);
        if (r.error) throw new CliError(`re-creating ${vnode} failed: ${r.error}`, EXIT.pbsRefused);
        if (o.dryRun) return;
        const until = Date.now() + Number(o.wait) * 1000;
        for (;;) {
          const st = (await read())?.state;
          const state = typeof st === 'string' ? st : '';
          if (state && !/down|maintenance|state-unknown/.test(state)) {
            io.out(`${vnode} is back: ${state}`);
            return;
          }
          if (Date.now() > until)
            throw new CliError(
              `${vnode} re-created but not up after ${o.wait} s (state ${state || 'unknown'})`,
              EXIT.error,
            );
          await new Promise((res) => setTimeout(res, 500));
        }
      },
    );
}

/** Runs a PBS client to completion (stdout, exit code). */
function runTool(file: string, args: readonly string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const p = spawn(file, [...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.on('error', () => resolve({ code: null, stdout }));
    p.on('close', (code) => resolve({ code, stdout }));
  });
}
