/** Starts the real binaries (built into dist/) as child processes, and talks to them over gRPC. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NodeEventMessage, NodeMessage, NodeServiceClient } from '@magrathea/common';
import { loadMagratheaApi, waitForLogLine } from '@magrathea/common';

export const ROOT = path.resolve(__dirname, '../..');
export const DAEMON_BIN = path.join(ROOT, 'packages/node-daemon/dist/main.js');
export const CLI_BIN = path.join(ROOT, 'packages/cli/dist/main.js');

function requireBuilt(bin: string): void {
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run "npm run build" (npm test does it) first`);
}

/** Every child started by these helpers; whatever a test file leaves running is killed after it. */
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface DaemonProcess {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly socket: string;
  /** The gRPC TCP address (reads only without TLS). */
  readonly addr: string;
  /** The Unix socket as an address (`unix:PATH`): writes (StartJob, EndJob, DomainAction) go here. */
  readonly admin: string;
  readonly logs: Record<string, unknown>[];
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

export interface SpawnOptions {
  readonly stateDir: string;
  /** YAML config text (written next to the state dir); default: the embedded default. */
  readonly config?: string;
  readonly args?: readonly string[];
  /** gRPC TCP address; default 127.0.0.1:0 (a restart that must keep its address passes the old one). */
  readonly listen?: string;
  /** Unix socket path; default `<stateDir>/d.sock`. */
  readonly socket?: string;
  /** Options for node itself, before the daemon's script (e.g. `--require` of a fixture). */
  readonly nodeArgs?: readonly string[];
  /** Extra environment of the daemon (a fixture's settings). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Starts magrathead and waits for its "magrathead ready" log line. */
export function spawnDaemon(opts: SpawnOptions): Promise<DaemonProcess> {
  requireBuilt(DAEMON_BIN);
  const args = [
    ...(opts.nodeArgs ?? []),
    DAEMON_BIN,
    '--state-dir',
    opts.stateDir,
    '--listen',
    opts.listen ?? '127.0.0.1:0',
  ];
  args.push('--socket', opts.socket ?? path.join(opts.stateDir, 'd.sock'));
  if (opts.config !== undefined) {
    const f = `${opts.stateDir.replace(/\/$/, '')}.yaml`;
    fs.writeFileSync(f, opts.config);
    args.push('--config', f);
  }
  args.push(...(opts.args ?? []));
  return spawnReady(args, 'magrathead ready', { ...opts.env }, (rec) => ({
    port: rec.tcpPort as number,
    socket: rec.unixSocket as string,
  }));
}

export interface FilterProcess extends DaemonProcess {
  readonly grpcPort: number;
  readonly httpPort: number;
}

export const FILTER_BIN = path.join(ROOT, 'packages/scheduler-filter/dist/service/main.js');

/** Starts magrathea-filter with a YAML config file and waits for "magrathea-filter ready". */
export async function spawnFilter(
  configFile: string,
  env: Record<string, string> = {},
  nodeArgs: readonly string[] = [],
): Promise<FilterProcess> {
  requireBuilt(FILTER_BIN);
  const p = await spawnReady(
    [...nodeArgs, FILTER_BIN, '--config', configFile],
    'magrathea-filter ready',
    env,
    (rec) => ({
      port: rec.grpcPort as number,
      socket: '',
    }),
  );
  const ready = p.logs.find((l) => l.msg === 'magrathea-filter ready')!;
  return { ...p, grpcPort: ready.grpcPort as number, httpPort: ready.httpPort as number };
}

export const RELAY_BIN = path.join(ROOT, 'packages/scheduler-filter/dist/relay/main.js');

/** Starts magrathea-relay with a YAML config file and waits for "magrathea-relay ready". */
export function spawnRelay(configFile: string): Promise<DaemonProcess> {
  requireBuilt(RELAY_BIN);
  return spawnReady([RELAY_BIN, '--config', configFile], 'magrathea-relay ready', {}, (rec) => ({
    port: rec.port as number,
    socket: '',
  }));
}

/** Spawns node with `args` and resolves once a JSON log line has msg `readyMsg`. */
async function spawnReady(
  args: string[],
  readyMsg: string,
  env: Record<string, string>,
  addressOf: (rec: Record<string, unknown>) => { port: number; socket: string },
): Promise<DaemonProcess> {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const logs: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  let ready: Record<string, unknown>;
  try {
    ready = await waitForLogLine(proc, readyMsg, { timeoutMs: 15_000, onRecord: (rec) => logs.push(rec) });
  } catch (err) {
    proc.kill('SIGKILL'); // never leak a child that did not come up
    throw err;
  }
  const { port, socket } = addressOf(ready);
  return {
    proc,
    port,
    socket,
    addr: `127.0.0.1:${port}`,
    admin: socket ? `unix:${socket}` : '',
    logs,
    stop: () => {
      proc.kill('SIGTERM');
      return exited;
    },
    kill9: async () => {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the magrathea CLI to completion (`env` is added to the inherited environment). */
export function cli(args: readonly string[], timeoutMs = 15_000, env: Record<string, string> = {}): Promise<CliResult> {
  requireBuilt(CLI_BIN);
  return runToExit([CLI_BIN, ...args], timeoutMs, env);
}

/** Runs node with these arguments to completion (the CLI, or a daemon expected to fail before it is ready). */
export function runToExit(
  args: readonly string[],
  timeoutMs = 15_000,
  env: Record<string, string> = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

export function nodeClient(addr: string): NodeServiceClient {
  const api = loadMagratheaApi();
  return new api.magrathea.v1.NodeService(addr, grpc.credentials.createInsecure());
}

type Cb<Res> = (err: grpc.ServiceError | null, res?: Res) => void;

/** Promisified unary call with a deadline. */
export function unary<Req, Res>(
  client: grpc.Client,
  method: (req: Req, opts: grpc.CallOptions, cb: Cb<Res>) => unknown,
  req: Req,
  timeoutMs = 10_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res?: Res) =>
      err ? reject(err) : resolve(res as Res),
    );
  });
}

export const getNode = (c: NodeServiceClient): Promise<NodeMessage> => unary(c, c.GetNode, {});

/** Collects WatchNode events until cancelled. */
export function collectWatch(
  c: NodeServiceClient,
  since = 0,
): {
  events: NodeEventMessage[];
  stream: grpc.ClientReadableStream<NodeEventMessage>;
  waitFor(pred: (e: NodeEventMessage[]) => boolean, ms?: number): Promise<void>;
} {
  const events: NodeEventMessage[] = [];
  const stream = c.WatchNode({ since_generation: String(since) });
  stream.on('data', (e: NodeEventMessage) => events.push(e));
  stream.on('error', () => undefined);
  return {
    events,
    stream,
    async waitFor(pred, ms = 10_000) {
      const until = Date.now() + ms;
      while (!pred(events)) {
        if (Date.now() > until) throw new Error(`watch condition not met; got ${events.length} events`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

export function statesOf(n: NodeMessage): Record<string, string> {
  return Object.fromEntries(n.domains.map((d) => [d.name, d.state]));
}

/** Polls `pred` every `everyMs` until it holds; fails with `what` after `ms`. */
export async function until(
  pred: () => Promise<boolean> | boolean,
  what: string,
  ms = 10_000,
  everyMs = 100,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out: ${what}`);
}

/**
 * Puts a node back to idle after a test, whatever the test left behind when it failed half-way:
 * a frozen domain is defrosted, then every job is ended (priority domains first, so preempted work
 * resumes). Errors are ignored (the domain may be down); one failure must not cascade into the next.
 */
export async function endAllJobs(c: NodeServiceClient, timeoutMs = 60_000): Promise<void> {
  const n = await getNode(c).catch(() => null);
  if (!n) return;
  for (const d of n.domains)
    if (d.stored_state === 'frozen')
      await unary(c, c.DomainAction, { domain: d.name, action: 'defrost' }, timeoutMs).catch(() => undefined);
  const priorityFirst = [...n.domains].sort(
    (a, b) => Number(b.domain_class === 'priority') - Number(a.domain_class === 'priority'),
  );
  for (const d of priorityFirst)
    for (const j of d.jobs)
      await unary(c, c.EndJob, { domain: d.name, job_id: j.id }, timeoutMs).catch(() => undefined);
}
