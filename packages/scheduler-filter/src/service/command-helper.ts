/**
 * The filter's side of the command helper: one small child process, started on the first PBS
 * command, runs every qmgr/qsig/qstat/pbsnodes/qdel for the filter. Forking costs time
 * proportional to the forking process's size (page tables), and a fork blocks the event loop:
 * from a filter holding 10,000 nodes each qmgr batch cost 14 ms of blocked loop; from the
 * helper it costs what it costs from a bare node process, whatever the filter's size.
 *
 * The command lines, their stdin and their environment are exactly what runProcess would run.
 * Failures: a helper that exits (or is killed) fails the commands it had in flight (spawnError,
 * so the publisher retries them with back-off) and is started again for the next command; a
 * helper that does not answer within the command's time limit plus HANG_GRACE_MS is killed
 * (the command counts as timed out). Answers that do not fit the protocol are dropped and
 * logged; their commands then end as hung.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { asCommandResponse } from './command-protocol';
import type { CommandRequest } from './command-protocol';
import type { ProcessResult, RunOptions } from './run-process';

/** The helper's own margin over a command's time limit (it kills the command at the limit). */
export const HANG_GRACE_MS = 5000;

/** The compiled helper (from src/service or dist/service alike). */
export const HELPER_MAIN = path.resolve(__dirname, '../../dist/helper/main.js');

interface InFlight {
  readonly resolve: (r: ProcessResult) => void;
  readonly timer: NodeJS.Timeout;
  readonly child: ChildProcess;
}

const failure = (spawnError: string | null, timedOut = false): ProcessResult => ({
  code: null,
  output: spawnError ?? '',
  stdout: '',
  stderr: '',
  timedOut,
  spawnError,
});

export class CommandHelper {
  private child: ChildProcess | null = null;
  private readonly inFlight = new Map<number, InFlight>();
  private nextId = 1;
  private closed = false;
  /** Helpers started so far (the first one included). */
  starts = 0;

  constructor(
    private readonly deps: {
      logger: Logger;
      /** The helper script (tests use other ones). Default HELPER_MAIN. */
      main?: string;
      /** Called when a helper exits unasked (a restart follows on the next command). */
      onExit?: () => void;
      /** The helper's environment, which its commands inherit (default this process's). */
      env?: NodeJS.ProcessEnv;
      /** Margin over a command's time limit before the helper counts as hung. Default HANG_GRACE_MS. */
      hangGraceMs?: number;
    },
  ) {}

  /** The helper's pid (null before the first command or after it exited). */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Runs a command through the helper (same contract as runProcess). */
  readonly run = (
    file: string,
    args: readonly string[],
    stdin: string,
    timeoutMs: number,
    opts: RunOptions = {},
  ): Promise<ProcessResult> => {
    if (this.closed) return Promise.resolve(failure('command helper stopped'));
    const child = this.helper();
    if (!child) return Promise.resolve(failure('command helper could not be started'));
    const id = this.nextId++;
    const req: CommandRequest = {
      id,
      file,
      args: [...args],
      stdin,
      timeoutMs,
      ...(opts.maxStdoutBytes !== undefined ? { maxStdoutBytes: opts.maxStdoutBytes } : {}),
    };
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.deps.logger.error({ pid: child.pid, file, timeoutMs }, 'command helper did not answer; killing it');
          this.settle(id, failure(null, true));
          child.kill('SIGKILL');
        },
        timeoutMs + (this.deps.hangGraceMs ?? HANG_GRACE_MS),
      );
      this.inFlight.set(id, { resolve, timer, child });
      child.send(req, (err) => {
        if (err) this.settle(id, failure(`command helper unreachable: ${err.message}`));
      });
    });
  };

  private settle(id: number, r: ProcessResult): void {
    const f = this.inFlight.get(id);
    if (!f) return;
    this.inFlight.delete(id);
    clearTimeout(f.timer);
    f.resolve(r);
  }

  /** The running helper, started if there is none. */
  private helper(): ChildProcess | null {
    if (this.child) return this.child;
    let child: ChildProcess;
    try {
      child = fork(this.deps.main ?? HELPER_MAIN, [], {
        execArgv: ['--max-old-space-size=64'],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        serialization: 'json',
        ...(this.deps.env ? { env: this.deps.env } : {}),
      });
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, 'command helper could not be started');
      return null;
    }
    this.starts++;
    this.child = child;
    child.on('message', (m) => {
      const r = asCommandResponse(m);
      const f = r ? this.inFlight.get(r.id) : undefined;
      if (!r || f?.child !== child) {
        this.deps.logger.error(
          { pid: child.pid, message: JSON.stringify(m)?.slice(0, 200) },
          'command helper sent something that is not an answer; dropped',
        );
        return;
      }
      this.settle(r.id, r.result);
    });
    child.on('error', (err) => this.deps.logger.error({ pid: child.pid, err: err.message }, 'command helper error'));
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      for (const [id, f] of this.inFlight)
        if (f.child === child) this.settle(id, failure(`command helper exited (${signal ?? `code ${code}`})`));
      if (this.closed) return;
      this.deps.logger.error({ pid: child.pid, code, signal }, 'command helper exited; restarted on the next command');
      this.deps.onExit?.();
    });
    this.deps.logger.info({ pid: child.pid, starts: this.starts }, 'command helper started');
    return child;
  }

  /** Stops the helper (its commands in flight are killed with it) and resolves when it exited. */
  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    if (child.connected) child.disconnect();
    else child.kill('SIGKILL');
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
}
