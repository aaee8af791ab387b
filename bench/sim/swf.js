// @ts-check
'use strict';
/**
 * Reading the workload logs: SWF job lines (18 fields, `;` header comments) and the
 * MetaCentrum cluster table (.mwf). Bad lines never stop a replay: each one is reported with
 * its line number and reason, and counted.
 */
const fs = require('node:fs');
const zlib = require('node:zlib');

const FIELDS = 18;

/** @typedef {'priority' | 'normal'} JobClass */
/**
 * One replayable job of an SWF log.
 * @typedef {object} Job
 * @property {number} id
 * @property {number} line where it is in the file
 * @property {number} submit seconds
 * @property {number} run seconds
 * @property {number} procs
 * @property {number} queue
 * @property {JobClass} class
 */
/** @typedef {{ line: number, message: string }} BadLine */

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
 * @param {{ classify?: (job: Omit<Job, 'class'>) => JobClass, maxLines?: number }} [opts]
 */
function parseSwf(text, { classify, maxLines = Infinity } = {}) {
  /** @type {Job[]} */
  const jobs = [];
  /** @type {BadLine[]} */
  const bad = [];
  /** @type {Record<string, number>} */
  const skipped = {};
  /** @type {{ queues: Record<number, string>, acknowledge: string[], MaxNodes?: number, MaxProcs?: number }} */
  const header = { queues: {}, acknowledge: [] };
  const lines = text.split('\n');
  /** @param {string} why */
  const skip = (why) => (skipped[why] = (skipped[why] ?? 0) + 1);
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
    if (f.length !== FIELDS) {
      bad.push({ line: i + 1, message: `expected ${FIELDS} fields, found ${f.length}` });
      continue;
    }
    const n = f.map(Number);
    const badField = n.findIndex((x) => !Number.isFinite(x));
    if (badField >= 0) {
      bad.push({ line: i + 1, message: `field ${badField + 1} is not a number: "${f[badField]}"` });
      continue;
    }
    // 18 finite numbers (checked above).
    const [id, submit, , run, alloc, , , reqProcs] =
      /** @type {[number, number, number, number, number, number, number, number, ...number[]]} */ (n);
    const queue = /** @type {number} */ (n[14]);
    if (submit < 0) {
      bad.push({ line: i + 1, message: `negative submit time ${submit}` });
      continue;
    }
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
    jobs.push({ ...fields, class: classify ? classify(fields) : 'normal' });
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

module.exports = { readText, parseSwf, parseClusters };
