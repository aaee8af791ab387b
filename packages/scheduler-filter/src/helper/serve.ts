/**
 * The command helper's work: run each request it gets (at the same time, each with its own
 * time limit) and answer with the result. The channel is the IPC link to the filter; when
 * it closes (the filter exited) every command still running is killed.
 */
import { asCommandRequest } from '../service/command-protocol';
import type { CommandResponse } from '../service/command-protocol';
import { runProcess } from '../service/run-process';

export interface HelperChannel {
  onMessage(f: (m: unknown) => void): void;
  onClose(f: () => void): void;
  send(m: CommandResponse): void;
  /** A message that was not a request (written to stderr: the filter logs nothing of it). */
  reject(m: unknown): void;
}

export function serveCommands(ch: HelperChannel): { readonly closed: Promise<void> } {
  const running = new Map<AbortController, Promise<unknown>>();
  let closedResolve: () => void = () => undefined;
  const closed = new Promise<void>((r) => (closedResolve = r));
  ch.onMessage((m) => {
    const req = asCommandRequest(m);
    if (!req) {
      ch.reject(m);
      return;
    }
    const abort = new AbortController();
    const done = runProcess(req.file, req.args, req.stdin, req.timeoutMs, {
      ...(req.maxStdoutBytes !== undefined ? { maxStdoutBytes: req.maxStdoutBytes } : {}),
      signal: abort.signal,
    }).then((result) => {
      running.delete(abort);
      if (!abort.signal.aborted) ch.send({ id: req.id, result });
    });
    running.set(abort, done);
  });
  // Killed commands are waited for (reaped) before the helper may exit.
  ch.onClose(() => {
    for (const a of running.keys()) a.abort();
    void Promise.all(running.values()).then(closedResolve);
  });
  return { closed };
}
