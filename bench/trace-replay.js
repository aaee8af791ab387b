// @ts-check
'use strict';
/**
 * Trace replay: each workload log under each policy, through real daemons and the real filter
 * (bench/sim/replay.js). Prints the comparison, writes docs/evaluation.md with its plots, and
 * returns the throughput section of BENCHMARKS.md.
 *
 * Environment: TRACE_JOBS (jobs per replay, or "all"), TRACE_LOGS (comma list), TRACE_BASELINE=0
 * (skip the before-issue-15 placement run of each log).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { replay, POLICIES } = require('./sim/replay');
const { LOGS, loadLog } = require('./sim/logs');
const { progressBar } = require('./sim/progress');
const { cdfChart } = require('./sim/svg');
const { markdownTable, machine: machineText, ROOT } = require('./lib');

/** Everything after this line of docs/evaluation.md is not written by this benchmark and is kept. */
const KEPT_MARKER = '<!-- kept by npm run bench: sections below are measured elsewhere -->';

/** @typedef {Awaited<ReturnType<typeof replay>>} ReplayResult */
/**
 * @typedef {object} LogResults
 * @property {string} name
 * @property {import('./sim/logs').LogInfo} log
 * @property {{ from: number, jobs: number }} window
 * @property {ReturnType<typeof loadLog>} data
 * @property {ReplayResult[]} perPolicy
 * @property {ReplayResult[]} baseline the magrathea policy with the scanning placement (before issue 15)
 */

/** @type {Record<string, string>} */
const POLICY_TEXT = {
  magrathea: 'Magrathea (priority domain preempts the batch domain)',
  partial: 'partial preemption (CPU-counting mode: only the batch jobs a priority job needs are suspended)',
  static: 'static partitioning (half the nodes for priority work)',
  nopriority: 'no priority domain (priority jobs queue ahead, no preemption)',
};

const hms = (/** @type {number} */ s) => {
  if (!Number.isFinite(s)) return '—';
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
};

/** @returns {Promise<import('./lib').BenchResult>} */
async function run() {
  const load = os.loadavg();
  const logs = (process.env.TRACE_LOGS ?? Object.keys(LOGS).join(',')).split(',');
  const results = [];
  for (const name of logs) {
    const log = LOGS[name];
    if (!log) throw new Error(`unknown log "${name}" (one of ${Object.keys(LOGS).join(', ')})`);
    const jobsEnv = process.env.TRACE_JOBS;
    const window =
      jobsEnv === 'all'
        ? { from: 0, jobs: Infinity }
        : { ...log.window, ...(jobsEnv ? { jobs: Number(jobsEnv) } : {}) };
    const data = loadLog(name, window);
    for (const w of data.warnings) process.stderr.write(`  ${name}: ${w}\n`);
    for (const b of data.bad.slice(0, 5)) process.stderr.write(`  ${name}: line ${b.line}: ${b.message}\n`);
    if (data.bad.length > 5) process.stderr.write(`  ${name}: … ${data.bad.length - 5} more bad lines\n`);
    const perPolicy = [];
    for (const policy of POLICIES) {
      const bar = progressBar(`  ${name} / ${policy}`);
      const r = await replay({ machine: data.machine, jobs: data.jobs, policy, onProgress: bar.update });
      bar.end();
      if (r.violations.length)
        throw new Error(`${name}/${policy}: accounting violations: ${r.violations.slice(0, 3).join('; ')}`);
      perPolicy.push(r);
    }
    // The same jobs with the placement loop as it was before issue 15 (throughput only).
    /** @type {ReplayResult[]} */
    const baseline = [];
    if (process.env.TRACE_BASELINE !== '0') {
      const bar = progressBar(`  ${name} / magrathea, placement scan (before)`);
      const r = await replay({
        machine: data.machine,
        jobs: data.jobs,
        policy: 'magrathea',
        placement: 'scan',
        onProgress: bar.update,
      });
      bar.end();
      baseline.push(r);
    }
    results.push({ name, log, window, data, perPolicy, baseline });
  }
  writeEvaluation(results);

  const cores = os.cpus().length;
  /** @param {ReplayResult} r */
  const cpuTotal = (r) => r.cpuSeconds.daemons + r.cpuSeconds.filter + r.cpuSeconds.placement;
  /** @param {ReplayResult} r @param {number} s CPU seconds */
  const perStart = (r, s) => (s / r.starts) * 1000;
  const rows = results.flatMap(({ name, perPolicy, baseline }) =>
    [...baseline, ...perPolicy].map((r) => [
      name,
      r.policy,
      r.placement === 'scan' ? 'before: scan, waits for every busy node' : 'after: indexed, waits only if it helps',
      r.jobs.toLocaleString('en'),
      r.starts.toLocaleString('en'),
      r.wallSeconds.toFixed(1),
      Math.round(r.startsPerSecond).toLocaleString('en'),
      `${r.cpuSeconds.daemons.toFixed(1)} / ${r.cpuSeconds.filter.toFixed(1)} / ${r.cpuSeconds.placement.toFixed(1)}`,
      `${perStart(r, cpuTotal(r)).toFixed(2)} (${perStart(r, r.cpuSeconds.daemons).toFixed(2)} / ${perStart(r, r.cpuSeconds.filter).toFixed(2)} / ${perStart(r, r.cpuSeconds.placement).toFixed(2)})`,
      `${Math.round((cpuTotal(r) / (r.wallSeconds * cores)) * 100)} %`,
      r.startsPerSecond >= 2000 ? 'met (≥ 2,000/s)' : 'MISSED (≥ 2,000/s)',
    ]),
  );
  const after = results.flatMap((x) => x.perPolicy);
  const best = after.reduce(
    (a, r) => (r.startsPerSecond > a.startsPerSecond ? r : a),
    /** @type {ReplayResult} */ (after[0]),
  );
  const sum = (/** @type {(r: ReplayResult) => number} */ f) => after.reduce((a, r) => a + f(r), 0);
  const starts = sum((r) => r.starts);
  const msPer = (/** @type {number} */ s) => ((s / starts) * 1000).toFixed(2);
  const met = after.filter((r) => r.startsPerSecond >= 2000).length;
  return {
    title: 'Trace replay throughput (job starts per second through the real daemons)',
    sections: [
      {
        head: [
          'log',
          'policy',
          'placement loop',
          'jobs',
          'chunk starts',
          'wall s',
          'starts/s',
          'CPU s: daemons / filter / placement',
          'CPU ms per start, incl. its end (daemons / filter / placement)',
          `CPU use (of ${cores} cores)`,
          'target',
        ],
        rows,
      },
    ],
    notes: [
      'Every start and end goes through a real magrathead hook API (HTTP, bearer token, state machine, journal append) — 210 or 144 real `Daemon`s hosted in 2 processes, journals on tmpfs — and every state change reaches the placement loop through the real magrathea-filter (daemon WatchNode stream → filter view → WatchCluster stream). The comparison of policies is in docs/evaluation.md. A chunk start is one hook request (a job of several nodes is several starts).',
      `Before and after in this run: the "before" row is the placement loop as it was (every cycle sorts and scans the candidates, and when a queued job does not fit it waits until every node with an answer or a publication outstanding has settled, so the replay's clock moves at the filter's round trip whenever anything is queued); "after" keeps the candidates indexed and waits only when the busy nodes could hold a queued job (their room plus the CPUs of starts in flight, which a refusal gives back; otherwise only a later event can free room), and holds a priority job back while it would suspend batch work on the usable nodes but a busy node might take it without (where a priority job goes decides whether batch work is preempted). The outcomes depend on how settled the view is when a job is placed: on the first 4,000 SDSC jobs (magrathea, one machine state), placing every job from a fully settled view gave 385 preemptions, the "before" loop 677 (807 on a loaded machine), waiting only when a queued job could fit without the priority rule 1,089, and this loop 402, all at 57.1 % utilisation.`,
      `The ≥ 2,000 starts/s target is ${met === after.length ? 'met by every policy' : met > 0 ? `met by ${met} of ${after.length} replays` : 'missed'} (best ${Math.round(best.startsPerSecond).toLocaleString('en')}/s: ${best.policy} on ${results.find((x) => x.perPolicy.includes(best))?.name}). Over the "after" replays a start with its end costs ${msPer(sum(cpuTotal))} ms of CPU: ${msPer(sum((r) => r.cpuSeconds.daemons))} ms in the daemons (hook HTTP request and answer, token check, state machine, journal append with its state-directory check, WatchNode encode), ${msPer(sum((r) => r.cpuSeconds.filter))} ms in the filter (decode, view, WatchCluster encode, publication batches) and ${msPer(sum((r) => r.cpuSeconds.placement))} ms in the placement loop (HTTP client, WatchCluster decode, cycles). ${cores} cores give at most ${Math.round((cores * 1000) / Number(msPer(sum(cpuTotal)))).toLocaleString('en')} starts/s at that cost; 2,000/s needs ≤ ${(cores / 2).toFixed(2)} ms per start with every core busy.`,
      `Load average when the run began: ${load.map((x) => x.toFixed(2)).join(' / ')} (1 / 5 / 15 min).`,
      "The CPU-use column is the three parts' CPU over wall time × cores: below 100 % the replay waits on latency (a node busy until the filter shows its answer, 64 requests in flight at most, or the CPU given to other processes on the machine).",
    ],
  };
}

/** "210 nodes, 806 CPUs" @param {readonly { cpus: number }[]} machine */
const machineSize = (machine) =>
  `${machine.length} nodes, ${machine.reduce((s, n) => s + n.cpus, 0).toLocaleString('en')} CPUs`;

/** @param {readonly LogResults[]} results */
function writeEvaluation(results) {
  const dir = path.join(ROOT, 'docs/evaluation');
  fs.mkdirSync(dir, { recursive: true });
  const md = [
    '# Evaluation: trace replay on real workloads',
    '',
    `Generated by \`npm run bench trace-replay\` on ${new Date().toISOString().slice(0, 10)} (${machineText()}). Every number below comes from one run of each policy on the same jobs; the replays go through real magrathead daemons and the real magrathea-filter (see \`bench/sim/replay.js\` for exactly what the PBS stand-in does).`,
    '',
    '## Method',
    '',
    `- **Machine**: the log's own — ${results
      .map(
        ({ log, data }) =>
          `${log.title.replace(/ \(.*$/, '')}: ${machineSize(data.machine)}${log.clusters ? ', every cluster of its cluster table' : ''}`,
      )
      .join(
        '; ',
      )}. Each physical node runs a real daemon with two domains: \`batch\` (normal) and \`prio\` (priority).`,
    "- **Placement** (the PBS stand-in): a job asks for one chunk if it fits the largest node, else whole-node chunks; a chunk goes only to a vnode whose published `magrathea` value is exactly the job's class, highest `magrathea_rank` first, and with enough free CPUs (PBS's `ncpus`). Priority jobs are queued ahead of batch jobs; any job that fits starts (no reservations or backfill windows: the logs carry no usable walltime requests). Starts and ends go through each daemon's hook API, as the execjob hooks do; a refused start goes back to the queue.",
    '- **Time**: discrete-event, accelerated: a job ends its logged run time after its start, plus the time it spent suspended (its batch domain preempted).',
    "- **Policies**: *magrathea* — batch jobs run in the batch domain and are preemptible; a priority job starts in the priority domain and preempts the node's batch domain, which resumes when the priority domain empties. *static* — alternate nodes are reserved for priority work (half the machine), no preemption. *no priority domain* — every job runs in the batch domain; priority jobs only queue ahead.",
    '- **Metrics**: wait = start − submit; bounded slowdown = (end − submit) / max(run, 10 s); utilisation = CPU-seconds of logged work / (CPUs × span from first submit to last end); preemptions = starts that suspended a batch domain; time preempted = job-hours batch jobs spent suspended. Jobs never placed are counted (under static partitioning a job wider than its half cannot run).',
    '- **Variance**: the placement loop sees state changes when the filter publishes them (real time), so two runs of the same policy can differ slightly.',
    '',
  ];
  for (const { name, log, window, data, perPolicy } of results) {
    const jobsN = data.jobs.length;
    const prio = data.jobs.filter((j) => j.class === 'priority').length;
    md.push(
      `## ${log.title}`,
      '',
      `Window: job lines ${window.from.toLocaleString('en')}–${(window.from + jobsN).toLocaleString('en')} (${jobsN.toLocaleString('en')} replayable jobs, ${prio.toLocaleString('en')} of them priority). Priority arrivals: ${log.derivation}. Skipped as not replayable: ${
        Object.entries(data.skipped)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ') || 'none'
      }; bad lines: ${data.bad.length}${data.bad[0] ? ` (first: line ${data.bad[0].line}: ${data.bad[0].message})` : ''}.${data.warnings.length ? ` Machine (${machineSize(data.machine)} in all), corrected in one place: ${data.warnings.join('; ')}.` : ''}`,
      '',
      markdownTable(
        [
          'policy',
          'priority wait median',
          'priority wait p95',
          'batch wait median',
          'batch wait p95',
          'batch wait mean',
          'batch slowdown mean',
          'utilisation',
          'preemptions',
          'time preempted (job-h)',
          'jobs suspended',
          'suspended CPU-h',
          'never placed',
        ],
        perPolicy.map((r) => [
          POLICY_TEXT[r.policy],
          hms(r.priorityWait.p50),
          hms(r.priorityWait.p95),
          hms(r.batchWait.p50),
          hms(r.batchWait.p95),
          hms(r.batchWait.mean),
          r.batchSlowdown.mean.toFixed(2),
          `${(r.utilisation * 100).toFixed(1)} %`,
          r.preemptions.toLocaleString('en'),
          r.preemptedJobHours.toFixed(1),
          r.jobsSuspended.toLocaleString('en'),
          r.suspendedCpuHours.toFixed(1),
          String(r.unplaceable),
        ]),
      ),
      '',
    );
    for (const cls of ['priority', 'batch']) {
      const file = `${name}-${cls}-wait.svg`;
      fs.writeFileSync(
        path.join(ROOT, 'docs/evaluation', file),
        cdfChart({
          title: `${log.title.split(' (')[0]}: ${cls} job wait times`,
          series: perPolicy.map((r) => ({
            label: r.policy === 'nopriority' ? 'no priority domain' : r.policy,
            values: (cls === 'priority' ? r.priorityWait.all : r.batchWait.all) ?? [],
          })),
        }),
      );
      md.push(`![${cls} wait times, ${name}](evaluation/${file})`, '');
    }
    md.push(`Acknowledgement: ${log.acknowledgement}`, '');
  }
  md.push(
    '## Reading the results',
    '',
    'The accounting is checked on every replay (every job started once and ended once; never two domains of a node active at the same time, as the filter reported them); a violation fails the benchmark.',
    '',
  );
  // Sections measured elsewhere (the real-PBS suite) live below the marker and are kept.
  const evaluation = path.join(ROOT, 'docs/evaluation.md');
  const previous = fs.existsSync(evaluation) ? fs.readFileSync(evaluation, 'utf8') : '';
  const at = previous.indexOf(KEPT_MARKER);
  fs.writeFileSync(evaluation, md.join('\n') + (at >= 0 ? `\n${previous.slice(at)}` : ''));
  process.stdout.write(`written: docs/evaluation.md and docs/evaluation/*.svg\n`);
  for (const { name, perPolicy } of results) {
    process.stdout.write(`\n${name}\n`);
    for (const r of perPolicy)
      process.stdout.write(
        `  ${r.policy.padEnd(11)} priority wait p50 ${hms(r.priorityWait.p50)}, p95 ${hms(r.priorityWait.p95)}; batch wait p50 ${hms(r.batchWait.p50)}, p95 ${hms(r.batchWait.p95)}; util ${(r.utilisation * 100).toFixed(1)} %; preemptions ${r.preemptions}\n`,
      );
  }
}

module.exports = { run };
