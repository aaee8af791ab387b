#!/usr/bin/env node
// @ts-check
'use strict';
/**
 * Replays one workload log (or a window of it) under one or all policies and prints the
 * results. Bad lines are reported with their line numbers and the replay goes on.
 *
 *   node bench/sim/cli.js --log sdsc-blue [--policy magrathea|partial|static|nopriority|all]
 *                         [--from N] [--jobs N] [--swf FILE] [--json]
 */
const { replay, POLICIES } = require('./replay');
const { LOGS, loadLog } = require('./logs');
const { progressBar } = require('./progress');

/**
 * @param {string} msg
 * @returns {never}
 */
function usage(msg) {
  process.stderr.write(
    `trace replay: ${msg}\nusage: node bench/sim/cli.js --log ${Object.keys(LOGS).join('|')} [--policy ${POLICIES.join('|')}|all] [--from N] [--jobs N] [--swf FILE] [--json]\n`,
  );
  process.exit(2);
}

/**
 * @param {readonly string[]} argv
 * @returns {{ log: string, policy: string, from?: number, jobs?: number, swf?: string, json: boolean }}
 */
function parseArgs(argv) {
  /** @type {{ log?: string, policy: string, from?: number, jobs?: number, swf?: string, json: boolean }} */
  const o = { policy: 'magrathea', json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = /** @type {string} */ (argv[i]);
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return /** @type {string} */ (argv[++i]);
    };
    const int = (/** @type {string} */ name) => {
      const v = val();
      if (!/^\d+$/.test(v)) usage(`${name} must be a whole number, got "${v}"`);
      return Number(v);
    };
    if (a === '--log') o.log = val();
    else if (a === '--policy') o.policy = val();
    else if (a === '--from') o.from = int('--from');
    else if (a === '--jobs') o.jobs = int('--jobs');
    else if (a === '--swf') o.swf = val();
    else if (a === '--json') o.json = true;
    else usage(`unknown argument "${a}"`);
  }
  const log = o.log;
  if (!log) usage('--log is required');
  if (!LOGS[log]) usage(`unknown log "${log}"`);
  if (o.policy !== 'all' && !POLICIES.includes(/** @type {import('./placement').Policy} */ (o.policy)))
    usage(`unknown policy "${o.policy}"`);
  return { ...o, log };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  let data;
  try {
    data = loadLog(o.log, {
      from: o.from ?? (o.swf ? 0 : /** @type {import('./logs').LogInfo} */ (LOGS[o.log]).window.from),
      jobs: o.jobs ?? Infinity,
      swf: o.swf,
    });
  } catch (err) {
    process.stderr.write(`trace replay: ${/** @type {Error} */ (err).message}\n`);
    process.exit(2);
  }
  for (const w of data.warnings) process.stderr.write(`warning: ${w}\n`);
  for (const b of data.bad) process.stderr.write(`${b.file}: line ${b.line}: ${b.message} (line skipped)\n`);
  if (data.bad.length) process.stderr.write(`${data.bad.length} bad line(s) skipped; the replay goes on\n`);
  if (data.jobs.length === 0) {
    process.stderr.write('trace replay: no replayable job in the selection\n');
    process.exit(2);
  }
  const out = [];
  for (const policy of o.policy === 'all' ? POLICIES : [o.policy]) {
    const bar = progressBar(`${o.log} / ${policy}`);
    const r = await replay({ machine: data.machine, jobs: data.jobs, policy, onProgress: bar.update });
    bar.end();
    delete r.priorityWait.all;
    delete r.batchWait.all;
    out.push(r);
  }
  const summary = { log: o.log, badLines: data.bad.length, skipped: data.skipped, results: out };
  if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  process.exit(out.some((r) => r.violations.length > 0) ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`trace replay failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
