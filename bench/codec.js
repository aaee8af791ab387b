// @ts-check
'use strict';
/**
 * The cost of the gRPC codec on the watch path (issue 15 part 3): decode and encode of the
 * messages a filter and a relay handle most — a NodeEvent change (three domains, their job
 * changes) and a NodeEvent snapshot (a node of three domains and ten jobs) — through the very
 * serializers grpc-js uses (proto-loader, `longs: String`). int64 fields decoded with long.js
 * objects (before) and as numbers (after, packages/common `decodeInt64AsNumbers`), interleaved
 * rounds in one process, median of the rounds.
 */
const { decodeInt64AsNumbers, loadPackageDefinition } = require('@magrathea/common');
const { fmt } = require('./lib');

const ROUNDS = Number(process.env.BENCH_CODEC_ROUNDS ?? 7);
const N = Number(process.env.BENCH_CODEC_N ?? 50_000);

/** @param {number} i */
function domain(i, jobs = 0) {
  const now = 1_764_000_000_000 + i;
  return {
    name: `d${i}`,
    domain_class: i === 2 ? 'priority' : 'normal',
    state: 'running',
    stored_state: 'running',
    generation: String(100_000 + i),
    since_ms: String(now),
    jobs: Array.from({ length: jobs }, (_, j) => ({
      id: `${4_000_000 + j}.pbs-server`,
      preemptible: true,
      cpus: 1,
      started_at_ms: String(now - j * 1000),
    })),
    held_until_ms: '0',
    held_for_ms: '0',
    observed: {
      power: 'running',
      memory_bytes: String(2 ** 33 + i),
      cpu_weight: 100,
      detail: 'qemu pid 4242',
      observed_at_ms: String(now),
    },
  };
}

function messages() {
  const def = /** @type {any} */ (loadPackageDefinition());
  const t = def['magrathea.v1.NodeEvent'];
  const change = {
    generation: '123456',
    change: {
      cause: 'start-job',
      domain: 'd0',
      job_id: '4000001.pbs-server',
      at_ms: '1764000000000',
      domains: [0, 1, 2].map((i) => ({ ...domain(i), jobs: [], jobs_omitted: true, job_count: 4 })),
    },
  };
  const snapshot = {
    generation: '123456',
    snapshot: {
      name: 'node042',
      generation: '123456',
      domains: [domain(0, 4), domain(1, 4), domain(2, 2)],
      driver: 'qemu',
      reported_at_ms: '1764000000000',
      host: {
        memory_total_bytes: String(2 ** 36),
        memory_available_bytes: String(2 ** 35),
        sampled_at_ms: '1764000000000',
      },
    },
  };
  return { t, change: t.serialize(change), snapshot: t.serialize(snapshot) };
}

/**
 * µs per decode + encode of one message.
 * @param {any} t @param {Buffer} msg
 */
function timeOne(t, msg) {
  let check = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const o = t.deserialize(msg);
    check += o.generation.length;
    t.serialize(o);
  }
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / N;
  if (check !== N * 6) throw new Error('decoded generation is not "123456"');
  return us;
}

/** @param {number[]} xs */
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** @returns {Promise<import('./lib').BenchResult>} */
function run() {
  const { t, change, snapshot } = messages();
  /** @type {{ change: { before: number[], after: number[] }, snapshot: { before: number[], after: number[] } }} */
  const us = { change: { before: [], after: [] }, snapshot: { before: [], after: [] } };
  // Warm-up of both paths (the codecs are generated on first use).
  for (const numbers of [false, true]) {
    decodeInt64AsNumbers(numbers);
    timeOne(t, change);
    timeOne(t, snapshot);
  }
  for (let r = 0; r < ROUNDS; r++)
    for (const numbers of r % 2 === 0 ? [false, true] : [true, false]) {
      decodeInt64AsNumbers(numbers);
      const k = numbers ? 'after' : 'before';
      us.change[k].push(timeOne(t, change));
      us.snapshot[k].push(timeOne(t, snapshot));
    }
  decodeInt64AsNumbers(true);
  const rows = [];
  for (const [name, msg] of /** @type {const} */ ([
    ['change (3 domains, jobs omitted)', change],
    ['snapshot (3 domains, 10 jobs)', snapshot],
  ])) {
    const k = name.startsWith('change') ? 'change' : 'snapshot';
    const before = median(us[k].before);
    const after = median(us[k].after);
    rows.push([name, msg.length, fmt(before, 2), fmt(after, 2), `${fmt((1 - after / before) * 100, 0)} %`]);
  }
  return Promise.resolve({
    title: 'gRPC codec on the watch path: int64 as long.js objects (before) and as numbers (after)',
    sections: [
      {
        head: ['NodeEvent', 'bytes', 'µs decode+encode, long.js (before)', 'µs, numbers (after)', 'saved'],
        rows,
      },
    ],
    notes: [
      `The serializers grpc-js uses (proto-loader, longs: String), ${N.toLocaleString('en')} decode+encode per round, ${ROUNDS} interleaved rounds of each, median. The decoded messages are identical either way (the API sees decimal strings); encoding keeps long.js, so a decimal string converts exactly.`,
      'A filter decodes one change per domain state change and a relay decodes and re-encodes it: this is per message on the hot path of both.',
    ],
  });
}

module.exports = { run };
