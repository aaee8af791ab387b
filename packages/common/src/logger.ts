/**
 * THE logger factory of every binary (magrathead, magrathea-filter): pino JSON with ISO times,
 * constant messages and data in fields, and secrets redacted wherever they appear in a line.
 */
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
  /** Where the lines go (default: stdout). */
  readonly destination?: DestinationStream;
}

/** The root logger of a binary; components take `logger.child({ component })`. */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: opts.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    opts.destination,
  );
}
