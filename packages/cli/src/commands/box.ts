/**
 * `magrathea box`: the whole system on one machine, in one command. Starts a filter and
 * several node daemons (real processes, simulated driver, loopback, temporary state), plays
 * a scripted scenario through the real hook API (as the PBS hooks would), and shows a live
 * table of every node and domain with state changes highlighted.
 *
 * Nothing outlives it: the children run in their own process group (the terminal's signals
 * reach only the box, which stops them in order) and with MAGRATHEA_EXIT_WITH_PARENT=1, so that
 * they stop by themselves when the box is killed outright (SIGKILL) and they are re-parented.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import type { ClusterEventMessage, NodeViewMessage } from '@magrathea/common';
import { loadMagratheaApi } from '@magrathea/common';
import { CliError, EXIT } from '../client';
import type { Io } from '../output';

export interface BoxDeps {
  readonly io: Io;
  /** Resolves on Ctrl-C, SIGTERM, the terminal closing, or the parent going away. */
  readonly interrupted: Promise<void>;
  /** The node binary to run the daemons with. */
  readonly nodePath: string;
  /** True when stdout is a terminal (live redraw). */
  readonly tty: boolean;
  /** How the user runs this CLI (`magrathea`, or `node packages/cli/dist/main.js`), for the hints. */
  readonly self: string;
  /** The environment the children inherit. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly ready: Record<string, unknown>;
}

const DOMAINS = ['meta', 'egee', 'priv'] as const;

/** Default pause between scenario steps, ms: slow enough to read each line as it happens. */
export const DEFAULT_STEP_MS = 3000;

function binOf(pkg: string, bin: string): string {
  const pj = require.resolve(`${pkg}/package.json`);
  const bins = (JSON.parse(fs.readFileSync(pj, 'utf8')) as { bin: Record<string, string> }).bin;
  const rel = bins[bin];
  if (!rel) throw new CliError(`${pkg} has no ${bin} binary`, EXIT.error);
  const p = path.join(path.dirname(pj), rel);
  if (!fs.existsSync(p)) throw new CliError(`${p} is missing: run "npm run build" first`, EXIT.error);
  return p;
}

/**
 * Follows a child's log file until a JSON line with `msg` = `readyMsg` appears; rejects when the
 * child exits first (with the last lines that are not JSON: its error message) or after `timeoutMs`.
 */
function readyLine(
  file: string,
  readyMsg: string,
  proc: ChildProcess,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let offset = 0;
    let rest = '';
    const plain: string[] = [];
    const end = Date.now() + timeoutMs;
    const poll = (): void => {
      // Whether it had exited is read before the file, so its last lines are in what is read.
      const exited = proc.exitCode !== null || proc.signalCode !== null;
      const text = fs.readFileSync(file, 'utf8');
      rest += text.slice(offset);
      offset = text.length;
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        let rec: Record<string, unknown> | null = null;
        try {
          rec = JSON.parse(line) as Record<string, unknown>;
        } catch {
          if (line.trim()) plain.push(line.trim());
        }
        if (rec?.msg === readyMsg) return resolve(rec);
      }
      if (exited)
        return reject(new Error(plain.slice(-3).join('; ') || `exited with ${proc.exitCode ?? proc.signalCode}`));
      if (Date.now() > end) return reject(new Error(`"${readyMsg}" not seen within ${timeoutMs / 1000} s`));
      setTimeout(poll, 50);
    };
    poll();
  });
}

/**
 * Starts a child with its output in `<name>.log` in the box's directory: a file, not a pipe, so a
 * child still logs (and stops cleanly) after the box itself was killed.
 */
async function start(name: string, deps: BoxDeps, logFile: string, args: string[], readyMsg: string): Promise<Child> {
  const fd = fs.openSync(logFile, 'a', 0o600);
  let proc: ChildProcess;
  try {
    proc = spawn(deps.nodePath, args, {
      stdio: ['ignore', fd, fd],
      // Its own process group: Ctrl-C and a closing terminal reach the box, which stops it in order.
      detached: true,
      env: { ...deps.env, MAGRATHEA_EXIT_WITH_PARENT: '1' },
    });
  } finally {
    fs.closeSync(fd);
  }
  try {
    return { name, proc, ready: await readyLine(logFile, readyMsg, proc, 20_000) };
  } catch (err) {
    proc.kill('SIGKILL');
    const why = (err as Error).message.replace(/^(magrathea-filter|magrathead): /, '');
    throw new CliError(`${name} did not start: ${why} (its log: ${logFile})`, EXIT.error);
  }
}

const stop = (c: Child): Promise<void> =>
  new Promise((resolve) => {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
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

/** What the live table's cells mean, printed under it. */
export const BOX_LEGEND = [
  'each cell: the domain state [its jobs] →what the filter publishes to PBS as resources_available.magrathea:',
  '  →normal   takes batch jobs now        →priority  takes interactive (priority) jobs now',
  '  →none     takes no job now (another domain of the node holds it, or it is preempted)',
  'states: free — idle; running-preemptible — batch jobs that may be preempted; occupied — another domain',
  '  holds the node; occupied-would-preempt — a priority job here would preempt the batch domain;',
  '  preempted — batch jobs suspended, domain shrunk; running-priority — interactive work holds the node',
];

export function addBoxCommand(program: Command, deps: BoxDeps): void {
  program
    .command('box')
    .description('run a filter and several node daemons on this machine and play a scripted scenario')
    .option('--nodes <n>', 'physical nodes', (v) => Number(v), 3)
    .option('--step-ms <ms>', 'pause between scenario steps', (v) => Number(v), DEFAULT_STEP_MS)
    .option(
      '--filter-port <port>',
      'gRPC port of the filter (for `magrathea cluster status` from another terminal; 0: any free port)',
      (v) => Number(v),
      5680,
    )
    .option('--headless', 'no live table: plain lines, then a JSON summary; exit when the scenario ends')
    .option('--json', 'like --headless, but print only the JSON summary')
    .action(async (o: { nodes: number; stepMs: number; filterPort: number; headless?: boolean; json?: boolean }) => {
      if (!Number.isInteger(o.nodes) || o.nodes < 2 || o.nodes > 50)
        throw new CliError('--nodes must be from 2 to 50', EXIT.usage);
      if (!Number.isInteger(o.stepMs) || o.stepMs < 0)
        throw new CliError('--step-ms must be a non-negative integer', EXIT.usage);
      if (!Number.isInteger(o.filterPort) || o.filterPort < 0 || o.filterPort > 65535)
        throw new CliError('--filter-port must be a port number (0: any free port)', EXIT.usage);
      const headless = o.headless === true || o.json === true;
      await runBox(
        { nodes: o.nodes, stepMs: o.stepMs, filterPort: o.filterPort },
        { plain: headless || !deps.tty, exitAtEnd: headless, quiet: o.json === true },
        deps,
      );
    });
}

interface BoxNode {
  readonly name: string;
  readonly grpc: string;
  readonly hook: string;
  readonly tokens: Record<string, string>;
}

function daemonConfig(name: string): string {
  return [
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
  ].join('\n');
}

/** The live table: one row per node, one cell per domain, each column as wide as its widest cell. */
export function liveTable(view: Map<string, NodeViewMessage>, changed: ReadonlySet<string>): string[] {
  const nodes = [...view.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const rows = nodes.map((n) =>
    DOMAINS.map((d) => {
      const v = n.vnodes.find((x) => x.domain === d);
      const st = v?.detail?.state ?? '?';
      const jobs = v?.detail?.jobs.map((j) => j.id).join(',') ?? '';
      return {
        text: `${st}${jobs ? ` [${jobs}]` : ''} →${v?.magrathea ?? '?'}`,
        st,
        hl: changed.has(`${n.name}/${d}`),
      };
    }),
  );
  const w0 = Math.max(4, ...nodes.map((n) => n.name.length));
  const w = DOMAINS.map((d, j) => Math.max(d.length, ...rows.map((r) => r[j]!.text.length)));
  const head = ['NODE'.padEnd(w0), ...DOMAINS.map((d, j) => d.toUpperCase().padEnd(w[j]!))].join('  ').trimEnd();
  return [
    head,
    ...nodes.map((n, i) => {
      const cells = rows[i]!.map((c, j) => {
        const text = j === DOMAINS.length - 1 ? c.text : c.text.padEnd(w[j]!);
        return `\x1b[${c.hl ? '7;' : ''}${COLOR[c.st] ?? '0'}m${text}\x1b[0m`;
      });
      return `${n.name.padEnd(w0)}  ${cells.join('  ')}${n.reachable ? '' : '  \x1b[31mUNREACHABLE\x1b[0m'}`;
    }),
  ];
}

async function runBox(
  size: { nodes: number; stepMs: number; filterPort: number },
  mode: { plain: boolean; exitAtEnd: boolean; quiet: boolean },
  deps: BoxDeps,
): Promise<void> {
  const { io } = deps;
  const { nodes: nNodes, stepMs, filterPort } = size;
  const { plain, exitAtEnd, quiet } = mode;
  const out = (s: string): void => {
    if (!quiet) io.out(s);
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'magrathea-box-'));
  const children: Child[] = [];
  let interrupted = false;
  /** Pauses in progress: an interrupt ends them at once. */
  const waiting = new Set<() => void>();
  void deps.interrupted.then(() => {
    interrupted = true;
    for (const wake of [...waiting]) wake();
  });
  const daemonBin = binOf('@magrathea/node-daemon', 'magrathead');
  const filterBin = binOf('@magrathea/scheduler-filter', 'magrathea-filter');
  const nodes: BoxNode[] = [];
  const seen = new Set<string>();
  const narrative: string[] = [];
  let preemptions = 0;
  let refusals = 0;
  try {
    for (let i = 1; i <= nNodes && !interrupted; i++) {
      const name = `node${i}`;
      const nd = path.join(dir, name);
      fs.mkdirSync(nd, { mode: 0o700 });
      const tokens: Record<string, string> = {};
      for (const d of DOMAINS) {
        tokens[d] = `${name}-${d}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
        fs.writeFileSync(path.join(nd, `${d}.token`), tokens[d], { mode: 0o600 });
      }
      fs.writeFileSync(path.join(nd, 'magrathead.yaml'), daemonConfig(name));
      const c = await start(
        `magrathead ${name}`,
        deps,
        path.join(nd, 'magrathead.log'),
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
    if (interrupted) return;
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
    let filter: Child;
    try {
      filter = await start(
        'magrathea-filter',
        deps,
        path.join(dir, 'filter.log'),
        [filterBin, '--config', filterCfg, '--log-level', 'info'],
        'magrathea-filter ready',
      );
    } catch (err) {
      const e = err as CliError;
      throw /in use/.test(e.message)
        ? new CliError(e.message, e.exitCode, '', `is another box running? --filter-port 0 picks a free port`)
        : e;
    }
    children.push(filter);
    const filterAddr = `127.0.0.1:${String(filter.ready.grpcPort)}`;
    out(`cluster in a box: ${nNodes} nodes × (meta, egee, priv); filter at ${filterAddr}; state in ${dir}`);
    out(`  try from another terminal: ${deps.self} cluster status --filter ${filterAddr}`);

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
        ...liveTable(view, changed),
        '',
        ...BOX_LEGEND,
        '',
        ...narrative.slice(-8),
      ];
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
            if (plain && before) out(`  ${n.name}/${v.domain}: ${old ?? '?'} → ${st} (PBS: magrathea=${v.magrathea})`);
          }
        }
        view.set(n.name, n);
      }
      render();
    });
    stream.on('error', () => undefined);

    const say = (s: string): void => {
      narrative.push(`${new Date().toISOString().slice(11, 19)}  ${s}`);
      if (plain) out(`» ${s}`);
      render();
    };
    /** Waits `ms`, or less when interrupted. */
    const pause = (ms = stepMs): Promise<void> =>
      interrupted
        ? Promise.resolve()
        : new Promise((r) => {
            const wake = (): void => {
              clearTimeout(t);
              waiting.delete(wake);
              r();
            };
            const t = setTimeout(wake, ms);
            waiting.add(wake);
          });
    const until = async (pred: () => boolean, ms = 15_000): Promise<void> => {
      const end = Date.now() + ms;
      while (!pred() && !interrupted) {
        if (Date.now() > end) throw new CliError('the box did not reach the expected state in time', EXIT.error);
        await pause(50);
      }
    };
    const hook = async (
      n: BoxNode,
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
    const list = (v: unknown): string => (Array.isArray(v) && v.length > 0 ? v.map(String).join(', ') : 'nothing');

    await until(
      () =>
        view.size === nNodes &&
        [...view.values()].every((n) => n.vnodes.length === 3 && n.vnodes.every((v) => v.detail?.state === 'free')),
    );
    say('all domains booted and free: every domain takes batch or interactive jobs (→normal/priority)');
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
        `interactive job 200.pbs (qsub -I) starts in ${first.name}/priv and preempts ${list(p.preempted)}: its batch jobs are suspended, the domain shrunk`,
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
      if (!interrupted) say('every domain is free again');
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
    if (plain) io.out(JSON.stringify({ summary }));
    else
      io.out(
        `\nsummary: ${preemptions} preemption(s), ${refusals} refused stale start(s); states seen: ${summary.states_seen.join(', ')}`,
      );
    if (!exitAtEnd && !interrupted) {
      out(`still running; ${deps.self} cluster status --filter ${filterAddr}  — Ctrl-C to stop`);
      await deps.interrupted;
    }
    stream.cancel();
    client.close();
  } finally {
    // The filter first (it would only log the daemons going away), then the daemons.
    const filterChild = children.find((c) => c.name === 'magrathea-filter');
    if (filterChild) await stop(filterChild);
    await Promise.all(children.filter((c) => c !== filterChild).map(stop));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
