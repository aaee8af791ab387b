/**
 * Waiting for a child process's pino "ready" line: the one way the CLI (cluster in a box), the
 * tests and the benchmarks learn that a daemon or filter they started is up, and its ports.
 */
import type { ChildProcess } from 'node:child_process';

export interface LogWaitOptions {
  readonly timeoutMs: number;
  /** Called for every JSON log record, before and after the ready line. */
  readonly onRecord?: (rec: Record<string, unknown>) => void;
}

/**
 * Resolves with the first record whose `msg` is `readyMsg`. Rejects when it does not come within
 * the time limit or the process exits first (with what it wrote on stderr, if that is piped).
 */
export function waitForLogLine(
  proc: ChildProcess,
  readyMsg: string,
  opts: LogWaitOptions,
): Promise<Record<string, unknown>> {
  let stderr = '';
  proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    let buf = '';
    let done = false;
    const finish = (err: Error | null, rec?: Record<string, unknown>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(rec as Record<string, unknown>);
    };
    const timer = setTimeout(
      () => finish(new Error(`"${readyMsg}" not seen within ${opts.timeoutMs / 1000} s: ${stderr.trim()}`)),
      opts.timeoutMs,
    );
    proc.stdout?.on('data', (b: Buffer) => {
      buf += b.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue; // not a log line
        }
        opts.onRecord?.(rec);
        if (rec.msg === readyMsg) finish(null, rec);
      }
    });
    proc.once('exit', (code) =>
      finish(new Error(`the process exited with ${String(code)} before "${readyMsg}": ${stderr.trim()}`)),
    );
  });
}
