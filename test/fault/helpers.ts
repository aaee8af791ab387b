/**
 * Helpers of the fault-and-abuse suite: a hostile node daemon (a real gRPC server on 127.0.0.1:0
 * whose WatchNode says what a test scripts), the real filter publishing through the recording PBS
 * stand-ins, a small tmpfs to fill, a process's resident memory, and the suite's figures.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { NodeEventInput } from '@magrathea/common';
import { loadMagratheaApi } from '@magrathea/common';
import { ROOT, spawnFilter } from '../helpers/processes';
import type { FilterProcess } from '../helpers/processes';

/** One WatchNode call of a hostile daemon: write what you like, end when you like. */
export type WatchScript = (call: grpc.ServerWritableStream<unknown, NodeEventInput>, callNo: number) => void;

export interface FakeDaemon {
  readonly addr: string;
  /** WatchNode calls received so far. */
  readonly calls: number;
  close(): Promise<void>;
}

/** A node daemon that answers WatchNode with `script` (GetNode etc. are UNIMPLEMENTED). */
export async function fakeDaemon(script: WatchScript): Promise<FakeDaemon> {
  const api = loadMagratheaApi();
  const server = new grpc.Server();
  let calls = 0;
  server.addService(api.magrathea.v1.NodeService.service, {
    WatchNode: (call: grpc.ServerWritableStream<unknown, NodeEventInput>) => {
      calls++;
      call.sendMetadata(new grpc.Metadata());
      script(call, calls);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    addr: `127.0.0.1:${port}`,
    get calls() {
      return calls;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

export { domainMsg, jobMsg, snapshotOf } from '../helpers/messages';

export const QMGR = path.join(ROOT, 'test/fixtures/fake-qmgr.js');
export const QSIG = path.join(ROOT, 'test/fixtures/fake-qsig.js');
export const QSTAT = path.join(ROOT, 'test/fixtures/fake-qstat.js');
export const PBSNODES = path.join(ROOT, 'test/fixtures/fake-pbsnodes.js');

export interface PbsFilter {
  readonly filter: FilterProcess;
  /** Every line handed to qmgr, in order. */
  qmgrLines(): string[];
  /** Every job id handed to qsig. */
  qsigJobs(): string[];
}

/** The real filter with the recording PBS stand-ins; `nodes` and `extra` are YAML lines. */
export async function pbsFilter(
  dir: string,
  nodes: readonly string[],
  extra: readonly string[] = [],
  nodeArgs: readonly string[] = [],
): Promise<PbsFilter> {
  const qlog = path.join(dir, 'qmgr.log');
  const slog = path.join(dir, 'qsig.log');
  const cfg = path.join(dir, 'filter.yaml');
  fs.writeFileSync(
    cfg,
    [
      'listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }',
      'reconnect: { initialMs: 100, maxMs: 2000 }',
      `pbs: { qmgr: ${QMGR}, qsig: ${QSIG}, qstat: ${QSTAT}, pbsnodes: ${PBSNODES}, reassertIntervalMs: 0, accountingRecheckMs: 500, batchDelayMs: 10, retry: { initialMs: 100, maxMs: 300 } }`,
      ...extra,
      'nodes:',
      ...nodes,
      '',
    ].join('\n'),
  );
  const filter = await spawnFilter(cfg, { FAKE_QMGR_LOG: qlog, FAKE_QSIG_LOG: slog }, nodeArgs);
  const lines = (f: string) =>
    fs.existsSync(f)
      ? fs
          .readFileSync(f, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];
  return {
    filter,
    qmgrLines: () => lines(qlog).flatMap((b) => b.lines as string[]),
    qsigJobs: () => lines(slog).flatMap((b) => b.jobs as string[]),
  };
}

/** Mounts a tmpfs of `size` (e.g. "1m") on a fresh directory; `unmount` in a finally. */
export function tmpfs(size: string): { dir: string; unmount(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  return {
    dir,
    unmount: () => {
      execFileSync('umount', ['-l', dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resident memory of a process, bytes (from /proc). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** What one test of the suite did, for docs/reliability.md. */
export interface Figures {
  /** Hostile or faulty inputs tried (requests, messages, files). */
  readonly inputs: number;
  /** Faults injected (full-disk refusals, kills, replaced directories, …). */
  readonly faults: number;
  /** Acknowledged jobs, and of those the ones lost. */
  readonly acked: number;
  readonly lost: number;
  /** Daemon or filter processes that died unasked. */
  readonly crashes: number;
}

/**
 * Records a test's figures: one line on stdout, and one JSON line in
 * `$MAGRATHEA_FAULT_FIGURES` (default `<tmp>/magrathea-fault-figures.jsonl`).
 */
export function record(cls: string, f: Figures): void {
  const file = process.env.MAGRATHEA_FAULT_FIGURES ?? path.join(os.tmpdir(), 'magrathea-fault-figures.jsonl');
  fs.appendFileSync(file, `${JSON.stringify({ class: cls, ...f })}\n`);
  process.stdout.write(
    `fault suite ${cls}: ${f.inputs} inputs, ${f.faults} faults, ${f.acked} acknowledged, ${f.lost} lost, ${f.crashes} crashes\n`,
  );
}

/** Polls `pred` every 20 ms until it holds; fails with `what` after `ms`. */
export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await pred())) {
    if (performance.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The standard health status of a gRPC server ('SERVING', 'NOT_SERVING', …). */
export async function healthOf(addr: string, service = ''): Promise<string> {
  const def = protoLoader.loadSync(require.resolve('grpc-health-check/proto/health/v1/health.proto'), {
    keepCase: true,
    enums: String,
  });
  type Check = (req: { service: string }, cb: (e: Error | null, r?: { status: string }) => void) => void;
  const Health = (
    grpc.loadPackageDefinition(def) as unknown as {
      grpc: {
        health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => grpc.Client & { Check: Check } } };
      };
    }
  ).grpc.health.v1.Health;
  const h = new Health(addr, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      h.Check({ service }, (e, r) => (e ? reject(e) : resolve(String(r?.status)))),
    );
  } finally {
    h.close();
  }
}
