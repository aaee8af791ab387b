'use strict';
/**
 * Reading the workload logs: SWF job lines (18 fields, `;` header comments) and the
 * MetaCentrum cluster table (.mwf). Bad lines never stop a replay: each one is reported with
 * its line number and reason, and counted.
 */
const fs = require('node:fs');
const zlib = require('node:zlib');

const FIELDS = 18;

/** Reads a file, gunzipping `.gz`. Throws a clear error for a missing or unreadable file. */
function readText(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${file}: cannot read (${err.code ?? err.message})`);
  }
  if (file.endsWith('.gz')) {
    try {
      buf = zlib.gunzipSync(buf);
    } catch (err) {
      throw new Error(`${file}: not a valid gzip file (${err.message})`);
    }
  }
  return buf.toString('utf8');
}

/**
 * Parses SWF text. `classify(job)` returns 'priority' | 'normal'. Returns the replayable jobs,
 * the bad lines ({line, message}) and the jobs that are valid but cannot be replayed (never
 * ran, no processor count), counted by reason.
 */
function parseSwf(text, { classify, maxLines = Infinity } = {}) {
  const jobs = [];
  const bad = [];
  const skipped = {};
  const header = { queues: {}, acknowledge: [] };
  const lines = text.split('\n');
  const skip = (why) => (skipped[why] = (skipped[why] ?? 0) + 1);
  for (let i = 0; i < lines.length && jobs.length < maxLines; i++) {
    const raw = lines[i].trim();
    if (raw === '') continue;
    if (raw.startsWith(';')) {
      const q = /^;\s*Queue:\s*(\d+)\s+(\S+)/.exec(raw);
      if (q) header.queues[Number(q[1])] = q[2];
      const a = /^;\s*Acknowledge:\s*(.+)$/.exec(raw);
      if (a) header.acknowledge.push(a[1].trim());
      const m = /^;\s*(MaxNodes|MaxProcs):\s*(\d+)/.exec(raw);
      if (m) header[m[1]] = Number(m[2]);
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
    const [id, submit, , run, alloc, , , reqProcs] = n;
    const queue = n[14];
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
    const job = { id, line: i + 1, submit, run, procs, queue };
    job.class = classify ? classify(job) : 'normal';
    jobs.push(job);
  }
  return { jobs, bad, skipped, header };
}

/**
 * The MetaCentrum cluster table: id, name, MHz, RAM KB, CPU type, OS, properties, nodes,
 * CPUs, CPUs per node (comma list), CPU ids. Returns [{name, cpus}] one per physical node.
 */
function parseClusters(text) {
  const nodes = [];
  const bad = [];
  const warnings = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '' || raw.startsWith('#')) return;
    const f = raw.split('\t');
    if (f.length < 10) {
      bad.push({ line: i + 1, message: `expected 11 tab-separated fields, found ${f.length}` });
      return;
    }
    const perNode = f[9].split(',').map(Number);
    if (perNode.some((x) => !(x > 0))) {
      bad.push({ line: i + 1, message: `bad CPUs-per-node list "${f[9]}"` });
      return;
    }
    const declared = Number(f[7]);
    let list = perNode;
    if (declared > 0 && perNode.length !== declared) {
      list = perNode.slice(0, declared);
      warnings.push({
        line: i + 1,
        message: `lists ${perNode.length} per-node CPU counts for ${declared} nodes; using the first ${declared} (${list.reduce((a, b) => a + b, 0)} CPUs; the table says ${f[8]})`,
      });
    }
    list.forEach((cpus, k) => nodes.push({ name: `${f[1].replace(/_/g, '')}n${k}`, cpus }));
  });
  return { nodes, bad, warnings };
}

module.exports = { readText, parseSwf, parseClusters };
