/**
 * Fuzzing a real magrathead (child process) through every gRPC method and the hook API:
 * 10,000 generated inputs each. Every answer is a success or a clear client error (never
 * INTERNAL/500), the daemon stays up, and the node's invariants hold afterwards.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import type { NodeMessage, NodeServiceClient } from '@magrathea/common';
import { getNode, nodeClient, spawnDaemon, statesOf, tmpDir, unary } from '../helpers/processes';
import type { DaemonProcess } from '../helpers/processes';

const N = Number(process.env.FUZZ_RUNS ?? 10_000);
const TOKEN = 'fuzz-token-meta-0123456789';
const OK_CODES = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.FAILED_PRECONDITION,
]);

const text = fc.oneof(
  fc.constantFrom('meta', 'egee', 'priv', 'nope', '', ' ', '../x', 'META', 'a'.repeat(64)),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ minLength: 250, maxLength: 400 }),
);
const jobId = fc.oneof(
  fc.constantFrom('1.pbs', '2.pbs', '3[4].srv', '', 'x'.repeat(255), 'x'.repeat(256)),
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 10 }),
);

function invariants(n: NodeMessage): string[] {
  const errs: string[] = [];
  const holders = n.domains.filter((d) => d.stored_state === 'running' || d.stored_state === 'running-preemptible');
  if (holders.length > 1) errs.push('several holders');
  if (
    n.domains.some((d) => d.stored_state === 'preempted') &&
    !n.domains.some((d) => d.domain_class === 'priority' && d.stored_state === 'running')
  ) {
    errs.push('preempted without a running priority domain');
  }
  return errs;
}

/** Runs `count` async checks, `width` at a time. */
async function inBatches<T>(items: T[], width: number, fn: (x: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

describe('fuzzing magrathead', () => {
  let dir: string;
  let d: DaemonProcess;
  let c: NodeServiceClient;
  let hookUrl: string;

  beforeAll(async () => {
    dir = tmpDir('mg-fuzz-');
    fs.writeFileSync(path.join(dir, 'meta.token'), TOKEN);
    fs.writeFileSync(path.join(dir, 'priv.token'), `${TOKEN}-priv`);
    d = await spawnDaemon({
      stateDir: path.join(dir, 'state'),
      config: `hookApi: { listen: "127.0.0.1:0" }\n# the failed-token limiter would answer 429 to most of the fuzz; it has its own test\nlimits: { authFailuresPerMinute: 1000000 }\ndomains:\n  - { name: meta, tokenFile: ${dir}/meta.token }\n  - { name: egee }\n  - { name: priv, class: priority, tokenFile: ${dir}/priv.token }\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n`,
    });
    hookUrl = `http://127.0.0.1:${String(d.logs.find((l) => l.msg === 'magrathead ready')!.hookPort)}`;
    c = nodeClient(d.admin);
    for (let i = 0; i < 200 && Object.values(statesOf(await getNode(c))).some((s) => s !== 'free'); i++)
      await new Promise((r) => setTimeout(r, 10));
  });
  afterAll(async () => {
    c?.close();
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const call = (
    method: (req: object, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => unknown,
    req: object,
  ) =>
    unary(c, method as never, req).then(
      () => grpc.status.OK,
      (e: grpc.ServiceError) => e.code,
    );

  test(`StartJob, EndJob, DomainAction, WatchNode: ${N} generated requests each, only clear answers`, async () => {
    const startReqs = fc.sample(
      fc.record({
        domain: text,
        job_id: jobId,
        preemptible: fc.boolean(),
        cpus: fc.oneof(fc.constant(0), fc.nat({ max: 5000 }), fc.constant(4096), fc.constant(4097)),
        expected_generation: fc.oneof(fc.constant('0'), fc.nat().map(String), fc.constant('18446744073709551615')),
      }),
      N,
    );
    const endReqs = fc.sample(fc.record({ domain: text, job_id: jobId }), N);
    const actionReqs = fc.sample(
      fc.record({
        domain: text,
        action: fc.oneof(
          fc.constantFrom('boot', 'down', 'reboot', 'freeze', 'defrost', 'offline', 'online', 'remove'),
          fc.string({ maxLength: 10 }),
        ),
        reason: fc.oneof(
          fc.string({ maxLength: 30 }),
          fc.string({ minLength: 1000, maxLength: 1100 }),
          fc.constant('a\nb'),
        ),
      }),
      N,
    );
    const codes = new Map<string, number>();
    const seen = (m: string, code: number) => {
      const k = `${m}:${grpc.status[code]}`;
      codes.set(k, (codes.get(k) ?? 0) + 1);
      if (!OK_CODES.has(code)) throw new Error(`${m} answered ${grpc.status[code]}`);
    };
    await inBatches(startReqs, 25, async (r) => seen('StartJob', await call(c.StartJob, r)));
    await inBatches(endReqs, 25, async (r) => seen('EndJob', await call(c.EndJob, r)));
    // Domain actions that take domains down are undone between batches, so later starts have something to hit.
    await inBatches(actionReqs, 25, async (r) => seen('DomainAction', await call(c.DomainAction, r)));
    for (const [s, expected] of [
      ['1', ['data', 'metadata']],
      ['0', ['data']],
      ['999999999', ['data']],
      ['18446744073709551615', ['error INVALID_ARGUMENT']],
    ] as const) {
      const w = c.WatchNode({ since_generation: s });
      const first = await new Promise<string>((resolve) => {
        w.on('data', () => resolve('data'));
        w.on('metadata', () => setTimeout(() => resolve('metadata'), 50));
        w.on('error', (e: grpc.ServiceError) => resolve(`error ${grpc.status[e.code]}`));
      });
      expect(expected).toContain(first);
      w.cancel();
    }
    const n = await getNode(c);
    expect(invariants(n)).toEqual([]);
    // Something real happened: successes and each kind of refusal.
    expect(codes.get('StartJob:OK')).toBeGreaterThan(0);
    expect(codes.get('StartJob:INVALID_ARGUMENT')).toBeGreaterThan(0);
    expect(codes.get('DomainAction:FAILED_PRECONDITION')).toBeGreaterThan(0);
  }, 240_000);

  test(`hook API: ${N} generated requests, only 2xx/4xx answers, the daemon keeps serving`, async () => {
    const reqArb = fc.record({
      method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
      path: fc.oneof(
        fc.constantFrom(
          '/v1/jobs/start',
          '/v1/jobs/end',
          '/v1/domains/meta',
          '/v1/domains/priv',
          '/v1/domains/%zz',
          '/',
          '/v1/jobs/start?x=1',
        ),
        fc.string({ maxLength: 20 }).map((s) => `/${encodeURIComponent(s)}`),
      ),
      auth: fc.oneof(
        fc.constant(`Bearer ${TOKEN}`),
        fc.constant(`Bearer ${TOKEN}-priv`),
        fc.constant(''),
        fc.constant('Bearer '),
        fc.string({ maxLength: 30 }).map((s) => `Bearer ${s.replace(/[^\x21-\x7e]/g, 'x')}`),
      ),
      type: fc.constantFrom('application/json', 'text/plain', ''),
      body: fc.oneof(
        fc
          .record({
            job_id: jobId,
            preemptible: fc.oneof(fc.boolean(), fc.string()),
            cpus: fc.oneof(fc.integer(), fc.double(), fc.string()),
            domain: fc.option(text),
          })
          .map((o) => JSON.stringify(o)),
        fc.json(),
        fc.string({ maxLength: 100 }),
        fc.constant('x'.repeat(5000)),
      ),
    });
    const statuses = new Map<number, number>();
    await inBatches(fc.sample(reqArb, N), 25, async (r) => {
      const headers: Record<string, string> = {};
      if (r.auth) headers.authorization = r.auth;
      if (r.type) headers['content-type'] = r.type;
      const res = await fetch(`${hookUrl}${r.path}`, {
        method: r.method,
        headers,
        ...(r.method === 'GET' ? {} : { body: r.body }),
      });
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (![200, 400, 401, 403, 404, 405, 409, 413, 415].includes(res.status))
        throw new Error(`hook API answered ${res.status} to ${JSON.stringify(r).slice(0, 300)}`);
    });
    expect(statuses.get(200)).toBeGreaterThan(0);
    expect(statuses.get(401)).toBeGreaterThan(0);
    const ok = await fetch(`${hookUrl}/v1/domains/meta`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(invariants(await getNode(c))).toEqual([]);
  }, 240_000);
});
