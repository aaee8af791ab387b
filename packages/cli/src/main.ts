#!/usr/bin/env node
/** magrathea: the only CLI file that touches `process`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { watchParent } from '@magrathea/common';
import { run } from './program';
import { consoleIo } from './output';

/**
 * Ctrl-C, SIGTERM, the terminal closing (SIGHUP, or stdout gone) or the parent going away
 * (`npm start` killed) all end a long-running command (`watch`, `box`) the same way: it cleans up and exits. A second
 * signal exits at once (also for a command that does not wait for the first).
 */
const interrupted = new Promise<void>((resolve) => {
  // A closed terminal or pipe (`magrathea watch | head`): stop writing, finish like an interrupt.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => resolve());
  let signals = 0;
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(s, () => {
      if (++signals > 1) process.exit(130);
      resolve();
    });
  watchParent(
    () => process.ppid,
    () => resolve(),
  );
});

/** `magrathea` when that is what PATH runs, else `node <this file>` (a development checkout). */
function self(): string {
  const me = fs.realpathSync(process.argv[1] ?? __filename);
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    try {
      if (dir && fs.realpathSync(path.join(dir, 'magrathea')) === me) return 'magrathea';
    } catch {
      // not there
    }
  }
  return `node ${path.relative(process.cwd(), me) || me}`;
}

void run(process.argv.slice(2), {
  io: consoleIo,
  interrupted,
  nodePath: process.execPath,
  tty: process.stdout.isTTY === true,
  env: process.env,
  cwd: process.cwd(),
  self: self(),
  signal: (pid, sig) => process.kill(pid, sig),
}).then((code) => process.exit(code));
