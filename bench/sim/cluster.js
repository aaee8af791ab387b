// @ts-check
'use strict';
/**
 * The replay's real system: node hosts (forked processes holding many real magrathead
 * daemons, node-host.js) and the real magrathea-filter, on tmpfs state; their CPU time; and
 * their teardown.
 */
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startSinkFilter } = require('../lib');

/** @typedef {import('node:child_process').ChildProcess} ChildProcess */
/** @typedef {{ name: string, grpcPort: number, hookPort: number, tokens: Record<'batch' | 'prio', string> }} ReadyNode */
/** @typedef {{ child: ChildProcess, ready: ReadyNode[] }} NodeHost */
/** @typedef {{ proc: ChildProcess, grpcPort: number, httpPort: number }} SinkFilter */
/** What has been started so far, so that a failure leaves nothing behind. */
/** @typedef {{ children: Set<ChildProcess>, dir: string | null }} Spawned */

/** V8 profiling of the children when SIM_PROF is set. */
const profArgs = () => (process.env.SIM_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []);

/**
 * Forks `count` node hosts sharing the nodes between them; resolves when every daemon is ready.
 * @param {string[]} nodeNames
 * @param {string} dir
 * @param {number} count
 * @param {Spawned} spawned
 * @param {Record<string, number> | null} cpuCounting CPUs of each node, for daemons in CPU-counting mode (null: exclusive mode)
 * @returns {Promise<NodeHost[]>}
 */
async function startHosts(nodeNames, dir, count, spawned, cpuCounting) {
  const per = Math.ceil(nodeNames.length / count);
  /** @type {Promise<NodeHost>[]} */
  const hosts = [];
  for (let i = 0; i < count; i++) {
    const names = nodeNames.slice(i * per, (i + 1) * per);
    if (names.length === 0) continue;
    const child = fork(path.join(__dirname, 'node-host.js'), [], {
      execArgv: profArgs(),
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    spawned.children.add(child);
    hosts.push(
      new Promise((resolve, reject) => {
        child.once('message', (/** @type {{ error?: string, ready?: ReadyNode[] }} */ m) =>
          m.error ? reject(new Error(m.error)) : resolve({ child, ready: m.ready ?? [] }),
        );
        child.once('exit', (c) => reject(new Error(`node host exited ${c}`)));
        child.send({ cmd: 'start', nodes: names, dir, cpuCounting });
      }),
    );
  }
  return Promise.all(hosts);
}

/**
 * Starts the node hosts and the filter on a fresh tmpfs directory.
 * @param {readonly { name: string, cpus: number }[]} machine
 * @param {number} hosts
 * @param {Spawned} spawned
 * @param {boolean} [cpuCounting] daemons in CPU-counting mode (partial preemption), each with its node's CPUs
 * @returns {Promise<{ dir: string, hostProcs: NodeHost[], ready: ReadyNode[], filter: SinkFilter }>}
 */
async function startCluster(machine, hosts, spawned, cpuCounting = false) {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, 'mg-replay-'));
  spawned.dir = dir;
  const hostProcs = await startHosts(
    machine.map((n) => n.name),
    dir,
    hosts,
    spawned,
    cpuCounting ? Object.fromEntries(machine.map((n) => [n.name, n.cpus])) : null,
  );
  const ready = hostProcs.flatMap((h) => h.ready);
  const filter = await startSinkFilter({
    dir,
    nodes: ready.map((n) => ({ name: n.name, port: n.grpcPort })),
    batchDelayMs: Number(process.env.SIM_BATCH_MS ?? 20),
    graceMs: 600_000,
    nodeArgs: profArgs(),
  });
  spawned.children.add(filter.proc);
  return { dir, hostProcs, ready, filter };
}

/**
 * CPU seconds used so far by the node hosts, the filter and this process.
 * @param {readonly NodeHost[]} hostProcs
 * @param {SinkFilter} filter
 * @returns {Promise<{ hosts: number, filter: number, replay: number }>}
 */
async function cpuOf(hostProcs, filter) {
  const hostCpu = await Promise.all(
    hostProcs.map(
      (h) =>
        /** @type {Promise<NodeJS.CpuUsage>} */ (
          new Promise((resolve) => {
            h.child.once('message', (/** @type {{ cpu: NodeJS.CpuUsage }} */ m) => resolve(m.cpu));
            h.child.send({ cmd: 'cpu' });
          })
        ),
    ),
  );
  const stat = fs.readFileSync(`/proc/${filter.proc.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const tick = 100; // USER_HZ
  const me = process.cpuUsage();
  return {
    hosts: hostCpu.reduce((a, c) => a + (c.user + c.system) / 1e6, 0),
    filter: (Number(f[11]) + Number(f[12])) / tick,
    replay: (me.user + me.system) / 1e6,
  };
}

/**
 * Stops the filter and the node hosts and removes the state directory.
 * @param {{ dir: string, hostProcs: readonly NodeHost[], filter: SinkFilter }} c
 */
async function stopCluster({ dir, hostProcs, filter }) {
  if (process.env.SIM_PROF) {
    // A profiled filter writes its profile only when it exits by itself.
    const exited = new Promise((r) => filter.proc.once('exit', r));
    filter.proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
  }
  filter.proc.kill('SIGKILL');
  await Promise.all(
    hostProcs.map(
      (h) =>
        new Promise((r) => {
          h.child.once('exit', r);
          h.child.send({ cmd: 'exit' });
          setTimeout(() => h.child.kill('SIGKILL'), 5000).unref();
        }),
    ),
  );
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * After a failure: kills whatever was started and removes the state directory.
 * @param {Spawned} spawned
 */
function killSpawned(spawned) {
  for (const c of spawned.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (spawned.dir) fs.rmSync(spawned.dir, { recursive: true, force: true });
}

module.exports = { startCluster, cpuOf, stopCluster, killSpawned };
