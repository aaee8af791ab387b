/**
 * The messages between magrathea-filter and its command helper (the small process that runs
 * qmgr, qsig, qstat, pbsnodes and qdel, so the big filter process never forks). Both sides
 * check what they get: a message that does not fit is dropped and logged by the receiver.
 */
import type { ProcessResult } from './run-process';

/** The filter asks: run `file args…` with `stdin`, killed after `timeoutMs`. */
export interface CommandRequest {
  readonly id: number;
  readonly file: string;
  readonly args: readonly string[];
  readonly stdin: string;
  readonly timeoutMs: number;
  readonly maxStdoutBytes?: number;
}

/** The helper answers with what the command did. */
export interface CommandResponse {
  readonly id: number;
  readonly result: ProcessResult;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
const isId = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** A request as the helper may run it, or null. */
export function asCommandRequest(m: unknown): CommandRequest | null {
  if (!isObject(m) || !isId(m.id)) return null;
  const { file, args, stdin, timeoutMs, maxStdoutBytes } = m;
  if (typeof file !== 'string' || file === '' || typeof stdin !== 'string') return null;
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) return null;
  if (!Number.isSafeInteger(timeoutMs) || (timeoutMs as number) <= 0) return null;
  if (maxStdoutBytes !== undefined && (!Number.isSafeInteger(maxStdoutBytes) || (maxStdoutBytes as number) <= 0))
    return null;
  return {
    id: m.id,
    file,
    args: args,
    stdin,
    timeoutMs: timeoutMs as number,
    ...(maxStdoutBytes !== undefined ? { maxStdoutBytes: maxStdoutBytes as number } : {}),
  };
}

/** A response as the filter may trust its shape, or null. */
export function asCommandResponse(m: unknown): CommandResponse | null {
  if (!isObject(m) || !isId(m.id) || !isObject(m.result)) return null;
  const { code, output, stdout, stderr, timedOut, spawnError } = m.result;
  if (code !== null && !Number.isSafeInteger(code)) return null;
  if (typeof output !== 'string' || typeof stdout !== 'string' || typeof stderr !== 'string') return null;
  if (typeof timedOut !== 'boolean' || (spawnError !== null && typeof spawnError !== 'string')) return null;
  return {
    id: m.id,
    result: { code: code as number | null, output, stdout, stderr, timedOut, spawnError: spawnError },
  };
}
