#!/usr/bin/env node
/** magrathea: the only CLI file that touches `process`. */
import { run } from './program';
import { consoleIo } from './output';

const interrupted = new Promise<void>((resolve) => {
  process.once('SIGINT', () => resolve());
  process.once('SIGTERM', () => resolve());
});

void run(process.argv.slice(2), {
  io: consoleIo,
  interrupted,
  nodePath: process.execPath,
  tty: process.stdout.isTTY === true,
}).then((code) => process.exit(code));
