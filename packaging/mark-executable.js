#!/usr/bin/env node
/**
 * After `tsc --build`: every workspace's bin file is made executable (mode 0755), so that a
 * checkout's dist/main.js runs as a command (its shebang) like the installed release's does.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
for (const ws of fs.readdirSync(path.join(ROOT, 'packages'))) {
  const pjFile = path.join(ROOT, 'packages', ws, 'package.json');
  if (!fs.existsSync(pjFile)) continue;
  /** @type {{ bin?: Record<string, string> }} */
  const pj = JSON.parse(fs.readFileSync(pjFile, 'utf8'));
  for (const file of Object.values(pj.bin ?? {})) {
    const f = path.join(ROOT, 'packages', ws, file);
    if (fs.existsSync(f)) fs.chmodSync(f, 0o755);
  }
}
