/**
 * Runs the install and uninstall plans against a PBS server, step by step, and says what each
 * step did: done, unchanged (nothing to do), kept (in use, with the reason), failed (with PBS's
 * message) or skipped (an earlier step of the same hook or queue failed). Also edits sched_config
 * (our lines only; the original is kept once as `<file>.magrathea.orig`) and tells pbs_sched.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Observed, Plan, Step } from './installer';
import { editSchedConfig, hookConfigJson, planInstall, planUninstall, unEditSchedConfig } from './installer';
import type { RunQmgr } from './qmgr';
import { listObjects } from './qmgr';
import type { SiteConfig } from './site-config';

export type StepStatus = 'done' | 'unchanged' | 'kept' | 'failed' | 'skipped' | 'planned';

export interface StepOutcome {
  /** What the step is about (`hook magrathea_begin`, `queue iprio`, `sched_config`, …). */
  readonly group: string;
  readonly command: string;
  readonly status: StepStatus;
  readonly detail: string;
}

export interface DeployReport {
  readonly outcomes: readonly StepOutcome[];
  /** True when nothing failed. */
  readonly ok: boolean;
}

export interface DeployDeps {
  readonly run: RunQmgr;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
  /** Sends SIGHUP to pbs_sched (main.ts passes process.kill). */
  readonly signal: (pid: number, signal: 'SIGHUP') => void;
}

export interface DeployOptions {
  /** The scheduler's sched_config to edit, or null to leave it (the lines are reported). */
  readonly schedConfig: string | null;
  readonly dryRun: boolean;
}

/** What install created, kept beside the hook config so uninstall removes only that. */
interface InstallRecord {
  readonly createdQueues: string[];
}

function recordFile(site: SiteConfig): string {
  return path.join(path.dirname(site.hookConfigFile), 'pbs-install.json');
}

function readRecord(site: SiteConfig): InstallRecord {
  try {
    const o = JSON.parse(fs.readFileSync(recordFile(site), 'utf8')) as Partial<InstallRecord>;
    return {
      createdQueues: Array.isArray(o.createdQueues) ? o.createdQueues.filter((q) => typeof q === 'string') : [],
    };
  } catch {
    return { createdQueues: [] };
  }
}

/** Writes a file atomically (temp file, fsync, rename). */
function writeAtomic(file: string, text: string, mode: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Reads what the server holds now. */
export async function observe(run: RunQmgr): Promise<Observed> {
  const [resources, queues, hooks, servers] = [
    await listObjects(run, 'resource'),
    await listObjects(run, 'queue'),
    await listObjects(run, 'hook'),
    await listObjects(run, 'server'),
  ];
  return { resources, queues, hooks, server: [...servers.values()][0] ?? {} };
}

async function runStep(step: Step, deps: DeployDeps, waitSeconds: number): Promise<StepOutcome> {
  const until = deps.now() + waitSeconds * 1000;
  for (;;) {
    const r = await deps.run(step.command);
    if (r.ok) return { group: step.group, command: step.command, status: 'done', detail: '' };
    if (step.okIf?.test(r.error))
      return { group: step.group, command: step.command, status: 'unchanged', detail: r.error };
    if (step.keepIf?.pattern.test(r.error))
      return {
        group: step.group,
        command: step.command,
        status: 'kept',
        detail: `${step.keepIf.note} (PBS: ${r.error})`,
      };
    if (step.retryWhile?.test(r.error) && deps.now() < until) {
      await deps.sleep(1000);
      continue;
    }
    const waited = step.retryWhile?.test(r.error)
      ? ` (waited ${waitSeconds} s: a mom that is down or has not dropped the old hook keeps the name pending)`
      : '';
    return { group: step.group, command: step.command, status: 'failed', detail: `${r.error}${waited}` };
  }
}

async function runPlan(plan: Plan, deps: DeployDeps, opts: DeployOptions, waitSeconds: number): Promise<StepOutcome[]> {
  const out: StepOutcome[] = plan.problems.map((p) => ({
    group: p.group,
    command: '',
    status: 'failed' as const,
    detail: p.message,
  }));
  const failedGroups = new Set<string>();
  for (const s of plan.steps) {
    if (opts.dryRun) {
      out.push({ group: s.group, command: s.command, status: 'planned', detail: '' });
      continue;
    }
    if (failedGroups.has(s.group)) {
      out.push({
        group: s.group,
        command: s.command,
        status: 'skipped',
        detail: 'an earlier step of this group failed',
      });
      continue;
    }
    const o = await runStep(s, deps, waitSeconds);
    if (o.status === 'failed' || o.status === 'kept') failedGroups.add(s.group);
    out.push(o);
  }
  return out;
}

/** The scheduler's pid from its lock file beside sched_config (PBS_HOME/sched_priv/sched.lock). */
function schedulerPid(schedConfig: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(path.dirname(schedConfig), 'sched.lock'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

function editSchedConfigFile(
  file: string,
  edit: (text: string) => string,
  deps: DeployDeps,
  opts: DeployOptions,
  backup: boolean,
): StepOutcome {
  const g = 'sched_config';
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return { group: g, command: `edit ${file}`, status: 'failed', detail: `cannot read: ${(err as Error).message}` };
  }
  const next = edit(text);
  if (next === text) return { group: g, command: `edit ${file}`, status: 'unchanged', detail: 'already as needed' };
  if (opts.dryRun) return { group: g, command: `edit ${file}`, status: 'planned', detail: '' };
  try {
    const orig = `${file}.magrathea.orig`;
    // The site's original is kept once: a later install must not overwrite it with our edit.
    if (backup && !fs.existsSync(orig)) writeAtomic(orig, text, 0o644);
    writeAtomic(file, next, fs.statSync(file).mode & 0o777);
  } catch (err) {
    return { group: g, command: `edit ${file}`, status: 'failed', detail: (err as Error).message };
  }
  const pid = schedulerPid(file);
  if (pid === null)
    return {
      group: g,
      command: `edit ${file}`,
      status: 'done',
      detail: 'pbs_sched not found beside it: send it SIGHUP',
    };
  try {
    deps.signal(pid, 'SIGHUP');
    return { group: g, command: `edit ${file}`, status: 'done', detail: `pbs_sched (pid ${pid}) re-read it` };
  } catch (err) {
    return {
      group: g,
      command: `edit ${file}`,
      status: 'done',
      detail: `send pbs_sched (pid ${pid}) SIGHUP: ${(err as Error).message}`,
    };
  }
}

export async function install(site: SiteConfig, deps: DeployDeps, opts: DeployOptions): Promise<DeployReport> {
  const obs = await observe(deps.run);
  const plan = planInstall(site, obs);
  const outcomes: StepOutcome[] = [];
  const cfg = `${JSON.stringify(hookConfigJson(site), null, 2)}\n`;
  let cfgOk = true;
  if (opts.dryRun)
    outcomes.push({ group: 'hook config', command: `write ${site.hookConfigFile}`, status: 'planned', detail: '' });
  else {
    try {
      writeAtomic(site.hookConfigFile, cfg, 0o644);
      outcomes.push({ group: 'hook config', command: `write ${site.hookConfigFile}`, status: 'done', detail: '' });
    } catch (err) {
      cfgOk = false;
      outcomes.push({
        group: 'hook config',
        command: `write ${site.hookConfigFile}`,
        status: 'failed',
        detail: (err as Error).message,
      });
    }
  }
  if (cfgOk) outcomes.push(...(await runPlan(plan, deps, opts, site.hookDeleteWaitSeconds)));
  if (!opts.dryRun) {
    const created = plan.createsQueues.filter((q) =>
      outcomes.some((o) => o.command === `create queue ${q} queue_type=execution` && o.status === 'done'),
    );
    const rec = readRecord(site);
    const createdQueues = [...new Set([...rec.createdQueues, ...created])];
    try {
      writeAtomic(recordFile(site), `${JSON.stringify({ createdQueues }, null, 2)}\n`, 0o644);
    } catch (err) {
      outcomes.push({
        group: 'install record',
        command: `write ${recordFile(site)}`,
        status: 'failed',
        detail: (err as Error).message,
      });
    }
  }
  if (opts.schedConfig) outcomes.push(editSchedConfigFile(opts.schedConfig, editSchedConfig, deps, opts, true));
  return { outcomes, ok: outcomes.every((o) => o.status !== 'failed') };
}

export async function uninstall(site: SiteConfig, deps: DeployDeps, opts: DeployOptions): Promise<DeployReport> {
  const outcomes: StepOutcome[] = [];
  // sched_config first: whatever PBS refuses below, the scheduler stops matching on magrathea.
  if (opts.schedConfig) outcomes.push(editSchedConfigFile(opts.schedConfig, unEditSchedConfig, deps, opts, false));
  const obs = await observe(deps.run);
  const rec = readRecord(site);
  outcomes.push(
    ...(await runPlan(planUninstall(site, obs, rec.createdQueues), deps, opts, site.hookDeleteWaitSeconds)),
  );
  if (!opts.dryRun) {
    const stillThere = rec.createdQueues.filter(
      (q) =>
        !outcomes.some((o) => o.command === `delete queue ${q}` && (o.status === 'done' || o.status === 'unchanged')),
    );
    try {
      writeAtomic(recordFile(site), `${JSON.stringify({ createdQueues: stillThere }, null, 2)}\n`, 0o644);
    } catch {
      // Best effort: the record only narrows what uninstall deletes.
    }
  }
  return { outcomes, ok: outcomes.every((o) => o.status !== 'failed') };
}
