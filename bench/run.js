// @ts-check
'use strict';
/**
 * `npm run bench [name...]`: runs the benchmarks (all, or the named ones), prints their tables
 * and writes BENCHMARKS.md, keeping the sections of benchmarks that were not run this time.
 */
const fs = require('node:fs');
const path = require('node:path');
const { markdownTable, machine, ROOT, killAll } = require('./lib');

/** @type {[string, { run(): Promise<import('./lib').BenchResult> }][]} */
const BENCHMARKS = [
  ['node-daemon', require('./node-daemon')],
  ['preemption', require('./preemption')],
  ['reclaim', require('./reclaim')],
  ['filter-scale', require('./filter-scale')],
  ['trace-replay', require('./trace-replay')],
  ['status-page', require('./status-page')],
  ['images', require('./images')],
  ['lifecycle', require('./lifecycle')],
  ['codec', require('./codec')],
];
const FILE = path.join(ROOT, 'BENCHMARKS.md');

/** Existing sections by benchmark name (between `<!-- bench:NAME -->` markers). */
function existingSections() {
  /** @type {Map<string, string>} */
  const out = new Map();
  if (!fs.existsSync(FILE)) return out;
  const text = fs.readFileSync(FILE, 'utf8');
  const re = /<!-- bench:([a-z-]+) -->\n([\s\S]*?)<!-- \/bench:\1 -->/g;
  let m;
  while ((m = re.exec(text))) out.set(/** @type {string} */ (m[1]), /** @type {string} */ (m[2]));
  return out;
}

async function main() {
  const only = process.argv.slice(2);
  const unknown = only.filter((n) => !BENCHMARKS.some(([name]) => name === n));
  if (unknown.length > 0)
    throw new Error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.map(([n]) => n).join(', ')}`);
  const sections = existingSections();
  for (const [name, b] of BENCHMARKS) {
    if (only.length > 0 && !only.includes(name)) continue;
    process.stdout.write(`\n## ${name}\n`);
    const r = await b.run();
    const md = [`## ${r.title}`, '', `Measured ${new Date().toISOString()} on ${machine()}.`, ''];
    for (const s of r.sections) {
      const t = markdownTable(s.head, s.rows);
      process.stdout.write(`${t}\n\n`);
      md.push(t, '');
    }
    for (const n of r.notes) md.push(`- ${n}`);
    md.push('');
    sections.set(name, md.join('\n'));
  }
  const out = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (targets from ARCHITECTURE §9 and the issues; "MISSED" is reported as measured).',
    '',
  ];
  for (const [name] of BENCHMARKS) {
    const section = sections.get(name);
    if (section !== undefined) out.push(`<!-- bench:${name} -->`, section.trimEnd(), '', `<!-- /bench:${name} -->`, '');
  }
  fs.writeFileSync(FILE, out.join('\n'));
  process.stdout.write('\nwritten: BENCHMARKS.md\n');
}

// Whatever ends the run (done, failed, interrupted), no child process is left behind.
process.on('exit', killAll);
for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM'])) process.on(sig, () => process.exit(130));

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
