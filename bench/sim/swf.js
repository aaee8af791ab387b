// @ts-check
'use strict';
/**
 * Reading the workload logs: SWF job lines (18 fields, `;` header comments), the MetaCentrum
 * cluster table (.mwf) and Alea-style `.machines` tables. Bad lines never stop a replay: each
 * one is reported with its line number and reason, and counted.
 *
 * SWF as other tools write it is accepted: fields after the 18 standard ones are ignored, and
 * the user, group, executable, queue and partition (fields 12–16) may be text (names instead
 * of numbers). Every other field must be a number.
 */
const fs = require('node:fs');
const zlib = require('node:zlib');

const FIELDS = 18;
/** Fields (0-based) that may be text: user, group, executable, queue, partition. */
const TEXT_FIELDS = new Set([11, 12, 13, 14, 15]);

/** @typedef {'priority' | 'normal'} JobClass */
/**
 * One replayable job of an SWF log.
 * @typedef {object} Job
 * @property {number} id
 * @property {number} line where it is in the file
 * @property {number} submit seconds
 * @property {number} run seconds
 * @property {number} procs
 * @property {number | string} queue its number, or its name when the log writes names
 * @property {JobClass} class
 */
/** @typedef {{ line: number, message: string }} BadLine */
/**
 * What the `;` header says (queue names by number, acknowledgements, machine size).
 * @typedef {{ queues: Record<number, string>, acknowledge: string[], MaxNodes?: number, MaxProcs?: number }} SwfHeader
 */

/**
 * Reads a file, gunzipping `.gz`. Throws a clear error for a missing or unreadable file.
 * @param {string} file
 */
function readText(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    const e = /** @type {NodeJS.ErrnoException} */ (err);
    throw new Error(`${file}: cannot read (${e.code ?? e.message})`);
  }
  if (file.endsWith('.gz')) {
    try {
      buf = zlib.gunzipSync(buf);
    } catch (err) {
      throw new Error(`${file}: not a valid gzip file (${/** @type {Error} */ (err).message})`);
    }
  }
  return buf.toString('utf8');
}

/**
 * Parses SWF text. `classify(job)` returns 'priority' | 'normal'. Returns the replayable jobs,
 * the bad lines ({line, message}) and the jobs that are valid but cannot be replayed (never
 * ran, no processor count), counted by reason.
 * @param {string} text
 * @param {{ classify?: (job: Omit<Job, 'class'>, header: SwfHeader) => JobClass, maxLines?: number }} [opts]
 */
function parseSwf(text, { classify, maxLines = Infinity } = {}) {
  /** @type {Job[]} */
  const jobs = [];
  /** @type {BadLine[]} */
  const bad = [];
  /** @type {Record<string, number>} */
  const skipped = {};
  /** @type {SwfHeader} */
  const header = { queues: {}, acknowledge: [] };
  const lines = text.split('\n');
  /** @param {string} why */
  const skip = (why) => (skipped[why] = (skipped[why] ?? 0) + 1);
  /** @type {Map<number, number>} job number → the line that used it first */
  const seen = new Map();
  for (let i = 0; i < lines.length && jobs.length < maxLines; i++) {
    const raw = /** @type {string} */ (lines[i]).trim();
    if (raw === '') continue;
    if (raw.startsWith(';')) {
      const q = /^;\s*Queue:\s*(\d+)\s+(\S+)/.exec(raw);
      if (q) header.queues[Number(q[1])] = /** @type {string} */ (q[2]);
      const a = /^;\s*Acknowledge:\s*(.+)$/.exec(raw);
      if (a) header.acknowledge.push(/** @type {string} */ (a[1]).trim());
      const m = /^;\s*(MaxNodes|MaxProcs):\s*(\d+)/.exec(raw);
      if (m) header[/** @type {'MaxNodes' | 'MaxProcs'} */ (m[1])] = Number(m[2]);
      continue;
    }
    const f = raw.split(/\s+/);
    if (f.length < FIELDS) {
      bad.push({ line: i + 1, message: `expected at least ${FIELDS} fields, found ${f.length}` });
      continue;
    }
    const n = f.slice(0, FIELDS).map(Number);
    const badField = n.findIndex((x, k) => !Number.isFinite(x) && !TEXT_FIELDS.has(k));
    if (badField >= 0) {
      bad.push({ line: i + 1, message: `field ${badField + 1} is not a number: "${f[badField]}"` });
      continue;
    }
    // The numeric fields are finite numbers (checked above).
    const [id, submit, , run, alloc, , , reqProcs] =
      /** @type {[number, number, number, number, number, number, number, number, ...number[]]} */ (n);
    const queueText = /** @type {string} */ (f[14]);
    const queue = Number.isFinite(n[14]) ? /** @type {number} */ (n[14]) : queueText;
    if (submit < 0) {
      bad.push({ line: i + 1, message: `negative submit time ${submit}` });
      continue;
    }
    // Job numbers and processor counts are whole numbers (times may have fractions).
    const notWhole = [1, 5, 8].find((field) => !Number.isSafeInteger(n[field - 1]));
    if (notWhole !== undefined) {
      bad.push({ line: i + 1, message: `field ${notWhole} is not a whole number: "${f[notWhole - 1]}"` });
      continue;
    }
    const first = seen.get(id);
    if (first !== undefined) {
      bad.push({ line: i + 1, message: `job number ${id} is used twice (first on line ${first})` });
      continue;
    }
    seen.set(id, i + 1);
    if (run < 0) {
      skip('never ran (run time -1)');
      continue;
    }
    const procs = alloc > 0 ? alloc : reqProcs;
    if (!(procs > 0)) {
      skip('no processor count');
      continue;
    }
    const fields = { id, line: i + 1, submit, run, procs, queue };
    jobs.push({ ...fields, class: classify ? classify(fields, header) : 'normal' });
  }
  return { jobs, bad, skipped, header };
}

/**
 * The MetaCentrum cluster table: id, name, MHz, RAM KB, CPU type, OS, properties, nodes,
 * CPUs, CPUs per node (comma list), CPU ids. Returns [{name, cpus}] one per physical node.
 * @param {string} text
 */
function parseClusters(text) {
  /** @type {{ name: string, cpus: number }[]} */
  const nodes = [];
  /** @type {BadLine[]} */
  const bad = [];
  /** @type {BadLine[]} */
  const warnings = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '' || raw.startsWith('#')) return;
    const f = raw.split('\t');
    if (f.length < 10) {
      bad.push({ line: i + 1, message: `expected 11 tab-separated fields, found ${f.length}` });
      return;
    }
    // At least 10 fields (checked above).
    const [, name = '', , , , , , nodesText, cpusText, perNodeText = ''] = f;
    const perNode = perNodeText.split(',').map(Number);
    if (perNode.some((x) => !(x > 0))) {
      bad.push({ line: i + 1, message: `bad CPUs-per-node list "${perNodeText}"` });
      return;
    }
    const declared = Number(nodesText);
    let list = perNode;
    if (declared > 0 && perNode.length !== declared) {
      list = perNode.slice(0, declared);
      warnings.push({
        line: i + 1,
        message: `the row of ${name} lists ${perNode.length} per-node CPU counts for its ${declared} nodes; the first ${declared} are used (${list.reduce((a, b) => a + b, 0)} CPUs; the row says ${cpusText})`,
      });
    }
    list.forEach((cpus, k) => nodes.push({ name: `${name.replace(/_/g, '')}n${k}`, cpus }));
  });
  return { nodes, bad, warnings };
}

/**
 * An Alea-style `.machines` table: one cluster per line, whitespace-separated: id, name,
 * nodes, CPUs per node, then anything (speed, memory, properties…); `#` or `;` comments.
 * Returns [{name, cpus}] one per physical node, and the bad lines.
 * @param {string} text
 */
function parseAleaMachines(text) {
  /** @type {{ name: string, cpus: number }[]} */
  const nodes = [];
  /** @type {BadLine[]} */
  const bad = [];
  const names = new Set();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const f = line.split(/\s+/);
    if (f.length < 4) {
      bad.push({
        line: i + 1,
        message: `expected at least 4 fields (id, name, nodes, CPUs per node), found ${f.length}`,
      });
      return;
    }
    const [, name = '', nodesText = '', cpusText = ''] = f;
    const count = Number(nodesText);
    const cpus = Number(cpusText);
    if (!Number.isSafeInteger(count) || count <= 0 || count > 100_000) {
      bad.push({ line: i + 1, message: `bad node count "${nodesText}" (a whole number, 1 to 100000)` });
      return;
    }
    if (!Number.isSafeInteger(cpus) || cpus <= 0 || cpus > 4096) {
      bad.push({ line: i + 1, message: `bad CPUs per node "${cpusText}" (a whole number, 1 to 4096)` });
      return;
    }
    const base = name.replace(/[^A-Za-z0-9]/g, '');
    if (base === '' || names.has(base)) {
      bad.push({ line: i + 1, message: `cluster name "${name}" is empty or used twice` });
      return;
    }
    names.add(base);
    for (let k = 0; k < count; k++) nodes.push({ name: `${base}n${k}`, cpus });
  });
  return { nodes, bad, warnings: /** @type {BadLine[]} */ ([]) };
}

/**
 * A machine table, either format: the MetaCentrum cluster table (tab-separated, 10 or more
 * fields, a comma list of CPUs per node) or an Alea-style `.machines` table. `.mwf` and
 * `.machines` files are read as such; any other name by the shape of its first data line.
 * @param {string} text
 * @param {string} file
 */
function parseMachines(text, file) {
  const base = file.replace(/\.gz$/, '');
  if (base.endsWith('.mwf')) return { format: 'metacentrum', ...parseClusters(text) };
  if (base.endsWith('.machines')) return { format: 'alea', ...parseAleaMachines(text) };
  const first = text.split('\n').find((l) => l.trim() !== '' && !/^\s*[#;]/.test(l)) ?? '';
  return first.split('\t').length >= 10
    ? { format: 'metacentrum', ...parseClusters(text) }
    : { format: 'alea', ...parseAleaMachines(text) };
}

module.exports = { readText, parseSwf, parseClusters, parseAleaMachines, parseMachines };
