/**
 * One long-lived `virsh` reading commands on stdin (there is no Node binding for libvirt that
 * builds on Node 20; reference/hypervisors.md §2). A long-lived session costs 1–5 ms per command
 * instead of 20–30 ms for a new `virsh` each time, and it is the only way to talk to libvirt's
 * in-process `test:///default` hypervisor. Each command is followed by `echo` of a unique
 * marker; the output up to the marker is the command's answer, `error:` lines make it fail.
 * Every command has a time limit; a hung or dead virsh is killed and started again.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';

export class VirshError extends Error {
  override readonly name = 'VirshError';
}

interface Waiter {
  readonly marker: string;
  readonly line: string;
  readonly resolve: (out: string) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** Quotes one argument for virsh's own shell-like parser. */
export function virshQuote(arg: string): string {
  if (/^[A-Za-z0-9_.,:/=+-]+$/.test(arg)) return arg;
  if (arg.includes("'")) throw new VirshError(`argument contains a single quote: ${arg}`);
  return `'${arg}'`;
}

export class VirshSession {
  private child: ChildProcess | null = null;
  private buffer = '';
  private waiter: Waiter | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private n = 0;

  constructor(
    private readonly virsh: string,
    private readonly uri: string,
    private readonly timeoutMs: number,
  ) {}

  private ensure(): ChildProcess {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return this.child;
    // stdbuf: virsh's stdout is a pipe, so without line buffering the marker would never arrive.
    const child = spawn('/bin/sh', ['-c', 'exec stdbuf -oL "$0" -q -c "$1" 2>&1', this.virsh, this.uri], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => this.onData(chunk));
    child.on('exit', () => {
      if (this.child === child) this.child = null;
      const w = this.waiter;
      this.waiter = null;
      if (w) {
        clearTimeout(w.timer);
        const text = this.buffer.trim();
        w.reject(
          new VirshError(
            text.includes('not found') ? `cannot run ${this.virsh}: ${text}` : `virsh exited${text ? `: ${text}` : ''}`,
          ),
        );
      }
      this.buffer = '';
    });
    child.on('error', () => undefined); // 'exit' follows
    child.stdin?.on('error', () => undefined);
    this.child = child;
    return child;
  }

  /** Runs one virsh command line; resolves with its output, rejects with its `error:` text. */
  run(args: readonly string[]): Promise<string> {
    const p = this.chain.then(() => this.runNow(args));
    this.chain = p.catch(() => undefined);
    return p;
  }

  private runNow(args: readonly string[]): Promise<string> {
    const line = args.map(virshQuote).join(' ');
    const marker = `__MAGRATHEA_END_${++this.n}__`;
    return new Promise<string>((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = this.ensure();
      } catch (err) {
        reject(err instanceof Error ? err : new VirshError(String(err)));
        return;
      }
      const timer = setTimeout(() => {
        this.waiter = null;
        child.kill('SIGKILL');
        reject(new VirshError(`virsh ${args[0] ?? ''} got no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiter = { marker, line, resolve, reject, timer };
      child.stdin?.write(`${line}\necho ${marker}\n`);
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    const w = this.waiter;
    if (!w) return;
    const at = this.buffer.indexOf(w.marker);
    if (at < 0) return;
    // Skip the echo of the `echo MARKER` command line itself.
    const echoed = this.buffer.lastIndexOf(`echo ${w.marker}`, at);
    if (echoed >= 0 && echoed + 5 === at) {
      const next = this.buffer.indexOf(w.marker, at + w.marker.length);
      if (next < 0) return;
      this.finish(w, this.buffer.slice(0, echoed), next + w.marker.length);
      return;
    }
    this.finish(w, this.buffer.slice(0, at), at + w.marker.length);
  }

  private finish(w: Waiter, raw: string, consumed: number): void {
    this.buffer = this.buffer.slice(consumed);
    this.waiter = null;
    clearTimeout(w.timer);
    const lines = raw.split('\n').map((l) => l.replace(/^(virsh # )+/, ''));
    // virsh echoes the command line when stdin is not a terminal.
    if (lines[0]?.trim() === w.line) lines.shift();
    const out = lines.join('\n').trim();
    const errors = lines.filter((l) => l.startsWith('error: ')).map((l) => l.slice(7));
    if (errors.length > 0) w.reject(new VirshError(errors.join('; ')));
    else w.resolve(out);
  }

  close(): void {
    this.child?.stdin?.end();
    this.child?.kill('SIGTERM');
    this.child = null;
  }
}
