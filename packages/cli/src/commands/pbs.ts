/** `magrathea pbs install|uninstall`: deploy the hooks, resources and queues on a PBS site. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import type { SiteConfig } from '@magrathea/pbs-hooks';
import {
  editSchedConfig,
  hookConfigJson,
  installCommands,
  loadSiteConfig,
  schedConfigLines,
  SiteConfigError,
  uninstallCommands,
} from '@magrathea/pbs-hooks';
import { CliError, EXIT } from '../client';
import type { Io } from '../output';

interface PbsOptions {
  config?: string;
  dryRun?: boolean;
  qmgr: string;
  schedConfig?: string;
}

function site(file: string | undefined): SiteConfig {
  try {
    return loadSiteConfig(file);
  } catch (err) {
    if (err instanceof SiteConfigError) throw new CliError(err.message, EXIT.usage);
    throw err;
  }
}

/** Runs qmgr once with every command on stdin. */
function runQmgr(qmgr: string, commands: readonly string[], timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(qmgr, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new CliError(`${qmgr} did not finish within ${timeoutMs / 1000} s`, EXIT.error));
    }, timeoutMs);
    p.on('error', (err) => {
      clearTimeout(t);
      reject(new CliError(`cannot run ${qmgr}: ${err.message}`, EXIT.error));
    });
    p.on('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve();
      else reject(new CliError(`${qmgr} exited with ${code}:\n${out.trim()}`, EXIT.error));
    });
    p.stdin.end(commands.map((c) => `${c}\n`).join(''));
  });
}

const shellQuote = (cmd: string): string => `qmgr -c '${cmd}'`;

export function addPbsCommands(program: Command, io: Io): void {
  const pbs = program
    .command('pbs')
    .description('deploy Magrathea on a PBS site (hooks, resources, queues, sched_config)');
  const common = (c: Command): Command =>
    c
      .option('--config <file>', 'PBS site configuration (YAML; see docs/pbs-site-setup.md)')
      .option('--dry-run', 'print what would be done, change nothing')
      .option('--qmgr <path>', 'the qmgr executable', 'qmgr')
      .option('--sched-config <file>', 'edit this sched_config in place (a .magrathea.bak copy is kept)');

  common(pbs.command('install').description('create the resources, queue defaults and hooks')).action(
    async (o: PbsOptions) => {
      const s = site(o.config);
      const cmds = installCommands(s);
      const cfg = `${JSON.stringify(hookConfigJson(s), null, 2)}\n`;
      if (o.dryRun) {
        io.out(`# hook config written to ${s.hookConfigFile}:`);
        for (const line of cfg.trimEnd().split('\n')) io.out(`#   ${line}`);
        for (const c of cmds) io.out(shellQuote(c));
        io.out(`# sched_config (${o.schedConfig ?? '$PBS_HOME/sched_priv/sched_config'}), then SIGHUP pbs_sched:`);
        for (const l of schedConfigLines(s)) io.out(`#   ${l}`);
        return;
      }
      fs.mkdirSync(path.dirname(s.hookConfigFile), { recursive: true });
      fs.writeFileSync(s.hookConfigFile, cfg, { mode: 0o644 });
      await runQmgr(o.qmgr, cmds);
      io.out(`installed: ${cmds.length} qmgr commands; hook config ${s.hookConfigFile}`);
      if (o.schedConfig) {
        const text = fs.readFileSync(o.schedConfig, 'utf8');
        fs.writeFileSync(`${o.schedConfig}.magrathea.bak`, text);
        fs.writeFileSync(o.schedConfig, editSchedConfig(text));
        io.out(`edited ${o.schedConfig} (backup ${o.schedConfig}.magrathea.bak); now send SIGHUP to pbs_sched`);
      } else {
        io.out('add to sched_config, then send SIGHUP to pbs_sched:');
        for (const l of schedConfigLines(s)) io.out(`  ${l}`);
      }
    },
  );

  common(pbs.command('uninstall').description('remove the hooks, queue defaults and resources')).action(
    async (o: PbsOptions) => {
      const s = site(o.config);
      const cmds = uninstallCommands(s);
      if (o.dryRun) {
        for (const c of cmds) io.out(shellQuote(c));
        io.out('# sched_config: remove magrathea from resources: and the magrathea_rank node_sort_key line');
        return;
      }
      await runQmgr(o.qmgr, cmds);
      io.out(`uninstalled: ${cmds.length} qmgr commands`);
      if (o.schedConfig && fs.existsSync(`${o.schedConfig}.magrathea.bak`)) {
        fs.copyFileSync(`${o.schedConfig}.magrathea.bak`, o.schedConfig);
        io.out(`restored ${o.schedConfig} from its backup; now send SIGHUP to pbs_sched`);
      }
    },
  );
}
