/**
 * Running `qmgr` and reading its answers. One process per command: qmgr's exit status reflects
 * only the last command it read, and its error lines (on stderr) cannot be matched to the
 * commands of a batch (stdout is block-buffered), so the installer never batches.
 *
 * Error lines look like `qmgr obj=NAME svr=default: MESSAGE` followed by
 * `qmgr: Error (15062) returned from server` (observed on OpenPBS 23.06).
 */
import { spawn } from 'node:child_process';

export interface QmgrResult {
  readonly ok: boolean;
  /** stdout (listings). */
  readonly output: string;
  /** The server's message(s) for a failure, one line; empty on success. */
  readonly error: string;
}

/** Runs one qmgr command. */
export type RunQmgr = (command: string) => Promise<QmgrResult>;

export interface QmgrOptions {
  /** The qmgr executable. */
  readonly qmgr: string;
  /** PBS server name, or null for the default server. */
  readonly server: string | null;
  readonly timeoutMs: number;
}

/** A failure to run qmgr at all (missing binary, timeout): PBS cannot be reached. */
export class QmgrUnavailableError extends Error {}

/** The messages of qmgr's error lines (`obj=… svr=…: message`, `Syntax error`, …), joined. */
export function qmgrErrorText(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const messages: string[] = [];
  for (const l of lines) {
    const m = /^qmgr obj=\S* svr=\S*: (.*)$/.exec(l);
    if (m) messages.push((m[1] ?? '').trim());
    else if (/^qmgr: Error \(\d+\) returned from server$/.test(l) || /^qmgr: hook error returned from server$/.test(l))
      continue;
    else if (l.startsWith('qmgr: ')) messages.push(l.slice(6));
    else if (!/^Max open servers/.test(l) && !/^\^$/.test(l)) messages.push(l);
  }
  return messages.join('; ');
}

export function createQmgr(opts: QmgrOptions): RunQmgr {
  return (command) =>
    new Promise((resolve, reject) => {
      const args = ['-c', command, ...(opts.server ? [opts.server] : [])];
      const p = spawn(opts.qmgr, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (b: Buffer) => (out += b.toString()));
      p.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const t = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new QmgrUnavailableError(`${opts.qmgr} did not answer within ${opts.timeoutMs / 1000} s`));
      }, opts.timeoutMs);
      p.on('error', (e) => {
        clearTimeout(t);
        reject(new QmgrUnavailableError(`cannot run ${opts.qmgr}: ${e.message}`));
      });
      p.on('close', (code) => {
        clearTimeout(t);
        const error = qmgrErrorText(err);
        if (code !== 0 && /connect|communicate with server|No server|Connection refused/i.test(err))
          return reject(new QmgrUnavailableError(`${opts.qmgr} cannot reach the PBS server: ${error || err.trim()}`));
        resolve({ ok: code === 0, output: out, error: code === 0 ? '' : error || `qmgr exited with ${code}` });
      });
    });
}

/** One object of a `qmgr -c "list …"` listing: `Hook NAME` followed by `    key = value` lines. */
export interface QmgrObject {
  readonly kind: string;
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
}

export function parseQmgrList(text: string): QmgrObject[] {
  const out: { kind: string; name: string; attrs: Record<string, string> }[] = [];
  for (const line of text.split('\n')) {
    const head = /^(\w+) (\S+)\s*$/.exec(line);
    if (head) {
      out.push({ kind: head[1] ?? '', name: head[2] ?? '', attrs: {} });
      continue;
    }
    const kv = /^\s+([^=]+?) = (.*)$/.exec(line);
    const cur = out[out.length - 1];
    if (kv && cur) cur.attrs[kv[1] ?? ''] = (kv[2] ?? '').trim();
  }
  return out;
}

/** Lists objects of a kind (`resource`, `queue`, `hook`, `server`): name → attributes. */
export async function listObjects(run: RunQmgr, kind: string): Promise<Map<string, Readonly<Record<string, string>>>> {
  // `list queue` without a server names nothing ("No Active Queues"): @active is the server qmgr talks to.
  const r = await run(kind === 'queue' ? 'list queue @active' : `list ${kind}`);
  if (!r.ok) throw new QmgrUnavailableError(`qmgr cannot list ${kind}: ${r.error}`);
  return new Map(parseQmgrList(r.output).map((o) => [o.name, o.attrs]));
}
