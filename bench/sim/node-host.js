// @ts-check
'use strict';
/**
 * Hosts many real magrathead `Daemon`s in one process for the trace replay (210 daemon processes
 * would need ~15 GB). Each daemon is the real class: its own gRPC server (watched by the
 * filter), its own hook API with per-domain tokens, its own file journal (on tmpfs: the
 * durability cost is measured by the node-daemon benchmark, not here), the simulated driver
 * with no latency. Only host metrics and cron tasks are replaced by inert fakes.
 *
 * Protocol (IPC): parent sends {cmd:'start', nodes:[name], dir}; the host answers
 * {ready:[{name, grpcPort, hookPort, tokens:{batch, prio}}]}; {cmd:'exit'} stops everything.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { createLogger } = require('@magrathea/common');
const { Daemon, compileConfig } = require('@magrathea/node-daemon');
const { FixedHostMetrics, ManualTasks } = require('@magrathea/node-daemon/testing');

/** @type {import('@magrathea/node-daemon').Daemon[]} */
const daemons = [];

/**
 * @param {readonly string[]} nodes
 * @param {string} dir
 * @param {Record<string, number> | null} cpuCounting each node's CPUs in CPU-counting mode (null: exclusive mode)
 */
async function start(nodes, dir, cpuCounting) {
  const logger = createLogger({ service: 'magrathead', level: 'warn' });
  const ready = [];
  for (const name of nodes) {
    const stateDir = path.join(dir, name);
    fs.mkdirSync(stateDir, { recursive: true });
    /** @type {Record<'batch' | 'prio', string>} */
    const tokens = { batch: '', prio: '' };
    for (const dom of /** @type {const} */ (['batch', 'prio'])) {
      tokens[dom] = crypto.randomBytes(18).toString('base64url');
      fs.writeFileSync(path.join(stateDir, `${dom}.token`), `${tokens[dom]}\n`, { mode: 0o600 });
    }
    const config = compileConfig(
      {
        node: { name },
        stateDir,
        listen: { tcp: '127.0.0.1:0', unixSocket: null },
        hookApi: { listen: '127.0.0.1:0' },
        driver: { kind: 'simulated', simulated: { latencyMs: { boot: 0 } } },
        snapshotEvery: 5000,
        ...(cpuCounting ? { cpuCounting: { cpus: cpuCounting[name] } } : {}),
        domains: [
          { name: 'batch', class: 'normal', tokenFile: `${stateDir}/batch.token` },
          { name: 'prio', class: 'priority', tokenFile: `${stateDir}/prio.token` },
        ],
      },
      dir,
      {},
      name,
    );
    const d = new Daemon(config, {
      logger: logger.child({ node: name }),
      hostMetrics: new FixedHostMetrics(),
      tasks: new ManualTasks(),
    });
    const l = await d.start();
    daemons.push(d);
    ready.push({ name, grpcPort: l.tcpPort, hookPort: l.hookPort, tokens });
  }
  return ready;
}

/** Sends to the parent (this process is always forked with an IPC channel). */
const send = (/** @type {object} */ m) => /** @type {NonNullable<typeof process.send>} */ (process.send)(m);

process.on(
  'message',
  (/** @type {{ cmd: string, nodes: string[], dir: string, cpuCounting?: Record<string, number> | null }} */ m) => {
    if (m.cmd === 'start') {
      start(m.nodes, m.dir, m.cpuCounting ?? null).then(
        (ready) => send({ ready }),
        (err) => send({ error: err.stack ?? String(err) }),
      );
    } else if (m.cmd === 'cpu') {
      send({ cpu: process.cpuUsage() });
    } else if (m.cmd === 'exit') {
      void Promise.all(daemons.map((d) => d.stop())).finally(() => process.exit(0));
    }
  },
);
process.on('disconnect', () => process.exit(0));
