/** The one logger factory: JSON lines with the service name, secrets redacted wherever they sit. */
import { createLogger } from '../src/logger';

test('token, authorization headers, keys and passwords never reach a log line', () => {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    service: 'magrathea-filter',
    level: 'info',
    destination: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
  });
  logger.info(
    {
      token: 't0k3n',
      req: { headers: { authorization: 'Bearer t0k3n' } },
      tls: { key: '/etc/k.pem', password: 'p4ss' },
      domain: 'meta',
    },
    'hook request',
  );
  const text = JSON.stringify(lines);
  expect(text).not.toMatch(/t0k3n|p4ss|k\.pem/);
  expect(lines[0]).toMatchObject({
    service: 'magrathea-filter',
    msg: 'hook request',
    domain: 'meta',
    token: '[redacted]',
  });
});
