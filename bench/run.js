'use strict';
/** `npm run bench`: runs every benchmark, prints the tables and writes BENCHMARKS.md. */
const fs = require('node:fs');
const path = require('node:path');
const { markdownTable, machine, ROOT } = require('./lib');

const BENCHMARKS = [['node-daemon', require('./node-daemon')]];

async function main() {
  const only = process.argv.slice(2);
  const out = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString()}.`,
    `Machine: ${machine()}.`,
    '',
  ];
  for (const [name, b] of BENCHMARKS) {
    if (only.length > 0 && !only.includes(name)) continue;
    process.stdout.write(`\n## ${name}\n`);
    const r = await b.run();
    out.push(`## ${r.title}`, '');
    for (const s of r.sections) {
      const t = markdownTable(s.head, s.rows);
      process.stdout.write(`${t}\n\n`);
      out.push(t, '');
    }
    for (const n of r.notes) out.push(`- ${n}`);
    out.push('');
  }
  fs.writeFileSync(path.join(ROOT, 'BENCHMARKS.md'), out.join('\n'));
  process.stdout.write('\nwritten: BENCHMARKS.md\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
