/** Runs a PBS command with input on stdin and a hard time limit (a hung qmgr is killed). */
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { Metrics } from './metrics';

export interface ProcessResult {
  readonly code: number | null;
  /** stdout and stderr as they came, capped at 16 KiB (for logs). */
  readonly output: string;
  /** stdout, up to `maxStdoutBytes` (pbsnodes and qstat JSON). */
  readonly stdout: string;
  /** stderr, up to 1 MiB (qmgr's per-object error lines). */
  readonly stderr: string;
  readonly timedOut: boolean;
  /** The command could not be started at all (ENOENT, EACCES, …). */
  readonly spawnError: string | null;
}

export interface RunOptions {
  /** Keep this much of stdout. Default 1 MiB. */
  readonly maxStdoutBytes?: number;
  /** Kills the command when aborted (its result then says timedOut). */
  readonly signal?: AbortSignal;
}

/** What the parts that call PBS (publisher, accounting) are given. */
export interface PbsCallerDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Wall clock (publication latency against the daemons' commit times). */
  readonly now: () => number;
  /** Monotonic clock: back-off, rate limits and re-checks (default performance.now()). */
  readonly mono?: () => number;
  /** Runs the PBS commands (default runProcess: a fork from this process). */
  readonly run?: RunCommand;
}

/** What runs a PBS command: runProcess here, or the command helper's client (command-helper.ts). */
export type RunCommand = (
  file: string,
  args: readonly string[],
  stdin: string,
  timeoutMs: number,
  opts?: RunOptions,
) => Promise<ProcessResult>;

const MAX_STDERR = 1024 * 1024;

export function runProcess(
  file: string,
  args: readonly string[],
  stdin: string,
  timeoutMs: number,
  opts: RunOptions = {},
): Promise<ProcessResult> {
  const maxStdout = opts.maxStdoutBytes ?? 1024 * 1024;
  return new Promise((resolve) => {
    let output = '';
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let timedOut = false;
    let settled = false;
    const done = (r: Omit<ProcessResult, 'stdout' | 'stderr' | 'output'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ ...r, output: output.trim(), stdout: Buffer.concat(out).toString('utf8'), stderr });
    };
    const p = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, timeoutMs);
    const onAbort = (): void => {
      timedOut = true;
      p.kill('SIGKILL');
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
    const keep = (b: Buffer): void => {
      if (output.length < 16_384) output += b.toString();
    };
    p.stdout.on('data', (b: Buffer) => {
      keep(b);
      if (outBytes < maxStdout) {
        out.push(b);
        outBytes += b.length;
      }
    });
    p.stderr.on('data', (b: Buffer) => {
      keep(b);
      if (stderr.length < MAX_STDERR) stderr += b.toString();
    });
    p.stdin.on('error', () => undefined); // the process may exit before reading everything
    p.on('error', (err) => done({ code: null, timedOut: false, spawnError: err.message }));
    p.on('close', (code) => done({ code, timedOut, spawnError: null }));
    p.stdin.end(stdin);
  });
}

/** qmgr's error lines: `qmgr obj=NAME svr=SERVER: MESSAGE` → (NAME, MESSAGE). */
export function qmgrObjectErrors(stderr: string): { readonly obj: string; readonly message: string }[] {
  const out: { obj: string; message: string }[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^qmgr obj=(\S*) svr=\S*: (.*)$/.exec(line.trim());
    if (m) out.push({ obj: m[1] ?? '', message: (m[2] ?? '').trim() });
  }
  return out;
}
