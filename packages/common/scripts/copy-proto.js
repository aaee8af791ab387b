#!/usr/bin/env node
// prepack: the package ships the contract it loads (proto/ of the repository is the one source;
// this copy is not committed). dist/proto.js looks in ../proto first.
const fs = require('node:fs');
const path = require('node:path');

const here = path.resolve(__dirname, '..');
const from = path.resolve(here, '../../proto');
const to = path.join(here, 'proto');
fs.rmSync(to, { recursive: true, force: true });
fs.cpSync(from, to, { recursive: true, filter: (f) => fs.statSync(f).isDirectory() || f.endsWith('.proto') });
