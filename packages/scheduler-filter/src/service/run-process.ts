/** Runs a PBS command with input on stdin and a hard time limit (a hung qmgr is killed). */
import { spawn } from 'node:child_process';

export interface ProcessResult {
  readonly code: number | null;
  readonly output: string;
  readonly timedOut: boolean;
}

export function runProcess(
  file: string,
  args: readonly string[],
  stdin: string,
  timeoutMs: number,
): Promise<ProcessResult> {
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    let settled = false;
    const done = (r: ProcessResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const p = spawn(file, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, timeoutMs);
    const keep = (b: Buffer): void => {
      if (output.length < 16_384) output += b.toString();
    };
    p.stdout.on('data', keep);
    p.stderr.on('data', keep);
    p.stdin.on('error', () => undefined); // the process may exit before reading everything
    p.on('error', (err) => done({ code: null, output: err.message, timedOut: false }));
    p.on('close', (code) => done({ code, output: output.trim(), timedOut }));
    p.stdin.end(stdin);
  });
}
