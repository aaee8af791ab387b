#!/usr/bin/env node
// @ts-check
'use strict';
/**
 * Replays a workload log (a shipped one, or any SWF file with a machine table) under one or
 * all policies through real daemons and the real filter, and prints the results. Bad lines
 * are reported with their line numbers and the replay goes on. `--help` says how.
 */
const { parseArgs } = require('node:util');
const { replay, POLICIES } = require('./replay');
const { LOGS, loadLog } = require('./logs');
const { progressBar } = require('./progress');
const { markdownTable } = require('../lib');

const HELP = `usage: node bench/sim/cli.js (--log NAME | --swf FILE --machines FILE) [options]

Replays an SWF workload log through real magrathead daemons and the real magrathea-filter,
with a small PBS-like placement loop standing in for PBS (bench/sim/replay.js), and prints
the results table (wait times, utilisation, preemptions, starts per second).

  --log NAME              a shipped log: ${Object.keys(LOGS).join(', ')} (its machine, priority
                          queues and default window)
  --swf FILE              an SWF log (.gz is read too); with --log it replaces that log's jobs.
                          Fields after the 18 standard ones are ignored; user, group,
                          executable, queue and partition may be names. A line with a job
                          number used before or a fractional processor count is reported
                          and skipped
  --machines FILE         the machine: a MetaCentrum cluster table (.mwf: id, name, MHz, RAM,
                          CPU type, OS, properties, nodes, CPUs, CPUs per node, …; tab-separated)
                          or an Alea-style .machines table (id, name, nodes, CPUs per node, …;
                          whitespace-separated). Required without --log
  --priority-queues LIST  comma list of queue numbers or names whose jobs are priority
                          (interactive) work; names also match the SWF header's "; Queue: N name".
                          Default: the shipped log's choice; without --log every job is batch work
  --policy P              ${POLICIES.join(', ')}, a comma list of them (run one after another
                          on the same jobs), or all (default magrathea)
  --from N                skip the first N replayable jobs (default: the shipped log's window, else 0)
  --jobs N                replay N jobs (default: the shipped log's window, else all)
  --placement MODE        indexed (default) or scan (the placement loop before issue 15: sorts
                          and scans every cycle, waits for every busy node when a job does not fit)
  --json                  print the results as JSON on stdout instead of a table
  -h, --help              print this help and exit

Exit status: 0 done, 1 an accounting violation or a failure, 2 bad usage or input.
`;

/**
 * @param {string} msg
 * @returns {never}
 */
function usage(msg) {
  process.stderr.write(`trace replay: ${msg}\n(node bench/sim/cli.js --help for the options)\n`);
  process.exit(2);
}

/**
 * @param {string | undefined} v
 * @param {string} name
 */
function wholeNumber(v, name) {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) usage(`${name} must be a whole number, got "${v}"`);
  return Number(v);
}

/**
 * @param {readonly string[]} argv
 */
function options(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        log: { type: 'string' },
        swf: { type: 'string' },
        machines: { type: 'string' },
        'priority-queues': { type: 'string' },
        policy: { type: 'string', default: 'magrathea' },
        from: { type: 'string' },
        jobs: { type: 'string' },
        placement: { type: 'string', default: 'indexed' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    usage(/** @type {Error} */ (err).message);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  if (v.log !== undefined && !LOGS[v.log]) usage(`unknown log "${v.log}" (one of ${Object.keys(LOGS).join(', ')})`);
  if (v.log === undefined && (v.swf === undefined || v.machines === undefined))
    usage('give --log NAME, or --swf FILE with --machines FILE');
  const policy = /** @type {string} */ (v.policy);
  /** @type {string[]} */
  const policies = policy === 'all' ? [...POLICIES] : policy.split(',').map((p) => p.trim());
  const badPolicy = policies.find((p) => !POLICIES.includes(/** @type {import('./placement').Policy} */ (p)));
  if (badPolicy !== undefined)
    usage(`unknown policy "${badPolicy}" (one of ${POLICIES.join(', ')}, a comma list of them, or all)`);
  const repeated = policies.find((p, k) => policies.indexOf(p) !== k);
  if (repeated !== undefined) usage(`repeated policy "${repeated}" in --policy`);
  const placement = /** @type {string} */ (v.placement);
  if (placement !== 'indexed' && placement !== 'scan') usage(`unknown placement "${placement}" (indexed or scan)`);
  let priorityQueues;
  if (v['priority-queues'] !== undefined) {
    priorityQueues = v['priority-queues'].split(',').map((q) => q.trim());
    const badQueue = priorityQueues.find((q) => !/^[A-Za-z0-9_.-]{1,64}$/.test(q));
    if (badQueue !== undefined) usage(`--priority-queues: "${badQueue}" is not a queue number or name`);
  }
  const from = wholeNumber(v.from, '--from');
  const jobs = wholeNumber(v.jobs, '--jobs');
  if (jobs === 0) usage('--jobs must be at least 1');
  return {
    log: v.log ?? null,
    swf: v.swf,
    machines: v.machines,
    priorityQueues,
    policies: /** @type {import('./placement').Policy[]} */ (policies),
    placement: /** @type {import('./simulation').Placement} */ (placement),
    from,
    jobs,
    json: v.json === true,
  };
}

const secs = (/** @type {number | undefined} */ s) =>
  s === undefined || !Number.isFinite(s) ? '—' : `${Math.round(s)}`;

/** @param {Awaited<ReturnType<typeof replay>>[]} results */
function table(results) {
  return markdownTable(
    [
      'policy',
      'jobs',
      'chunk starts',
      'starts/s',
      'priority wait p50 / p95 s',
      'batch wait p50 / p95 s',
      'utilisation',
      'preemptions',
      'never placed',
      'violations',
    ],
    results.map((r) => [
      r.policy,
      String(r.jobs),
      String(r.starts),
      Math.round(r.startsPerSecond).toLocaleString('en'),
      `${secs(r.priorityWait.p50)} / ${secs(r.priorityWait.p95)}`,
      `${secs(r.batchWait.p50)} / ${secs(r.batchWait.p95)}`,
      `${(r.utilisation * 100).toFixed(1)} %`,
      String(r.preemptions),
      String(r.unplaceable),
      String(r.violations.length),
    ]),
  );
}

async function main() {
  const o = options(process.argv.slice(2));
  const window = o.log !== null && !o.swf ? /** @type {import('./logs').LogInfo} */ (LOGS[o.log]).window : null;
  let data;
  try {
    data = loadLog(o.log, {
      from: o.from ?? window?.from ?? 0,
      jobs: o.jobs ?? window?.jobs ?? Infinity,
      ...(o.swf !== undefined ? { swf: o.swf } : {}),
      ...(o.machines !== undefined ? { machines: o.machines } : {}),
      ...(o.priorityQueues ? { priorityQueues: o.priorityQueues } : {}),
    });
  } catch (err) {
    usage(/** @type {Error} */ (err).message);
  }
  for (const w of data.warnings) process.stderr.write(`warning: ${w}\n`);
  for (const b of data.bad) process.stderr.write(`${b.file}: line ${b.line}: ${b.message} (line skipped)\n`);
  if (data.bad.length) process.stderr.write(`${data.bad.length} bad line(s) skipped; the replay goes on\n`);
  if (data.jobs.length === 0) usage('no replayable job in the selection');
  const name = o.log ?? o.swf ?? '';
  const out = [];
  for (const policy of o.policies) {
    const bar = progressBar(`${name} / ${policy}`);
    const r = await replay({
      machine: data.machine,
      jobs: data.jobs,
      policy,
      placement: o.placement,
      onProgress: bar.update,
    });
    bar.end();
    delete r.priorityWait.all;
    delete r.batchWait.all;
    out.push(r);
  }
  const summary = {
    log: name,
    machine: { nodes: data.machine.length, cpus: data.machine.reduce((s, n) => s + n.cpus, 0) },
    badLines: data.bad.length,
    skipped: data.skipped,
    results: out,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else
    process.stdout.write(
      `${name}: ${summary.machine.nodes} nodes, ${summary.machine.cpus} CPUs, ${data.jobs.length} jobs, ${data.bad.length} bad lines\n\n${table(out)}\n`,
    );
  process.exit(out.some((r) => r.violations.length > 0) ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`trace replay failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
