/** Runs the real PBS hook file with python3 against the `pbs` test double. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { ROOT } from './processes';

export const HOOK_FILE = path.join(ROOT, 'packages/pbs-hooks/hooks/magrathea_hook.py');
const RUNNER = path.join(ROOT, 'packages/pbs-hooks/test/pbs_double/run_hook.py');

export interface HookScenario {
  readonly event: Record<string, unknown> & { type: string };
  readonly local_nodename?: string;
  readonly server?: Record<string, unknown>;
  readonly config_file?: string | null;
  readonly env?: Record<string, string>;
  readonly hook?: string;
  /** Custom resources the server defines (default: Magrathea's four); others raise when read, as in PBS. */
  readonly resourcedef?: readonly string[];
}

export interface HookResult {
  readonly outcome: 'accept' | 'reject' | 'implicit-accept' | 'exception';
  readonly reject_msg: string | null;
  readonly exception: string | null;
  readonly job_sets: Record<string, string>;
  readonly vnode_sets: Record<string, Record<string, unknown>>;
  readonly rerun: boolean;
  readonly delete: boolean;
  readonly logs: [number, string][];
  readonly elapsed_ms: number;
}

export function runHook(s: HookScenario, timeoutMs = 30_000): Promise<HookResult> {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', [RUNNER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(out) as HookResult);
      } catch {
        reject(new Error(`hook runner exited ${code}: ${err || out}`));
      }
    });
    p.stdin.end(JSON.stringify({ hook: HOOK_FILE, ...s }));
  });
}
