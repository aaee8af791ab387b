/**
 * THE logger factory of every binary (magrathead, magrathea-filter): pino JSON with ISO times,
 * the level in words (`"level":"warn"`), constant messages and data in fields, and secrets
 * redacted wherever they appear in a line.
 */
import { formatWithOptions } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';

/** Field paths whose values never reach a log line (tokens, credentials, keys). */
export const REDACTED_PATHS: readonly string[] = [
  'token',
  '*.token',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'key',
  '*.key',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers.cookie',
  '*.headers.cookie',
];

/** Options of `createLogger`. */
export interface LoggerOptions {
  /** The `service` field of every line, e.g. `magrathead`. */
  readonly service: string;
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  readonly level: string;
  /** Where the lines go (default: stdout, written synchronously). */
  readonly destination?: DestinationStream;
}

/** The root logger of a binary; components take `logger.child({ component })`. */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: opts.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"error", not 50: the words an admin reads in journalctl and greps for.
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    // Synchronous: lines stay in order with a fatal line written just before exit, and a reader
    // that went away (EPIPE) ends logging instead of an exit-time flush retrying forever.
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/**
 * Sends grpc-js's own messages (it prints "E No address added …" on stderr by default) to the
 * binary's log, as `msg: "grpc-js"` lines with the text in a field. Call once, from main.ts.
 */
export function routeGrpcLogs(logger: Logger): void {
  const line =
    (level: 'warn' | 'info' | 'debug') =>
    (message?: unknown, ...rest: unknown[]): void =>
      logger[level]({ text: formatWithOptions({ breakLength: Infinity }, message, ...rest) }, 'grpc-js');
  grpc.setLogger({ error: line('warn'), info: line('info'), debug: line('debug') });
}
