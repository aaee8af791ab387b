// @ts-check
'use strict';
/**
 * The two workload logs: where they are, the machine each ran on, and how priority
 * (interactive) arrivals are derived from them. See docs/evaluation.md.
 */
const fs = require('node:fs');
const path = require('node:path');
const { readText, parseSwf, parseMachines } = require('./swf');
const { chunksFor } = require('./placement');

/** @typedef {import('./swf').Job} Job */
/** @typedef {import('./swf').JobClass} JobClass */
/** @typedef {Omit<Job, 'class'>} JobFields */
/**
 * A workload log: where it is, its machine, and which of its jobs are priority work.
 * @typedef {object} LogInfo
 * @property {string} title
 * @property {string} swf
 * @property {string} [clusters] the MetaCentrum cluster table (when the machine is not fixed)
 * @property {() => { name: string, cpus: number }[]} [machine] a fixed machine
 * @property {(j: JobFields, header: import('./swf').SwfHeader) => JobClass} classify
 * @property {string} derivation
 * @property {string} acknowledgement
 * @property {{ from: number, jobs: number }} window the default window of job lines
 */

/** The workload logs: $MAGRATHEA_DATA, else ../shared/data beside the checkout, else /work/shared/data. */
const DATA =
  process.env.MAGRATHEA_DATA ??
  [path.resolve(__dirname, '../../../shared/data'), '/work/shared/data'].find((d) => fs.existsSync(d)) ??
  path.resolve(__dirname, '../../../shared/data');

/** @type {Record<string, LogInfo>} */
const LOGS = {
  metacentrum: {
    title: 'MetaCentrum 2009 (Czech national grid, PBSPro)',
    swf: path.join(DATA, 'metacentrum-2009/METACENTRUM-2009-2.swf.gz'),
    clusters: path.join(DATA, 'metacentrum-2009/clusters-2009.mwf'),
    /** The short high-priority queues q5 (prio 80, very short jobs) and q10 (prio 99). */
    classify: (j) => (j.queue === 5 || j.queue === 10 ? 'priority' : 'normal'),
    derivation:
      'no queue is labelled interactive; the two short high-priority queues q5 (priority 80, very short jobs) and q10 (priority 99) are taken as the priority/interactive arrivals',
    acknowledgement:
      'The MetaCentrum workload log was graciously provided by Czech National Grid Infrastructure MetaCentrum, distributed by the Parallel Workloads Archive (D. G. Feitelson, D. Tsafrir, D. Krakov, "Experience with using the Parallel Workloads Archive", JPDC 74(10), 2014). See also D. Klusáček, H. Rudová, "The importance of complete data sets for job scheduling simulations", JSSPP 2010, LNCS 6253.',
    /** Default window: the part of the log with the most q5/q10 arrivals. */
    window: { from: 30_000, jobs: 20_000 },
  },
  'sdsc-blue': {
    title: 'SDSC Blue Horizon 2000–2003 (IBM SP, 144 × 8-way nodes)',
    swf: path.join(DATA, 'sdsc-blue-2000/SDSC-BLUE-2000-4.2-cln.swf.gz'),
    machine: () => Array.from({ length: 144 }, (_, i) => ({ name: `blue${String(i).padStart(3, '0')}`, cpus: 8 })),
    /** Its real interactive queue (queue 0). */
    classify: (j) => (j.queue === 0 ? 'priority' : 'normal'),
    derivation: "the log's own `interactive` queue (queue 0) is the priority/interactive class",
    acknowledgement:
      'SDSC Blue Horizon log from the Parallel Workloads Archive (cleaned version 4.2); log acknowledgement: Travis Earheart and Nancy Wilkins-Diehr (SDSC); converted by Dror Feitelson.',
    window: { from: 0, jobs: 20_000 },
  },
};

/**
 * Priority work by queue: `list` holds queue numbers or names ("5,10" or "q5,interactive"). A
 * name matches a queue written as that name, or a numbered queue the SWF header names so.
 * @param {readonly string[]} list
 * @returns {(j: JobFields, header: import('./swf').SwfHeader) => JobClass}
 */
function queueClassifier(list) {
  const wanted = new Set(list);
  return (j, header) => {
    if (wanted.has(String(j.queue))) return 'priority';
    const named = typeof j.queue === 'number' ? header.queues[j.queue] : undefined;
    return named !== undefined && wanted.has(named) ? 'priority' : 'normal';
  };
}

/**
 * @typedef {object} LoadOptions
 * @property {number} [from] first job line of the window (replayable jobs counted)
 * @property {number} [jobs] jobs in the window
 * @property {string} [swf] the SWF file (default: the shipped log's)
 * @property {string} [machines] a machine table (MetaCentrum .mwf or Alea .machines; default: the shipped log's)
 * @property {readonly string[]} [priorityQueues] queues (numbers or names) whose jobs are priority work (default: the shipped log's choice; none for another log)
 */

/**
 * Loads a log's machine and jobs: a shipped log by name, or any SWF file with a machine table
 * (`name` null). `from`/`jobs` select a window of job lines (replayable jobs counted). Jobs
 * that ask for more than the machine can ever give are bad lines too. Throws a clear error for
 * a missing file or an empty machine. Returns {machine, jobs, bad, skipped, warnings}.
 * @param {string | null} name
 * @param {LoadOptions} [opts]
 */
function loadLog(name, { from = 0, jobs = Infinity, swf, machines, priorityQueues } = {}) {
  const log = name === null ? null : LOGS[name];
  if (name !== null && !log) throw new Error(`unknown log "${name}" (one of ${Object.keys(LOGS).join(', ')})`);
  /** @type {string[]} */
  const warnings = [];
  let machine;
  const table = machines ?? log?.clusters;
  if (table) {
    const c = parseMachines(readText(table), table);
    for (const b of c.bad) warnings.push(`${path.basename(table)} line ${b.line}: ${b.message} (skipped)`);
    for (const w of c.warnings) warnings.push(`${path.basename(table)} line ${w.line}: ${w.message}`);
    machine = c.nodes;
  } else if (log?.machine) machine = log.machine();
  else throw new Error('a machine table is needed (--machines FILE: a MetaCentrum .mwf or an Alea .machines table)');
  if (machine.length === 0) throw new Error(`${table}: no node in the machine table`);
  const file = swf ?? log?.swf;
  if (!file) throw new Error('an SWF log is needed (--swf FILE)');
  let classify = log?.classify;
  if (priorityQueues) classify = queueClassifier(priorityQueues);
  else if (!log) warnings.push('no --priority-queues given: every job is batch (normal) work');
  const parsed = parseSwf(readText(file), { ...(classify ? { classify } : {}), maxLines: from + jobs });
  const maxNodeCpus = Math.max(...machine.map((n) => n.cpus));
  /** @type {{ file: string, line: number, message: string }[]} */
  const bad = parsed.bad.map((b) => ({ ...b, file }));
  const fits = [];
  for (const j of parsed.jobs.slice(from)) {
    const ch = chunksFor(j.procs, maxNodeCpus);
    const nodes = machine.filter((n) => n.cpus >= ch.cpus).length;
    if (ch.count > nodes) {
      bad.push({
        file,
        line: j.line,
        message: `job ${j.id} asks for ${j.procs} CPUs; the machine can give at most ${nodes * ch.cpus} (${nodes} nodes × ${ch.cpus})`,
      });
      continue;
    }
    fits.push(j);
  }
  // Replay time starts at the window's first submission.
  const t0 = fits.reduce((m, j) => Math.min(m, j.submit), fits[0]?.submit ?? 0);
  return {
    log,
    machine,
    jobs: fits.map((j) => ({ ...j, submit: j.submit - t0 })),
    bad,
    skipped: parsed.skipped,
    warnings,
  };
}

module.exports = { LOGS, loadLog, queueClassifier };
