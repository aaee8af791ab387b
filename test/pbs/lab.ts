/**
 * The real OpenPBS lab for the real-PBS suite: brought up by test/pbs/lab-up.sh (run by
 * test/setup.sh), which leaves `.cache/pbs-lab.state` ("ok" or "skip: <reason>"). Two "physical
 * nodes" nodea and nodeb, each with three domains (meta, egee, priv) whose moms run in their own
 * network namespaces (nodea-meta = 10.199.0.11, …) inside the cgroups of magrathead's cgroup
 * driver (<controller>/magrathea-pbslab-<node>/<domain>). PBS commands run as root; jobs are
 * submitted by the ordinary user pbstest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../helpers/processes';

export const PBS_BIN = '/opt/pbs/bin';
export const PBS_SBIN = '/opt/pbs/sbin';
export const USER = 'pbstest';
export const SCHED_CONFIG = '/var/spool/pbs/sched_priv/sched_config';
export const NODES = ['nodea', 'nodeb'] as const;
export const DOMAINS = ['meta', 'egee', 'priv'] as const;
export const CGROUP_ROOT = 'magrathea-pbslab';
export const BRIDGE_IP = '10.199.0.1';

function labState(): { ok: boolean; reason: string } {
  try {
    const s = fs.readFileSync(path.join(ROOT, '.cache/pbs-lab.state'), 'utf8').trim();
    return s === 'ok' ? { ok: true, reason: '' } : { ok: false, reason: s.replace(/^skip: /, '') };
  } catch {
    return { ok: false, reason: 'test/setup.sh has not run (npm test and npm run test:pbs run it)' };
  }
}

export const LAB = labState();

/** `describe` when the lab is up; otherwise skipped with the reason printed (a failure when MAGRATHEA_REQUIRE_PBS=1). */
export function describeLab(name: string, fn: () => void): void {
  if (LAB.ok) {
    describe(name, fn);
    return;
  }
  if (process.env.MAGRATHEA_REQUIRE_PBS === '1') {
    describe(name, () => {
      test('the OpenPBS lab is available', () => {
        throw new Error(`the real-PBS suite is required (MAGRATHEA_REQUIRE_PBS=1) but was skipped: ${LAB.reason}`);
      });
    });
    return;
  }
  console.log(`real-PBS suite "${name}" skipped: ${LAB.reason}`);
  describe.skip(name, fn);
}

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion (never throws; a time limit kills it). */
export function run(
  file: string,
  args: readonly string[],
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    p.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: null, stdout, stderr: e.message });
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    p.stdin.on('error', () => undefined); // the command may exit before reading its input
    p.stdin.end(opts.input ?? '');
  });
}

export const pbsCmd = (name: string, args: readonly string[], timeoutMs?: number): Promise<Run> =>
  run(path.join(PBS_BIN, name), args, timeoutMs === undefined ? {} : { timeoutMs });

/** qmgr -c CMD; throws with PBS's message on failure. */
export async function qmgr(command: string): Promise<string> {
  const r = await pbsCmd('qmgr', ['-c', command]);
  if (r.code !== 0) throw new Error(`qmgr -c '${command}' failed: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until<T>(
  probe: () => Promise<T | false | null | undefined> | T | false | null | undefined,
  what: string,
  ms = 30_000,
  everyMs = 200,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(
        `timed out after ${ms} ms: ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`,
      );
    await sleep(everyMs);
  }
}

/** Purges the job history (`Job with requested ID already exists` after server restarts is PBS's). */
export async function purgeHistory(): Promise<void> {
  const ids = (await pbsCmd('qselect', ['-x', '-s', 'F'])).stdout.split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 50) await pbsCmd('qdel', ['-x', '-W', 'force', ...ids.slice(i, i + 50)]);
}

/** qsub as the lab user; returns the job id. A stale job id after a server restart is retried once after purging history. */
export async function qsub(args: readonly string[], user = USER): Promise<string> {
  const line = [path.join(PBS_BIN, 'qsub'), ...args].map(shq).join(' ');
  for (let attempt = 0; ; attempt++) {
    const r = await run('su', ['-', user, '-c', line]);
    if (r.code === 0) return r.stdout.trim().split('\n').pop() as string;
    if (attempt === 0 && /already exists/.test(r.stderr)) {
      await purgeHistory();
      continue;
    }
    throw new Error(`qsub ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  }
}

/** Runs a PBS client command as the lab user (qalter, qmove, pbs_rsub, qsub) and returns its result. */
export function asUser(cmd: string, args: readonly string[], user = USER): Promise<Run> {
  return run('su', ['-', user, '-c', [path.join(PBS_BIN, cmd), ...args].map(shq).join(' ')]);
}

export const shq = (s: string): string => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export type Job = Record<string, unknown> & {
  job_state?: string;
  substate?: number;
  exec_vnode?: string;
  Exit_status?: number;
  run_count?: number;
  Hold_Types?: string;
  comment?: string;
  resources_used?: { walltime?: string };
};

/**
 * qstat -x -f -F json for these jobs (missing ones are absent from the map): one job per call,
 * since asked for several jobs in JSON OpenPBS 23.06 answers for the first only.
 */
export async function jobs(ids: readonly string[]): Promise<Map<string, Job>> {
  const out = new Map<string, Job>();
  for (const id of ids) {
    const r = await pbsCmd('qstat', ['-x', '-f', '-F', 'json', '--', id]);
    try {
      const j = (JSON.parse(r.stdout) as { Jobs?: Record<string, Job> }).Jobs?.[id];
      if (j) out.set(id, j);
    } catch {
      // not known (or no answer): absent
    }
  }
  return out;
}

export async function job(id: string): Promise<Job> {
  const j = (await jobs([id])).get(id);
  if (!j) throw new Error(`qstat knows no job ${id}`);
  return j;
}

export type Vnode = Record<string, unknown> & {
  state: string;
  comment?: string;
  maintenance_jobs?: string;
  resources_available: Record<string, string | number>;
};

export async function vnodes(): Promise<Map<string, Vnode>> {
  const r = await pbsCmd('pbsnodes', ['-av', '-F', 'json']);
  const o = JSON.parse(r.stdout) as { nodes?: Record<string, Vnode> };
  return new Map(Object.entries(o.nodes ?? {}));
}

export const vnodeOf = (j: Job): string => /^\(?([^:)]+)/.exec(String(j.exec_vnode ?? ''))?.[1] ?? '';

/** Deletes every job and purges the history: the next scenario starts from an empty server. */
export async function cleanJobs(): Promise<void> {
  const ids = (await pbsCmd('qselect', [])).stdout.split('\n').filter(Boolean);
  if (ids.length > 0) await pbsCmd('qdel', ['-W', 'force', ...ids]);
  await until(async () => (await pbsCmd('qselect', [])).stdout.trim() === '', 'every job gone', 30_000);
  await purgeHistory();
  // Job ids come back after restarts: no job may read an older job's files.
  for (const f of fs.readdirSync('/tmp')) if (f.startsWith('magrathea-count.')) fs.rmSync(`/tmp/${f}`, { force: true });
}

/**
 * A vnode that PBS keeps in `maintenance` although no job is suspended there (what an admin-suspend
 * leaves behind across server restarts, see the runbook) is deleted and created again, the way
 * lab.sh creates it (Mom = name, resources_available.host = name): each scenario starts clean.
 */
export async function recreateStuckVnodes(): Promise<string[]> {
  const stuck = [...(await vnodes())].filter(([, v]) => /maintenance/.test(v.state) && !v.jobs).map(([n]) => n);
  for (const n of stuck) {
    await qmgr(`delete node ${n}`);
    await qmgr(`create node ${n} Mom=${n},resources_available.host=${n}`);
  }
  if (stuck.length > 0)
    await until(
      async () => {
        const vs = await vnodes();
        return stuck.every((n) => /^free/.test(String(vs.get(n)?.state)));
      },
      'the re-created vnodes are up',
      60_000,
      500,
    );
  return stuck;
}

/** Stops and starts pbs_server (the datastore stays up); resolves when it answers again. */
export async function restartServer(): Promise<void> {
  await pbsCmd('qterm', ['-t', 'quick']);
  await until(async () => (await run('pgrep', ['-x', 'pbs_server.bin'])).code !== 0, 'pbs_server stopped', 30_000);
  const r = await run(path.join(PBS_SBIN, 'pbs_server'), [], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`pbs_server did not start: ${r.stderr}`);
  await until(async () => (await pbsCmd('qstat', ['-B'])).code === 0, 'pbs_server answering', 60_000);
  // The moms reconnect on their own time (TPP): until then their vnodes are down and take no job.
  await until(
    async () => [...(await vnodes()).values()].every((v) => !/down|state-unknown/.test(v.state)),
    'every mom reconnected',
    90_000,
    500,
  );
  // After a restart PBS may hand out job ids still in its history ("Job with requested ID already
  // exists", PBS's own problem, see the runbook): the lab purges the history at once.
  await purgeHistory();
}

/** The PIDs in a domain's freezer group (its mom and the jobs it started). */
export function domainPids(node: string, domain: string): number[] {
  try {
    return fs
      .readFileSync(`/sys/fs/cgroup/freezer/${CGROUP_ROOT}-${node}/${domain}/cgroup.procs`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export function freezerState(node: string, domain: string): string {
  return fs.readFileSync(`/sys/fs/cgroup/freezer/${CGROUP_ROOT}-${node}/${domain}/freezer.state`, 'utf8').trim();
}

/** Thaws every lab domain and resets its CPU shares (what a failed test may leave behind). */
export function thawAll(): void {
  for (const n of NODES)
    for (const d of DOMAINS) {
      const base = (c: string) => `/sys/fs/cgroup/${c}/${CGROUP_ROOT}-${n}/${d}`;
      try {
        fs.writeFileSync(`${base('freezer')}/freezer.state`, 'THAWED');
        fs.writeFileSync(`${base('cpu')}/cpu.shares`, '1024');
        fs.writeFileSync(`${base('memory')}/memory.limit_in_bytes`, '-1');
      } catch {
        // the group may not exist yet
      }
    }
}

/** An interactive job (`qsub -I`) under script(1): a terminal and an open stdin, as a user's would be. */
export interface Interactive {
  readonly id: Promise<string>;
  readonly proc: ChildProcess;
  /** Resolves when qsub -I has exited. */
  readonly exited: Promise<number | null>;
  /** Ends the session (closes stdin; kills it after a while). */
  end(): void;
  /** What qsub -I printed so far (diagnostics). */
  output(): string;
}

export function interactive(qsubArgs: readonly string[], user = USER): Interactive {
  const line = [path.join(PBS_BIN, 'qsub'), '-I', ...qsubArgs].map(shq).join(' ');
  let resolveId: (id: string) => void = () => undefined;
  let rejectId: (e: Error) => void = () => undefined;
  const id = new Promise<string>((res, rej) => {
    resolveId = res;
    rejectId = rej;
  });
  id.catch(() => undefined);
  let proc!: ChildProcess;
  let printed = '';
  let resolveExit: (code: number | null) => void = () => undefined;
  const exited = new Promise<number | null>((res) => (resolveExit = res));
  const start = (attempt: number): void => {
    proc = spawn('script', ['-qfec', `su - ${user} -c ${shq(line)}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let gotId = false;
    const onData = (b: Buffer): void => {
      out += b.toString();
      printed += b.toString();
      const m = /qsub: waiting for job (\S+) to start/.exec(out);
      if (m?.[1] && !gotId) {
        gotId = true;
        resolveId(m[1]);
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.on('exit', (code) => {
      // A job id still in the history after a server restart (PBS's): purge and submit again, once.
      if (!gotId && attempt === 0 && /already exists/.test(out)) {
        void purgeHistory().then(() => start(1));
        return;
      }
      rejectId(new Error(`qsub -I exited (${code}) before it printed a job id: ${out.trim().slice(0, 300)}`));
      resolveExit(code);
    });
  };
  start(0);
  return {
    id,
    get proc() {
      return proc;
    },
    exited,
    output: () => printed,
    end: () => {
      proc.stdin?.end();
      const p = proc;
      setTimeout(() => p.kill('SIGKILL'), 5000).unref();
    },
  };
}

/** Lines of today's server log after `from` (a byte offset from serverLogSize()). */
export function serverLogSince(from: number): string {
  const f = serverLogFile();
  try {
    const fd = fs.openSync(f, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.max(0, size - from));
      fs.readSync(fd, buf, 0, buf.length, from);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

export function serverLogFile(): string {
  const d = new Date();
  const ymd = `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, '0')}${String(d.getDate()).padStart(2, '0')}`;
  return `/var/spool/pbs/server_logs/${ymd}`;
}

export function serverLogSize(): number {
  try {
    return fs.statSync(serverLogFile()).size;
  } catch {
    return 0;
  }
}
