/**
 * `magrathea box`: the whole system on one machine, in one command. Starts a filter and
 * several node daemons (real processes, simulated driver, loopback, temporary state), plays
 * a scripted scenario through the real hook API (as the PBS hooks would), and shows a live
 * table of every node and domain with state changes highlighted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import type { ClusterEventMessage, NodeViewMessage } from '@magrathea/common';
import { loadMagratheaApi, waitForLogLine } from '@magrathea/common';
import { CliError, EXIT } from '../client';
import type { Io } from '../output';

export interface BoxDeps {
  readonly io: Io;
  readonly interrupted: Promise<void>;
  /** The node binary to run the daemons with. */
  readonly nodePath: string;
  /** True when stdout is a terminal (live redraw). */
  readonly tty: boolean;
}

interface Child {
  readonly proc: ChildProcess;
  readonly ready: Record<string, unknown>;
}

const DOMAINS = ['meta', 'egee', 'priv'] as const;

function binOf(pkg: string, bin: string): string {
  const pj = require.resolve(`${pkg}/package.json`);
  const bins = (JSON.parse(fs.readFileSync(pj, 'utf8')) as { bin: Record<string, string> }).bin;
  const rel = bins[bin];
  if (!rel) throw new CliError(`${pkg} has no ${bin} binary`, EXIT.error);
  const p = path.join(path.dirname(pj), rel);
  if (!fs.existsSync(p)) throw new CliError(`${p} is missing: run "npm run build" first`, EXIT.error);
  return p;
}

async function start(nodePath: string, args: string[], readyMsg: string): Promise<Child> {
  const proc = spawn(nodePath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    return { proc, ready: await waitForLogLine(proc, readyMsg, { timeoutMs: 20_000 }) };
  } catch (err) {
    proc.kill('SIGKILL');
    throw new CliError((err as Error).message, EXIT.error);
  }
}

const stop = (c: Child): Promise<void> =>
  new Promise((resolve) => {
    if (c.proc.exitCode !== null) return resolve();
    c.proc.once('exit', () => resolve());
    c.proc.kill('SIGTERM');
    setTimeout(() => c.proc.kill('SIGKILL'), 5000).unref();
  });

const COLOR: Record<string, string> = {
  free: '32',
  'running-preemptible': '36',
  running: '36',
  'running-priority': '35',
  preempted: '33',
  occupied: '90',
  'occupied-would-preempt': '34',
};

export function addBoxCommand(program: Command, deps: BoxDeps): void {
  program
    .command('box')
    .description('run a filter and several node daemons on this machine and play a scripted scenario')
    .option('--nodes <n>', 'physical nodes', (v) => Number(v), 3)
    .option('--step-ms <ms>', 'pause between scenario steps', (v) => Number(v), 1500)
    .option(
      '--filter-port <port>',
      'gRPC port of the filter (for `magrathea cluster status` from another terminal)',
      (v) => Number(v),
      5680,
    )
    .option('--headless', 'no live table: plain lines, then a JSON summary; exit when the scenario ends')
    .action(async (o: { nodes: number; stepMs: number; filterPort: number; headless?: boolean }) => {
      if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > 50)
        throw new CliError('--nodes must be from 2 to 50', EXIT.usage);
      if (!Number.isInteger(o.stepMs) || o.stepMs < 0)
        throw new CliError('--step-ms must be a non-negative integer', EXIT.usage);
      await runBox(o.nodes, o.stepMs, o.filterPort, o.headless === true || !deps.tty, o.headless === true, deps);
    });
}

async function runBox(
  nNodes: number,
  stepMs: number,
  filterPort: number,
  plain: boolean,
  exitAtEnd: boolean,
  deps: BoxDeps,
): Promise<void> {
  const { io } = deps;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'magrathea-box-'));
  const children: Child[] = [];
  let interrupted = false;
  void deps.interrupted.then(() => (interrupted = true));
  const daemonBin = binOf('@magrathea/node-daemon', 'magrathead');
  const filterBin = binOf('@magrathea/scheduler-filter', 'magrathea-filter');
  const nodes: { name: string; grpc: string; hook: string; tokens: Record<string, string> }[] = [];
  const seen = new Set<string>();
  const narrative: string[] = [];
  let preemptions = 0;
  let refusals = 0;
  try {
    for (let i = 1; i <= nNodes; i++) {
      const name = `node${i}`;
      const nd = path.join(dir, name);
      fs.mkdirSync(nd, { mode: 0o700 });
      const tokens: Record<string, string> = {};
      for (const d of DOMAINS) {
        tokens[d] = `${name}-${d}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
        fs.writeFileSync(path.join(nd, `${d}.token`), tokens[d], { mode: 0o600 });
      }
      fs.writeFileSync(
        path.join(nd, 'magrathead.yaml'),
        [
          `node: { name: ${name} }`,
          'stateDir: state',
          'listen: { tcp: "127.0.0.1:0", unixSocket: null }',
          'hookApi: { listen: "127.0.0.1:0" }',
          'driver: { kind: simulated, simulated: { latencyMs: { boot: 300, preempt: 40, resume: 20 } } }',
          'domains:',
          '  - { name: meta, class: normal, tokenFile: meta.token }',
          '  - { name: egee, class: normal, tokenFile: egee.token }',
          '  - { name: priv, class: priority, tokenFile: priv.token }',
          'log: { level: warn }',
          '',
        ].join('\n'),
      );
      const c = await start(
        deps.nodePath,
        [daemonBin, '--config', path.join(nd, 'magrathead.yaml'), '--log-level', 'info'],
        'magrathead ready',
      );
      children.push(c);
      nodes.push({
        name,
        grpc: `127.0.0.1:${String(c.ready.tcpPort)}`,
        hook: `http://127.0.0.1:${String(c.ready.hookPort)}`,
        tokens,
      });
    }
    const filterCfg = path.join(dir, 'filter.yaml');
    fs.writeFileSync(
      filterCfg,
      [
        `listen: { grpc: "127.0.0.1:${filterPort}", http: "127.0.0.1:0" }`,
        'graceMs: 3000',
        'log: { level: warn }',
        'nodes:',
        ...nodes.map((n) => `  - { name: ${n.name}, address: "${n.grpc}" }`),
        '',
      ].join('\n'),
    );
    const filter = await start(
      deps.nodePath,
      [filterBin, '--config', filterCfg, '--log-level', 'info'],
      'magrathea-filter ready',
    );
    children.push(filter);
    const filterAddr = `127.0.0.1:${String(filter.ready.grpcPort)}`;
    io.out(`cluster in a box: ${nNodes} nodes × (meta, egee, priv); filter at ${filterAddr}; state in ${dir}`);
    io.out(`  try from another terminal: magrathea cluster status --filter ${filterAddr}`);

    // Live view from the filter.
    const view = new Map<string, NodeViewMessage>();
    const changed = new Set<string>();
    const api = loadMagratheaApi();
    const client = new api.magrathea.v1.ClusterService(filterAddr, grpc.credentials.createInsecure());
    const stream = client.WatchCluster({});
    const render = (): void => {
      if (plain) return;
      const lines = [
        '\x1b[H\x1b[2J',
        `Magrathea — cluster in a box (filter ${filterAddr}); Ctrl-C stops everything`,
        '',
      ];
      lines.push(`${'NODE'.padEnd(8)} ${DOMAINS.map((d) => d.toUpperCase().padEnd(32)).join(' ')}`);
      for (const n of [...view.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const cells = DOMAINS.map((d) => {
          const v = n.vnodes.find((x) => x.domain === d);
          const st = v?.detail?.state ?? '?';
          const jobs = v?.detail?.jobs.map((j) => j.id).join(',') ?? '';
          const text = `${st}${jobs ? ` [${jobs}]` : ''} →${v?.magrathea ?? '?'}`.padEnd(32);
          const hl = changed.has(`${n.name}/${d}`) ? '7;' : '';
          return `\x1b[${hl}${COLOR[st] ?? '0'}m${text}\x1b[0m`;
        });
        lines.push(`${n.name.padEnd(8)} ${cells.join(' ')}${n.reachable ? '' : '  \x1b[31mUNREACHABLE\x1b[0m'}`);
      }
      lines.push('', ...narrative.slice(-8));
      io.out(lines.join('\n'));
      changed.clear();
    };
    stream.on('data', (e: ClusterEventMessage) => {
      const list = e.snapshot ? e.snapshot.nodes : e.node ? [e.node] : [];
      for (const n of list) {
        const before = view.get(n.name);
        for (const v of n.vnodes) {
          const st = v.detail?.state ?? '?';
          seen.add(st);
          const old = before?.vnodes.find((x) => x.domain === v.domain)?.detail?.state;
          if (old !== st) {
            changed.add(`${n.name}/${v.domain}`);
            if (plain && before)
              io.out(`  ${n.name}/${v.domain}: ${old ?? '?'} → ${st} (PBS: magrathea=${v.magrathea})`);
          }
        }
        view.set(n.name, n);
      }
      render();
    });
    stream.on('error', () => undefined);

    const say = (s: string): void => {
      narrative.push(`${new Date().toISOString().slice(11, 19)}  ${s}`);
      if (plain) io.out(`» ${s}`);
      render();
    };
    const pause = (ms = stepMs): Promise<void> => new Promise((r) => setTimeout(r, ms));
    const until = async (pred: () => boolean, ms = 15_000): Promise<void> => {
      const end = Date.now() + ms;
      while (!pred() && !interrupted) {
        if (Date.now() > end) throw new CliError('the box did not reach the expected state in time', EXIT.error);
        await pause(50);
      }
    };
    const hook = async (
      n: (typeof nodes)[number],
      d: (typeof DOMAINS)[number],
      what: 'start' | 'end',
      job: string,
      preemptible = true,
    ): Promise<Record<string, unknown>> => {
      const r = await fetch(`${n.hook}/v1/jobs/${what}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${n.tokens[d] ?? ''}`, 'content-type': 'application/json' },
        body: JSON.stringify(what === 'start' ? { job_id: job, preemptible, cpus: 1 } : { job_id: job }),
      });
      return (await r.json()) as Record<string, unknown>;
    };
    const stateOf = (node: string, d: string): string =>
      view.get(node)?.vnodes.find((x) => x.domain === d)?.detail?.state ?? '?';

    await until(
      () =>
        view.size === nNodes &&
        [...view.values()].every((n) => n.vnodes.length === 3 && n.vnodes.every((v) => v.detail?.state === 'free')),
    );
    say('all domains booted and free');
    await pause();
    const batch: [number, 'meta' | 'egee', string][] = [];
    for (const [i, n] of nodes.entries()) {
      if (interrupted) break;
      const d = i % 2 === 0 ? 'meta' : 'egee';
      const job = `${100 + i}.pbs`;
      await hook(n, d, 'start', job);
      batch.push([i, d, job]);
      say(
        `batch job ${job} starts in ${n.name}/${d} (${d === 'meta' ? 'MetaCenter' : 'EGEE'} image); the other domains of ${n.name} become occupied`,
      );
      await pause(stepMs / 2);
    }
    const first = nodes[0]!;
    if (!interrupted) {
      const r = await hook(first, 'egee', 'start', '150.pbs');
      if (r.ok === false) refusals++;
      say(
        `a stale placement: job 150.pbs sent to ${first.name}/egee is refused by the daemon (${String(r.reason)}); PBS would requeue it`,
      );
      await pause();
      const p = await hook(first, 'priv', 'start', '200.pbs', false);
      if (Array.isArray(p.preempted) && p.preempted.length > 0) preemptions += p.preempted.length;
      say(
        `interactive job 200.pbs (qsub -I) starts in ${first.name}/priv and preempts ${JSON.stringify(p.preempted)}: batch jobs suspended, domain shrunk`,
      );
      await until(
        () => stateOf(first.name, 'meta') === 'preempted' && stateOf(first.name, 'priv') === 'running-priority',
      );
      await pause(stepMs * 2);
      await hook(first, 'priv', 'end', '200.pbs');
      say(`interactive job 200.pbs ends: ${first.name}/meta resumes where it stopped`);
      await until(() => stateOf(first.name, 'meta') === 'running-preemptible');
      await pause();
      for (const [i, d, job] of batch) {
        if (interrupted) break;
        await hook(nodes[i]!, d, 'end', job);
        say(`batch job ${job} ends in ${nodes[i]!.name}/${d}`);
        await pause(stepMs / 2);
      }
      await until(() => [...view.values()].every((n) => n.vnodes.every((v) => v.detail?.state === 'free')));
      say('every domain is free again');
    }
    const wanted = [
      'free',
      'running-preemptible',
      'occupied',
      'occupied-would-preempt',
      'preempted',
      'running-priority',
    ];
    const summary = {
      nodes: nNodes,
      states_seen: [...seen].sort(),
      all_scenario_states_reached: wanted.every((s) => seen.has(s)),
      preemptions,
      refusals,
      interrupted,
    };
    io.out(
      plain
        ? JSON.stringify({ summary })
        : `\nsummary: ${preemptions} preemption(s), ${refusals} refused stale start(s); states seen: ${summary.states_seen.join(', ')}`,
    );
    if (!exitAtEnd && !interrupted) {
      io.out(`still running; magrathea cluster status --filter ${filterAddr}  — Ctrl-C to stop`);
      await deps.interrupted;
    }
    stream.cancel();
    client.close();
  } finally {
    await Promise.all(children.map(stop));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
