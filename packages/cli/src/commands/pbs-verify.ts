/**
 * `magrathea pbs verify`: checks a site after install — resources and their flags, sched_config,
 * hooks (events, alarm, order, fail_action, pushed to the moms), queue and server defaults, every
 * vnode of magrathea-filter present in PBS with the published values and every daemon reachable;
 * with `--submit`, one short probe job per image and job class, checking where it ran.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import type { Check, FilterVnode, PbsVnode, SiteConfig } from '@magrathea/pbs-hooks';
import {
  checkHooksPushed,
  checkSchedConfig,
  checkServer,
  checkVnodes,
  createQmgr,
  observe,
  parsePbsnodesJson,
  QmgrUnavailableError,
} from '@magrathea/pbs-hooks';
import { CliError, EXIT } from '../client';
import type { ProgramDeps } from '../program';
import { listFilterNodes } from './cluster';
import { defaultSchedConfig, siteOf } from './pbs';

interface VerifyOptions {
  config?: string;
  qmgr: string;
  pbsnodes: string;
  qsub: string;
  qstat: string;
  qdel?: string;
  schedConfig?: string;
  filter?: string;
  submit?: boolean;
  user?: string;
  probeTimeout: string;
  json?: boolean;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runCmd(file: string, args: readonly string[], timeoutMs: number, stdinOpen = false): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(file, [...args], { stdio: [stdinOpen ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: null, stdout, stderr: e.message });
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

const readOrNull = (file: string | null): string | null => {
  if (!file) return null;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
};

/** A JSON scalar as text ('' for anything else). */
const str = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

interface Probe {
  readonly name: string;
  readonly queue: string;
  readonly interactive: boolean;
  /** The vnode it ran on must be of this class, and of this image when given. */
  readonly jobClass: 'normal' | 'priority';
  readonly image: string | null;
}

export function probesOf(site: SiteConfig): Probe[] {
  const probes: Probe[] = [];
  if (site.images.length === 0 && site.normalQueues[0])
    probes.push({
      name: 'normal job',
      queue: site.normalQueues[0],
      interactive: false,
      jobClass: 'normal',
      image: null,
    });
  for (const img of site.images)
    if (img.queues[0])
      probes.push({
        name: `image ${img.name}`,
        queue: img.queues[0],
        interactive: false,
        jobClass: 'normal',
        image: img.name,
      });
  probes.push({
    name: 'interactive job',
    queue: site.priorityQueue,
    interactive: true,
    jobClass: 'priority',
    image: null,
  });
  return probes;
}

/** Submits a probe as `user` (a batch job, or `qsub -I` under script(1) for a terminal); returns its id. */
async function submitProbe(o: VerifyOptions, p: Probe, timeoutMs: number): Promise<{ id: string } | { error: string }> {
  const user = o.user as string;
  const qsub = `${o.qsub} -q ${p.queue} -l select=1:ncpus=1 -l walltime=00:01:00 -j oe -o /dev/null -N magrathea-probe`;
  if (!p.interactive) {
    const r = await runCmd('su', ['-', user, '-c', `${qsub} -- /bin/true`], 30_000);
    const id = r.stdout.trim().split('\n').pop() ?? '';
    return r.code === 0 && id ? { id } : { error: `qsub failed: ${(r.stderr || r.stdout).trim()}` };
  }
  // qsub -I needs a terminal and an open stdin: script(1) provides the terminal.
  const r = await runCmd(
    'script',
    ['-qec', `su - ${user} -c ${shq(`${qsub} -I -- /bin/true`)}`, '/dev/null'],
    timeoutMs,
    true,
  );
  const m = /job (\S+) (?:ready|to start)/.exec(`${r.stdout}\n${r.stderr}`);
  return m?.[1]
    ? { id: m[1] }
    : { error: `qsub -I: ${(r.stdout + r.stderr).trim().slice(0, 300) || `exit ${r.code}`}` };
}

/** What a probe that did not finish was doing, and where to look. */
function stuckDetail(id: string, job: Record<string, unknown> | undefined, seconds: number): string {
  const state = str(job?.job_state) || '?';
  const comment = str(job?.comment);
  const runs = Number(job?.run_count ?? 0);
  const parts = [`job ${id} did not finish within ${seconds} s (state ${state}${comment ? `: ${comment}` : ''})`];
  if (runs > 0 && state !== 'R')
    parts.push(
      `PBS sent it to a mom ${runs} time(s) and it was requeued: the execjob_begin hook refused it there — its reason is in that domain's mom log (PBS_HOME/mom_logs; e.g. the domain config or token cannot be read)`,
    );
  else if (/Insufficient amount of resource: magrathea/.test(comment))
    parts.push('no vnode offers its job class now: see resources_available.magrathea and the comments in pbsnodes -av');
  return parts.join('; ');
}

async function probeCheck(
  o: VerifyOptions,
  p: Probe,
  vnodeInfo: (vnode: string) => Promise<{ jobClass: string | null; image: string | null }>,
  timeoutMs: number,
): Promise<Check> {
  const check = `probe: ${p.name} (queue ${p.queue})`;
  // One time limit for the whole probe: submitting (qsub -I waits for its job to start) and running.
  const until = Date.now() + timeoutMs;
  const sub = await submitProbe(o, p, timeoutMs);
  if ('error' in sub) return { check, status: 'fail', detail: sub.error };
  for (;;) {
    const r = await runCmd(o.qstat, ['-x', '-f', '-F', 'json', '--', sub.id], 10_000);
    let job: Record<string, unknown> | undefined;
    try {
      job = (JSON.parse(r.stdout) as { Jobs?: Record<string, Record<string, unknown>> }).Jobs?.[sub.id];
    } catch {
      job = undefined;
    }
    if (job?.job_state === 'F') {
      const vnode = /^\(?([^:)]+)/.exec(str(job.exec_vnode))?.[1] ?? '';
      if (!vnode) return { check, status: 'fail', detail: `job ${sub.id} ended without running (${str(job.comment)})` };
      const info = await vnodeInfo(vnode);
      const problems: string[] = [];
      if (info.jobClass !== null && info.jobClass !== p.jobClass)
        problems.push(`a ${info.jobClass} domain, not ${p.jobClass}`);
      if (p.image !== null && info.image !== p.image) problems.push(`image ${info.image ?? '(none)'}, not ${p.image}`);
      if (Number(job.Exit_status) !== 0) problems.push(`exit status ${str(job.Exit_status)}`);
      return problems.length === 0
        ? { check, status: 'pass', detail: `job ${sub.id} ran on ${vnode}` }
        : { check, status: 'fail', detail: `job ${sub.id} ran on ${vnode}: ${problems.join('; ')}` };
    }
    if (Date.now() > until) {
      // A probe left queued or held would run (or sit) later, unwatched: take it out.
      const qdel = o.qdel ?? (o.qstat.includes('/') ? path.join(path.dirname(o.qstat), 'qdel') : 'qdel');
      const del = await runCmd(qdel, ['-W', 'force', '--', sub.id], 30_000);
      const gone = del.code === 0 || /Unknown Job Id|Job has finished/i.test(del.stderr);
      return {
        check,
        status: 'fail',
        detail: `${stuckDetail(sub.id, job, timeoutMs / 1000)}; ${gone ? 'the probe job was deleted' : `qdel of the probe failed: ${(del.stderr || del.stdout).trim().slice(0, 200)}`}`,
      };
    }
    await sleep(500);
  }
}

const MARK: Record<string, string> = { pass: 'ok  ', fail: 'FAIL', warn: 'warn', skip: 'skip' };

export function addVerifyCommand(pbs: Command, deps: ProgramDeps): void {
  pbs
    .command('verify')
    .description(
      'check the deployment: resources, sched_config, hooks, defaults, vnodes, daemons; --submit runs probe jobs',
    )
    .option('--config <file>', 'PBS site configuration (YAML)')
    .option('--qmgr <path>', 'the qmgr executable', 'qmgr')
    .option('--pbsnodes <path>', 'the pbsnodes executable', 'pbsnodes')
    .option('--qsub <path>', 'the qsub executable (run as --user)', 'qsub')
    .option('--qstat <path>', 'the qstat executable', 'qstat')
    .option('--qdel <path>', 'the qdel executable, to remove a probe that did not finish (default: beside --qstat)')
    .option('--sched-config <file>', 'the scheduler sched_config (default: PBS_HOME/sched_priv/sched_config here)')
    .option('--filter <addr>', 'magrathea-filter gRPC address: check every vnode against its daemon')
    .option('--submit', 'submit one probe job per image and job class and check where it ran')
    .option('--user <name>', 'the ordinary user that submits the probes (required with --submit)')
    // Not --timeout: that is the global option (each call to magrathead or magrathea-filter).
    .option('--probe-timeout <seconds>', 'time limit of each probe job, from qsub to its end', '120')
    .option('--json', 'print the checks as JSON')
    .action(async (o: VerifyOptions) => {
      const site = siteOf(o.config);
      const timeoutMs = Number(o.probeTimeout) * 1000;
      if (!Number.isFinite(timeoutMs) || timeoutMs < 1000)
        throw new CliError('--probe-timeout: a number of seconds ≥ 1', EXIT.usage);
      if (o.submit && !o.user)
        throw new CliError('--submit needs --user NAME (PBS refuses jobs from root)', EXIT.usage);
      const checks: Check[] = [];
      const run = createQmgr({ qmgr: o.qmgr, server: site.server, timeoutMs: 30_000 });
      try {
        checks.push(...checkServer(site, await observe(run)));
      } catch (err) {
        if (err instanceof QmgrUnavailableError) throw new CliError(err.message, EXIT.unavailable);
        throw err;
      }
      const schedConfig = o.schedConfig ?? defaultSchedConfig();
      checks.push(checkSchedConfig(readOrNull(schedConfig), schedConfig));
      const serverHome = schedConfig ? path.resolve(path.dirname(schedConfig), '..') : null;
      checks.push(
        checkHooksPushed(site, readOrNull(serverHome && path.join(serverHome, 'server_priv/hooks/tracking.TR'))),
      );
      const nodes = await runCmd(o.pbsnodes, ['-av', '-F', 'json'], 30_000);
      let pbsVnodes = new Map<string, PbsVnode>();
      try {
        pbsVnodes = parsePbsnodesJson(nodes.stdout);
      } catch {
        checks.push({
          check: 'vnodes',
          status: 'fail',
          detail: `pbsnodes failed: ${nodes.stderr.trim() || `exit ${nodes.code}`}`,
        });
      }
      let filterVnodes: FilterVnode[] | null = null;
      const classOf = new Map<string, string>();
      if (o.filter) {
        const r = await listFilterNodes(o.filter);
        filterVnodes = r.nodes.flatMap((n) =>
          n.vnodes.map((v) => {
            if (v.detail) classOf.set(v.vnode, v.detail.domain_class);
            return {
              node: n.name,
              reachable: n.reachable,
              vnode: v.vnode,
              magrathea: v.magrathea,
              state: v.detail?.state ?? '?',
            };
          }),
        );
      }
      if (pbsVnodes.size > 0 || filterVnodes) checks.push(...checkVnodes(pbsVnodes, filterVnodes));
      if (o.submit) {
        for (const p of probesOf(site))
          checks.push(
            await probeCheck(
              o,
              p,
              async (vnode) => {
                const r = await runCmd(o.pbsnodes, ['-v', vnode, '-F', 'json'], 10_000);
                let image: string | null = null;
                try {
                  image = parsePbsnodesJson(r.stdout).get(vnode)?.image ?? null;
                } catch {
                  image = null;
                }
                return { jobClass: classOf.get(vnode) ?? null, image };
              },
              timeoutMs,
            ),
          );
      }
      if (o.json) deps.io.out(JSON.stringify({ ok: checks.every((c) => c.status !== 'fail'), checks }));
      else {
        for (const c of checks)
          deps.io.out(`${MARK[c.status] ?? c.status} ${c.check}${c.detail ? ` — ${c.detail}` : ''}`);
        const n = (s: string): number => checks.filter((c) => c.status === s).length;
        deps.io.out(`verify: ${n('pass')} passed, ${n('fail')} failed, ${n('warn')} warnings, ${n('skip')} skipped`);
      }
      if (checks.some((c) => c.status === 'fail')) throw new CliError('verify: some checks failed', EXIT.pbsRefused);
    });
}
