// @ts-check
'use strict';
/** What a replay reports: waits, slowdown, utilisation, preemption, throughput, accounting. */

/** @typedef {import('./simulation').Simulation} Simulation */

/**
 * @param {readonly number[]} sorted ascending
 * @param {number} q from 0 to 1
 */
function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return /** @type {number} */ (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]);
}

/**
 * The replay's result; also checks that every started job ended exactly once.
 * @param {object} o
 * @param {Simulation} o.sim the finished simulation
 * @param {readonly { cpus: number }[]} o.machine
 * @param {number} o.activeViews views with an active domain (the exclusivity check saw real states)
 * @param {number} o.wallSeconds
 * @param {number} o.setupSeconds
 * @param {{ daemons: number, filter: number, placement: number }} o.cpuSeconds
 */
function summarize({ sim, machine, activeViews, wallSeconds, setupSeconds, cpuSeconds }) {
  const { violations } = sim;
  const recs = [...sim.state.values()];
  for (const r of recs) if (r.ended !== 1) violations.push(`job ${r.job.id} ended ${r.ended} times`);
  /** @param {'priority' | 'normal'} cls */
  const waits = (cls) =>
    recs
      .filter((r) => r.job.class === cls)
      .map((r) => r.startAt - r.job.submit)
      .sort((a, b) => a - b);
  const slow = recs
    .filter((r) => r.job.class === 'normal')
    .map((r) => (Number(r.finishedAt) - r.job.submit) / Math.max(r.job.run, 10))
    .sort((a, b) => a - b);
  const work = recs.reduce((a, r) => a + r.job.run * r.job.procs, 0);
  const cpus = machine.reduce((a, n) => a + n.cpus, 0);
  const pw = waits('priority');
  const bw = waits('normal');
  return {
    policy: sim.policy,
    placement: sim.placement,
    jobs: sim.jobs.length,
    started: recs.length,
    unplaceable: sim.unplaceable,
    priorityJobs: pw.length,
    /** @type {{ p50: number, p95: number, all?: number[] }} */
    priorityWait: { p50: quantile(pw, 0.5), p95: quantile(pw, 0.95), all: pw },
    /** @type {{ p50: number, p95: number, mean: number, all?: number[] }} */
    batchWait: {
      p50: quantile(bw, 0.5),
      p95: quantile(bw, 0.95),
      mean: bw.reduce((a, b) => a + b, 0) / (bw.length || 1),
      all: bw,
    },
    batchSlowdown: { p50: quantile(slow, 0.5), mean: slow.reduce((a, b) => a + b, 0) / (slow.length || 1) },
    utilisation: work / (cpus * Math.max(1, sim.lastEnd - sim.firstSubmit)),
    preemptions: sim.preemptions,
    preemptedJobHours: sim.preemptedJobSeconds / 3600,
    jobsSuspended: sim.jobsSuspended,
    suspendedCpuHours: sim.suspendedCpuSeconds / 3600,
    staleRefusals: sim.stale,
    starts: sim.starts,
    wallSeconds,
    startsPerSecond: wallSeconds > 0 ? sim.starts / wallSeconds : 0,
    setupSeconds,
    activeViews,
    cpuSeconds,
    violations,
  };
}

module.exports = { summarize, quantile };
