// @ts-check
'use strict';
/**
 * Per-job lifecycles, GridWay's table reproduced (Rubio-Montero et al.: a 148 s task in a
 * persistent VM +20 %, with save/restore between jobs +77 %, stop/start per job about 2x).
 * One run, side by side, through a real magrathead each: a bare job in a cgroup (no VM, the
 * baseline), and a 256 MiB QEMU/TCG guest on a qcow2 overlay under lifecycle persistent,
 * revert and reboot, and woken on demand (domains[].wakeOnDemand: the domain is down until a job
 * asks for it; the boot the filter asks for, as its wake-up does, is on the job's path).
 *
 * A job's overhead is what the node adds around the job itself: StartJob, EndJob, and the wait
 * until the domain takes the next job (the reset, for revert and reboot). The job's own work is
 * the same everywhere and is left out. MAGRATHEA_BENCH_LIFECYCLE_JOBS sets the jobs per row
 * (default 10; reboot takes at most 5).
 */
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { loadMagratheaApi } = require('@magrathea/common');
const { fmt, percentile, spawnDaemon, tmpDir, unary } = require('./lib');

const MiB = 1024 * 1024;
const GUEST = path.resolve(__dirname, '../.cache/guest');
const JOB_S = 148;
const IDLE = '["/bin/sh", "-c", "exec sleep 100000"]';

/** @param {Buffer} data */
async function serve(data) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-length': data.length });
    res.end(data);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(null)));
  const addr = /** @type {import('node:net').AddressInfo} */ (server.address());
  return { url: `http://127.0.0.1:${addr.port}/img.raw`, close: () => server.close() };
}

/**
 * @param {import('@magrathea/common').NodeServiceClient} c
 * @param {string} dom
 * @returns {Promise<import('@magrathea/common').DomainMessage>}
 */
async function waitFree(c, dom) {
  const until = Date.now() + 600_000;
  for (;;) {
    /** @type {import('@magrathea/common').NodeMessage} */
    const n = await unary(c, 'GetNode', {});
    const d = n.domains.find((x) => x.name === dom);
    if (d?.state === 'free') return d;
    if (d?.stored_state.startsWith('down') && d.down_reason && !d.down_reason.startsWith('not booted'))
      throw new Error(`${dom} is down: ${d.down_reason}`);
    if (Date.now() > until) throw new Error(`${dom} not free within 600 s (${d?.state})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function cgroupsWritable() {
  return ['freezer', 'cpu', 'cpuacct', 'memory'].every((ctl) => {
    try {
      fs.accessSync(`/sys/fs/cgroup/${ctl}`, fs.constants.W_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Runs `jobs` jobs in one domain; per job: overhead (ms) and the reset's steps.
 * @param {'cgroup' | 'persistent' | 'revert' | 'reboot' | 'wake'} kind
 * @param {number} jobs
 */
async function measure(kind, jobs) {
  const dir = tmpDir('mg-bench-lc-');
  const root = `magrathea-bench-lc-${process.pid}`;
  const base = Buffer.alloc(64 * MiB);
  base.write('MARKER bench\n');
  const srv = await serve(base);
  const sha256 = createHash('sha256').update(base).digest('hex');
  const vm = `vm: { kernel: ${GUEST}/vmlinux, initrd: ${GUEST}/initrd.cpio.gz, memoryMiB: 256, readyLine: MAGRATHEA-GUEST-READY }`;
  const config =
    kind === 'cgroup'
      ? `driver: { kind: cgroup, cgroup: { root: ${root}, stopTimeoutMs: 1000 } }\ndomains:\n  - { name: job, command: ${IDLE}, preemption: pause }\n`
      : `driver: { kind: qemu, qemu: { accel: tcg, runDir: ${dir}/run, cgroup: false, powerdownTimeoutMs: 1000, bootTimeoutMs: 300000 } }
images: [{ name: img, url: '${srv.url}', sha256: '${sha256}', format: raw }]
domains:
  - { name: job, image: img, preemption: pause, ${vm}, ${
    kind === 'wake' ? 'lifecycle: persistent, wakeOnDemand: true, autostart: false' : `lifecycle: ${kind}`
  } }
`;
  const t00 = process.hrtime.bigint();
  const d = await spawnDaemon({ stateDir: path.join(dir, 'state'), config });
  const api = loadMagratheaApi();
  const c = new api.magrathea.v1.NodeService(`unix:${d.socket}`, grpc.credentials.createInsecure());
  /** @type {number[]} */
  const overhead = [];
  /** @type {Map<string, number[]>} */
  const steps = new Map();
  let goldenBytes = 0;
  let firstMs = 0;
  try {
    // A wake-on-demand domain stays down until the first job asks for it.
    if (kind !== 'wake') await waitFree(c, 'job');
    // Paid once: the daemon's start and the first boot (for revert, with its golden state).
    firstMs = Number(process.hrtime.bigint() - t00) / 1e6;
    for (let i = 0; i < jobs; i++) {
      const t0 = process.hrtime.bigint();
      // Wake on demand: the boot the filter asks for when the job is queued, until the domain is up.
      if (kind === 'wake') {
        await unary(c, 'DomainAction', { domain: 'job', action: 'boot', reason: `wake on demand: job j${i}` });
        const up = await waitFree(c, 'job');
        for (const s of up.last_boot?.steps ?? []) steps.set(s.name, [...(steps.get(s.name) ?? []), s.millis]);
      }
      await unary(c, 'StartJob', { domain: 'job', job_id: `j${i}`, preemptible: true, cpus: 1 });
      const started = Number(process.hrtime.bigint() - t0) / 1e6;
      // (the job's own work would run here: the same in every row, so not measured)
      const t1 = process.hrtime.bigint();
      await unary(c, 'EndJob', { domain: 'job', job_id: `j${i}`, exit_status: 0, has_exit_status: true });
      const st = await waitFree(c, 'job');
      overhead.push(started + Number(process.hrtime.bigint() - t1) / 1e6);
      // Idle shutdown (idleShutdownMs) comes after the idle time, off any job's path: not counted.
      if (kind === 'wake') await unary(c, 'DomainAction', { domain: 'job', action: 'down', reason: 'idle' });
      if (kind === 'revert' || kind === 'reboot') {
        const r = st.last_reset;
        if (!r || r.after_job !== `j${i}`) throw new Error(`no reset recorded after j${i}`);
        for (const s of r.steps) steps.set(s.name, [...(steps.get(s.name) ?? []), s.millis]);
      }
    }
    try {
      goldenBytes = fs.statSync(path.join(dir, 'run', 'job.golden')).size;
    } catch {
      goldenBytes = 0;
    }
    await unary(c, 'DomainAction', { domain: 'job', action: 'down', reason: 'bench' }).catch(() => undefined);
  } finally {
    c.close();
    await d.stop();
    srv.close();
    if (kind === 'cgroup')
      for (const ctl of ['freezer', 'cpu', 'cpuacct', 'memory'])
        for (const p of ['job', ''].map((x) => path.join('/sys/fs/cgroup', ctl, root, x)))
          try {
            fs.rmdirSync(p);
          } catch {
            // gone
          }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { overhead, steps, goldenBytes, firstMs };
}

/** @param {readonly number[]} xs @param {number} p */
const pct = (xs, p) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    p,
  );

async function run() {
  const jobs = Math.max(2, Number(process.env.MAGRATHEA_BENCH_LIFECYCLE_JOBS ?? 10));
  const qemu = fs.existsSync(path.join(GUEST, 'vmlinux'));
  /** @type {[string, 'cgroup' | 'persistent' | 'revert' | 'reboot' | 'wake', number, string, string][]} */
  const plan = [
    ['bare job in a cgroup (no VM; baseline)', 'cgroup', jobs, '—', ''],
    ['persistent VM', 'persistent', jobs, '+20 %', '≤ 5 %'],
    ['revert (clean overlay + golden state restored)', 'revert', jobs, '+77 % (save/restore)', 'p95 ≤ 1.5 s, ≤ 5 %'],
    ['reboot (clean overlay + cold boot)', 'reboot', Math.min(jobs, 5), '≈ +100 % (stop/start)', '≤ 5 %'],
    ['wake on demand (down domain booted for the job)', 'wake', Math.min(jobs, 5), '≈ +100 % (start per job)', '≤ 5 %'],
  ];
  /** @type {unknown[][]} */
  const rows = [];
  /** @type {unknown[][]} */
  const stepRows = [];
  const notes = [];
  for (const [label, kind, n, gridway, goal] of plan) {
    if (kind === 'cgroup' && !cgroupsWritable()) {
      rows.push([label, 0, '—', '—', '—', '—', '—', gridway, goal, 'not run: v1 cgroups not writable (needs root)']);
      continue;
    }
    if (kind !== 'cgroup' && !qemu) {
      rows.push([label, 0, '—', '—', '—', '—', '—', gridway, goal, 'not run: no test guest (sh test/setup.sh)']);
      continue;
    }
    process.stdout.write(`lifecycle: ${label}, ${n} jobs\n`);
    const r = await measure(kind, n);
    const mean = r.overhead.reduce((a, b) => a + b, 0) / r.overhead.length;
    const p95 = pct(r.overhead, 95);
    const share = mean / 1000 / JOB_S;
    let verdict = '';
    if (kind === 'revert') verdict = p95 <= 1500 && share <= 0.05 ? 'MET' : 'MISSED';
    else if (kind !== 'cgroup') verdict = share <= 0.05 ? 'MET' : 'MISSED';
    rows.push([
      label,
      r.overhead.length,
      fmt(pct(r.overhead, 50) / 1000),
      fmt(p95 / 1000),
      fmt(mean / 1000),
      `${(share * 100).toFixed(2)} %`,
      fmt(r.firstMs / 1000, 1),
      gridway,
      goal,
      verdict,
    ]);
    for (const [name, xs] of r.steps)
      stepRows.push([kind, name, xs.length, fmt(pct(xs, 50) / 1000), fmt(pct(xs, 95) / 1000)]);
    if (kind === 'revert' && r.goldenBytes > 0)
      notes.push(
        `revert: the golden saved state of the 256 MiB guest is ${(r.goldenBytes / MiB).toFixed(1)} MiB (QEMU writes only the pages the guest touched; a full OS image touches more, and the restore grows with it).`,
      );
  }
  notes.push(
    'once = from starting the daemon until the domain first takes a job (the cold boot; for revert also taking the golden state): paid once per domain, not per job.',
    `Overhead per job = StartJob + EndJob + waiting until the domain takes the next job (the reset), measured from the client through a real magrathead; the job's own work is the same in every row and left out. Share = mean overhead / ${JOB_S} s (GridWay's task).`,
    'QEMU rows run under TCG (no KVM here) on a shared, loaded 2-core machine: boots are several times slower than under KVM, which weighs on reboot most. revert restores the golden state with QEMU -incoming from a file (page cache warm after the first reset).',
    'wake on demand = the domain is down when the job comes: the boot (DomainAction boot, as the filter asks for it) until the domain is free, StartJob and EndJob; the idle shutdown afterwards is off the job path. On a PBS site the filter adds up to pbs.wakeIntervalMs before the boot and the scheduler its cycle after it (the real-OpenPBS test measures qsub → running).',
    'GridWay figures as issue 19 quotes them (a 148 s task: persistent VM +20 %, save/restore between jobs +77 %, stop/start per job about 2x).',
  );
  return {
    title: 'Per-job lifecycles: overhead per job (GridWay table)',
    sections: [
      {
        head: [
          'policy',
          'jobs',
          'p50 s',
          'p95 s',
          'mean s',
          `share of a ${JOB_S} s job`,
          'once s',
          'GridWay',
          'goal',
          'verdict',
        ],
        rows,
      },
      { head: ['policy', 'reset step', 'n', 'p50 s', 'p95 s'], rows: stepRows },
    ],
    notes,
  };
}

module.exports = { run };
