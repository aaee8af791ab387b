#!/usr/bin/env node
/** magrathea: the only CLI file that touches `process`. */
import { run } from './program';
import { consoleIo } from './output';

/** MAGRATHEA_TLS_CA, _CERT and _KEY: all three, or none (plaintext). */
function tlsFromEnv(): { ca: string; cert: string; key: string } | null {
  const { MAGRATHEA_TLS_CA: ca, MAGRATHEA_TLS_CERT: cert, MAGRATHEA_TLS_KEY: key } = process.env;
  if (!ca && !cert && !key) return null;
  if (!ca || !cert || !key) {
    process.stderr.write('magrathea: set all of MAGRATHEA_TLS_CA, MAGRATHEA_TLS_CERT and MAGRATHEA_TLS_KEY, or none\n');
    process.exit(2);
  }
  return { ca, cert, key };
}

const interrupted = new Promise<void>((resolve) => {
  process.once('SIGINT', () => resolve());
  process.once('SIGTERM', () => resolve());
});

void run(process.argv.slice(2), {
  io: consoleIo,
  interrupted,
  nodePath: process.execPath,
  tty: process.stdout.isTTY === true,
  tls: tlsFromEnv(),
  signal: (pid, sig) => process.kill(pid, sig),
}).then((code) => process.exit(code));
