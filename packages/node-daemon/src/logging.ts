/** The root pino logger: JSON to the given stream, constant messages, data in fields. */
import pino from 'pino';
import type { Logger, DestinationStream } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'magrathead' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['token', '*.token', 'secret', '*.secret', 'authorization', '*.authorization'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
