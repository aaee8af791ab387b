/**
 * The node commands: `status`, `watch`, `job start|end`, `domain <action>`, `domain set-image` and `domain show`
 * against one magrathead (`--node HOST:PORT` or `unix:PATH`, else MAGRATHEA_NODE, else the local
 * socket), over gRPC NodeService.
 */
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type * as grpc from '@grpc/grpc-js';
import type {
  JobMessage,
  DomainActionResponseMessage,
  EndJobResponseMessage,
  NodeEventMessage,
  NodeMessage,
  NodeServiceClient,
  SetImageResponseMessage,
  StartJobResponseMessage,
} from '@magrathea/common';
import { DOMAIN_ACTIONS, DOMAIN_NAME, JobLists, REPORTED_STATES } from '@magrathea/common';
import type { Endpoint } from '../client';
import { call, CliError, connect, EXIT, fromGrpcError } from '../client';
import type { Io } from '../output';
import {
  changeLine,
  domainDetail,
  domainJson,
  inStates,
  nodeJson,
  problemsOf,
  problemsTable,
  PSEUDO_STATES,
  statusTable,
} from '../output';
import type { CliContext } from '../program';

/** What the node commands need: output, the interrupt, the shared context (timeout, addresses, TLS). */
export interface NodeCommandDeps {
  readonly io: Io;
  /** Resolves when the user interrupts (Ctrl-C); used by `watch`. */
  readonly interrupted: Promise<void>;
  readonly ctx: CliContext;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 4096) throw new InvalidArgumentError('must be an integer from 1 to 4096');
  return n;
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 86_400) throw new InvalidArgumentError('must be seconds from 0 to 86400');
  return n;
}

function imageName(v: string): string {
  if (!DOMAIN_NAME.test(v)) throw new InvalidArgumentError(`"${v}" is not an image name (letters, digits, . _ -)`);
  return v;
}

/** How a switch that `--wait` follows ended, from one GetNode: null while it goes on. */
export function switchOutcome(d: NodeMessage['domains'][number], image: string): { ok: boolean; why: string } | null {
  if (d.pending_image !== '' || d.stored_state === 'booting') return null;
  if (d.image !== image)
    return {
      ok: false,
      why: `the switch was given up (${d.down_reason || d.stored_state}); the domain runs ${d.image}`,
    };
  if (d.stored_state === 'down' || d.stored_state === 'down-bootable')
    return { ok: false, why: `the domain is down on image ${image}: ${d.down_reason}` };
  return { ok: true, why: '' };
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

export const nodeOption = (): Option =>
  new Option(
    '--node <addr>',
    'magrathead address: HOST:PORT or unix:PATH (default: $MAGRATHEA_NODE, else the local socket)',
  );

export async function withClient<T>(ep: Endpoint, fn: (c: NodeServiceClient) => Promise<T>): Promise<T> {
  const client = connect(ep);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** GetNode on `ep`. */
const getNode = (ep: Endpoint): Promise<NodeMessage> =>
  withClient(ep, (c) => call<NodeMessage>(ep, (opts, cb) => c.GetNode({}, opts, cb)));

const STATE_WORDS: readonly string[] = [...REPORTED_STATES, ...PSEUDO_STATES];

function stateList(v: string): Set<string> {
  const states = v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
  const bad = states.filter((x) => !STATE_WORDS.includes(x));
  if (states.length === 0 || bad.length > 0)
    throw new InvalidArgumentError(`${bad.join(', ') || 'empty'}: not a state (one of ${STATE_WORDS.join(', ')})`);
  return new Set(states);
}

/** Streams WatchNode, reconnecting with backoff and resuming from the last generation seen. */
async function watch(ep: Endpoint, json: boolean, deps: NodeCommandDeps): Promise<void> {
  const { io } = deps;
  let since = 0;
  let stop = false;
  let current: grpc.ClientReadableStream<NodeEventMessage> | null = null;
  let client: NodeServiceClient | null = null;
  void deps.interrupted.then(() => {
    stop = true;
    current?.cancel();
  });
  let backoff = 250;
  // Changes carry job-list deltas (slim); the lists printed are kept from the snapshot.
  const lists = new JobLists<JobMessage>();
  while (!stop) {
    client = connect(ep);
    const ended = await new Promise<'ended' | Error>((resolve) => {
      const stream = client!.WatchNode({ since_generation: String(since) });
      current = stream;
      stream.on('data', (e: NodeEventMessage) => {
        backoff = 250;
        since = Number(e.generation);
        if (e.snapshot) {
          const n = e.snapshot;
          lists.reset(n.domains);
          if (json) io.out(JSON.stringify({ type: 'snapshot', generation: since, ...nodeJson(n) }));
          else for (const d of n.domains) io.out(changeLine(e.generation, 'snapshot', d, Number(n.reported_at_ms)));
        } else if (e.change) {
          const c = { ...e.change, domains: lists.apply(e.change.domains, e.change.job_changes) };
          if (json) {
            io.out(
              JSON.stringify({
                type: 'change',
                generation: since,
                cause: c.cause,
                domain: c.domain,
                job_id: c.job_id,
                at_ms: Number(c.at_ms),
                domains: c.domains.map(domainJson),
              }),
            );
          } else
            for (const d of c.domains)
              io.out(changeLine(e.generation, c.cause + (c.job_id ? ` ${c.job_id}` : ''), d, Number(c.at_ms)));
        }
      });
      stream.on('error', (err) => resolve(err));
      stream.on('end', () => resolve('ended'));
    });
    client.close();
    if (stop) break;
    const why = ended === 'ended' ? 'stream ended' : fromGrpcError(ended, ep).message;
    io.err(`watch: ${why}; reconnecting in ${backoff} ms (resuming after generation ${since})`);
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 5000);
  }
}

/** Adds the node commands to the program. */
export function addNodeCommands(program: Command, deps: NodeCommandDeps): void {
  const { io, ctx } = deps;
  const node = (flag: string | undefined): Endpoint => ctx.endpoint(ctx.nodeAddress(flag), 'magrathead');
  program
    .command('status')
    .description('show the domains of a node: class, state, jobs, since, generation, notes (and a legend)')
    .addOption(nodeOption())
    .option(
      '--state <list>',
      `only domains in these states, comma-separated (state names, or ${PSEUDO_STATES.join(', ')})`,
      stateList,
    )
    .option('-l, --problems', 'only domains that are down, offline, held, preempted, frozen or drifting, and why')
    .option('--json', 'print one JSON object')
    .action(async (o: { node?: string; json?: boolean; state?: Set<string>; problems?: boolean }) => {
      const n = await getNode(node(o.node));
      const now = Date.now();
      if (o.problems) {
        if (o.json)
          io.out(
            JSON.stringify({
              node: n.name,
              domains: n.domains
                .map((d) => ({
                  name: d.name,
                  state: d.state,
                  since_ms: Number(d.since_ms),
                  problems: problemsOf(d, n),
                }))
                .filter((d) => d.problems.length > 0),
            }),
          );
        else io.out(problemsTable(n, now));
        return;
      }
      const domains = o.state ? n.domains.filter((d) => inStates(d, o.state!)) : n.domains;
      io.out(
        o.json ? JSON.stringify({ ...nodeJson(n), domains: domains.map(domainJson) }) : statusTable(n, now, domains),
      );
    });

  program
    .command('watch')
    .description('print one line per change until interrupted (reconnects and resumes by itself)')
    .addOption(nodeOption())
    .option('--json', 'print one JSON object per event')
    .action((o: { node?: string; json?: boolean }) => watch(node(o.node), o.json === true, deps));

  const job = program.command('job').description('start or end a job in a domain (what the PBS hooks do)');
  job
    .command('start')
    .description('StartJob: exit 0 when the job may run; otherwise non-zero with the reason on stderr')
    .addOption(nodeOption())
    .requiredOption('--domain <name>', 'domain the job runs in')
    .requiredOption('--job <id>', 'PBS job id')
    .option('--non-preemptible', 'the job may not be preempted (e.g. a multi-node job)')
    .option('--cpus <n>', 'CPUs the job uses', positiveInt, 1)
    .option('--expected-generation <g>', 'refuse unless the domain is still at this generation', nonNegativeInt)
    .option('--json', 'print the result as JSON (a refusal too: {"error": {"kind": "refused", "reason", …}})')
    .action(
      async (o: {
        node?: string;
        domain: string;
        job: string;
        nonPreemptible?: boolean;
        cpus: number;
        expectedGeneration?: number;
        json?: boolean;
      }) => {
        const ep = node(o.node);
        const r = await withClient(ep, (c) =>
          call<StartJobResponseMessage>(ep, (opts, cb) =>
            c.StartJob(
              {
                domain: o.domain,
                job_id: o.job,
                preemptible: o.nonPreemptible !== true,
                cpus: o.cpus,
                expected_generation: String(o.expectedGeneration ?? 0),
              },
              opts,
              cb,
            ),
          ),
        );
        if (o.json)
          io.out(
            JSON.stringify({
              generation: Number(r.generation),
              state: r.state,
              preempted: r.preempted,
              already_running: r.already_running,
              phases: r.phases,
            }),
          );
        else {
          const extra = r.already_running
            ? ' (already running)'
            : r.preempted.length
              ? `; preempted ${r.preempted.join(', ')}`
              : '';
          io.out(`started ${o.job} in ${o.domain}: ${r.state}, generation ${r.generation}${extra}`);
        }
      },
    );
  job
    .command('end')
    .description('EndJob (an unknown job is not an error: end hooks retry)')
    .addOption(nodeOption())
    .requiredOption('--domain <name>', 'domain the job runs in')
    .requiredOption('--job <id>', 'PBS job id')
    .option('--exit-status <n>', "the job's exit status (non-zero: failed; keepFailed keeps its overlay)")
    .option('--json', 'print the result as JSON')
    .action(async (o: { node?: string; domain: string; job: string; exitStatus?: string; json?: boolean }) => {
      const ep = node(o.node);
      const exit = o.exitStatus === undefined ? null : Number(o.exitStatus);
      if (exit !== null && !Number.isInteger(exit))
        throw new CliError(`--exit-status must be an integer, not ${o.exitStatus}`, EXIT.usage);
      const req = { domain: o.domain, job_id: o.job, exit_status: exit ?? 0, has_exit_status: exit !== null };
      const r = await withClient(ep, (c) => call<EndJobResponseMessage>(ep, (opts, cb) => c.EndJob(req, opts, cb)));
      if (r.warning) io.err(`warning: ${r.warning}`);
      if (o.json)
        io.out(
          JSON.stringify({ generation: Number(r.generation), state: r.state, resumed: r.resumed, warning: r.warning }),
        );
      else
        io.out(
          `ended ${o.job} in ${o.domain}: ${r.state}, generation ${r.generation}${r.resumed.length ? `; resumed ${r.resumed.join(', ')}` : ''}`,
        );
    });

  /** The node and one of its domains (NOT_FOUND naming the domains it has). */
  const nodeDomain = async (ep: Parameters<typeof getNode>[0], name: string) => {
    const n = await getNode(ep);
    const d = n.domains.find((x) => x.name === name);
    if (!d)
      throw new CliError(
        `no domain named ${name} on node ${n.name} (it has ${n.domains.map((x) => x.name).join(', ')})`,
        EXIT.notFound,
      );
    return { n, d };
  };
  const domain = program
    .command('domain')
    .description(`show a domain, or act on it: show, ${DOMAIN_ACTIONS.join(', ')}`);
  domain
    .command('show <domain>')
    .description('every fact of one domain (like scontrol show node): state, jobs, reasons, driver, last preemption')
    .addOption(nodeOption())
    .option('--json', 'print one JSON object')
    .action(async (name: string, o: { node?: string; json?: boolean }) => {
      const { n, d } = await nodeDomain(node(o.node), name);
      io.out(
        o.json
          ? JSON.stringify({ node: n.name, driver: n.driver, ...domainJson(d), problems: problemsOf(d, n) })
          : domainDetail(n, d),
      );
    });
  domain
    .command('snapshots <domain>')
    .description('the overlays kept of failed jobs (domains[].keepFailed), oldest first')
    .addOption(nodeOption())
    .option('--json', 'print one JSON array')
    .action(async (name: string, o: { node?: string; json?: boolean }) => {
      const { d } = await nodeDomain(node(o.node), name);
      const kept = d.kept_overlays.map((k) => ({
        job: k.job_id,
        file: k.file,
        bytes: Number(k.bytes),
        keptAt: new Date(Number(k.kept_at_ms)).toISOString(),
      }));
      if (o.json) io.out(JSON.stringify(kept));
      else if (kept.length === 0) io.out(`${name}: no kept overlays (lifecycle ${d.lifecycle || 'persistent'})`);
      else
        io.out(
          [
            'JOB\tKEPT AT\tMIB\tFILE',
            ...kept.map((k) => `${k.job}\t${k.keptAt}\t${(k.bytes / 1048576).toFixed(1)}\t${k.file}`),
          ].join('\n'),
        );
    });
  domain
    .command('set-image <domain> <image>')
    .description(
      'switch an image-backed domain to another catalogue image: no new job starts, its jobs end (or --now ends them, reported lost), then shut down, new overlay on the new base, boot',
    )
    .addOption(nodeOption())
    .option('--now', "end the domain's running jobs now (reported lost) instead of waiting for them")
    .option('--wait', 'wait until the domain is up on the new image (exit 3 if the switch fails, with why)')
    .option('--wait-timeout <seconds>', 'give up waiting after this long (exit 5)', seconds, 1800)
    .option('--json', 'print the result as JSON')
    .action(
      async (
        name: string,
        rawImage: string,
        o: { node?: string; now?: boolean; wait?: boolean; waitTimeout: number; json?: boolean },
      ) => {
        let image: string;
        try {
          image = imageName(rawImage);
        } catch (err) {
          throw new CliError(`set-image: ${(err as Error).message}`, EXIT.usage);
        }
        const ep = node(o.node);
        const r = await withClient(ep, (c) =>
          call<SetImageResponseMessage>(ep, (opts, cb) =>
            c.SetImage({ domain: name, image, now: o.now === true }, opts, cb),
          ),
        );
        const result = {
          domain: name,
          image,
          state: r.state,
          generation: Number(r.generation),
          lostJobs: r.lost_jobs,
          waitingForJobs: r.waiting_for_jobs,
        };
        if (!o.wait) {
          io.out(
            o.json
              ? JSON.stringify(result)
              : `set-image ${name} ${image}: ${r.waiting_for_jobs ? 'draining, waiting for its jobs' : r.state}, generation ${r.generation}${r.lost_jobs.length ? `; lost ${r.lost_jobs.join(', ')}` : ''}`,
          );
          return;
        }
        const deadline = performance.now() + o.waitTimeout * 1000;
        for (;;) {
          const { d } = await nodeDomain(ep, name);
          const end = switchOutcome(d, image);
          if (end && !end.ok) throw new CliError(`set-image ${name} ${image}: ${end.why}`, EXIT.refused);
          if (end) {
            io.out(
              o.json
                ? JSON.stringify({ ...result, state: d.state, generation: Number(d.generation) })
                : `set-image ${name} ${image}: up on ${image} (${d.state}), generation ${d.generation}${r.lost_jobs.length ? `; lost ${r.lost_jobs.join(', ')}` : ''}`,
            );
            return;
          }
          if (performance.now() > deadline)
            throw new CliError(
              `set-image ${name} ${image}: still ${d.pending_image ? `switching (${d.state}, ${d.job_count} job(s))` : d.state} after ${o.waitTimeout} s`,
              EXIT.unavailable,
            );
          await new Promise((res) => setTimeout(res, 500));
        }
      },
    );
  for (const action of DOMAIN_ACTIONS) {
    domain
      .command(`${action} <domain>`)
      .description(
        action === 'offline'
          ? 'take a domain out of scheduling (its jobs continue); without --reason the earlier reason stays'
          : `${action} a domain`,
      )
      .addOption(nodeOption())
      .option('--reason <text>', 'why (shown in status and logs)', '')
      .option('--json', 'print the result as JSON')
      .action(async (name: string, o: { node?: string; reason: string; json?: boolean }) => {
        const ep = node(o.node);
        const r = await withClient(ep, (c) =>
          call<DomainActionResponseMessage>(ep, (opts, cb) =>
            c.DomainAction({ domain: name, action, reason: o.reason }, opts, cb),
          ),
        );
        io.out(
          o.json
            ? JSON.stringify({ action, domain: name, state: r.state, generation: Number(r.generation) })
            : `${action} ${name}: ${r.state}, generation ${r.generation}`,
        );
      });
  }
}
