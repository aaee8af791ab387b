/**
 * Wake on demand: every `pbs.wakeIntervalMs`, while some domain of the view is down-bootable with
 * domains[].wakeOnDemand, reads the queued jobs (`qstat -f -F json`) and asks the node daemons
 * to boot the domains `planWakes` picks for the images those jobs ask for. The PBS server is never
 * waited on by a job: the job stays queued while the domain boots and the scheduler places it
 * once the domain is published free (or anywhere else that frees up first). A refused or failed
 * wake-up is logged and counted; the next pass plans again from what the view then shows.
 */
import type { Logger } from 'pino';
import type { JobClass } from '@magrathea/common/rules';
import { planWakes, wakeable } from '../core';
import type { QueuedJob, Wake } from '../core';
import type { ClusterView } from './cluster-view';
import type { FilterConfig } from './config';
import type { Metrics } from './metrics';
import { runProcess } from './run-process';
import type { RunCommand } from './run-process';

type PbsConfig = NonNullable<FilterConfig['pbs']>;

/** Asks a node's daemon to boot one of its domains; rejects with the daemon's refusal. */
export type WakeCall = (node: string, domain: string, reason: string) => Promise<void>;

const IMAGE_IN_SELECT = /(?:^|[:+])\s*magrathea_image\s*=\s*([^:+\s]*)/i;
const CLASS_IN_SELECT = /(?:^|[:+])\s*magrathea\s*=\s*([^:+\s]*)/i;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * The queued jobs (job_state Q) of `qstat -f -F json`, in qstat's order, with the image and
 * class they ask for: Resource_List.magrathea_image / magrathea, else the select (schedselect
 * carries the queue's default_chunk).
 */
export function parseQueuedJobs(json: string): QueuedJob[] {
  const o = JSON.parse(json) as { Jobs?: Record<string, Record<string, unknown>> };
  const out: QueuedJob[] = [];
  for (const [id, j] of Object.entries(o.Jobs ?? {})) {
    if (typeof j !== 'object' || j === null || j.job_state !== 'Q') continue;
    const rl = (typeof j.Resource_List === 'object' && j.Resource_List !== null ? j.Resource_List : {}) as Record<
      string,
      unknown
    >;
    const selects = [str(rl.select), str(j.schedselect)];
    const fromSelect = (re: RegExp): string => selects.map((s) => re.exec(s)?.[1] ?? '').find((x) => x !== '') ?? '';
    const image = str(rl.magrathea_image) || fromSelect(IMAGE_IN_SELECT);
    const cls = str(rl.magrathea) || fromSelect(CLASS_IN_SELECT);
    const jobClass: JobClass = cls === 'priority' ? 'priority' : 'normal';
    out.push({ id, image, jobClass });
  }
  return out;
}

export class Waker {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** node/domain of wake-ups asked for and not yet answered. */
  private readonly pending = new Set<string>();
  private readonly calls = new Set<Promise<void>>();
  private qstatFailing = false;

  constructor(
    private readonly pbs: PbsConfig,
    private readonly deps: {
      view: ClusterView;
      wake: WakeCall;
      /** Whether `wake` can reach this node's daemon (the filter watches it directly, not through a relay). */
      canWake: (node: string) => boolean;
      logger: Logger;
      metrics: Metrics;
      run?: RunCommand;
    },
  ) {}

  start(): void {
    if (this.pbs.wakeIntervalMs <= 0) return;
    this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.pass().finally(() => this.arm());
    }, this.pbs.wakeIntervalMs);
    this.timer.unref();
  }

  /** One pass (also on demand); concurrent calls share it. Resolves with the wake-ups asked for. */
  pass(): Promise<void> {
    this.running ??= this.once().finally(() => (this.running = null));
    return this.running;
  }

  private async once(): Promise<void> {
    // No domain to wake: no qstat either (sites without wake-on-demand domains pay nothing).
    if (!this.reachableDomains().some(wakeable)) return;
    const jobs = await this.queuedJobs();
    if (!jobs) return;
    for (const w of planWakes(jobs, this.reachableDomains(), this.pending)) this.ask(w);
  }

  /** The view's wake-on-demand domains on nodes whose daemon `wake` can reach. */
  private reachableDomains(): ReturnType<ClusterView['wakeDomains']> {
    return this.deps.view.wakeDomains().filter((d) => this.deps.canWake(d.node.name));
  }

  private async queuedJobs(): Promise<QueuedJob[] | null> {
    const r = await (this.deps.run ?? runProcess)(
      this.pbs.qstat,
      ['-f', '-F', 'json', ...(this.pbs.server ? [`@${this.pbs.server}`] : [])],
      '',
      this.pbs.qmgrTimeoutMs,
      { maxStdoutBytes: 512 * 1024 * 1024 },
    );
    let jobs: QueuedJob[] | null = null;
    if (r.code === 0) {
      try {
        jobs = parseQueuedJobs(r.stdout || '{}');
      } catch {
        jobs = null;
      }
    }
    this.deps.metrics.pbsReads.inc({ command: 'qstat', result: jobs ? 'ok' : 'failed' });
    if (!jobs && !this.qstatFailing)
      this.deps.logger.error(
        { code: r.code, spawnError: r.spawnError, timedOut: r.timedOut, output: r.output.slice(0, 1000) },
        'cannot read the queued jobs from PBS (qstat); no domain is woken until it answers',
      );
    this.qstatFailing = jobs === null;
    return jobs;
  }

  private ask(w: Wake): void {
    const key = `${w.node}/${w.domain}`;
    this.pending.add(key);
    const reason = `wake on demand: job ${w.jobId} asks for image ${w.image}`;
    this.deps.logger.info(
      { node: w.node, domain: w.domain, vnode: w.vnode, jobId: w.jobId, image: w.image },
      'waking a domain for a queued job',
    );
    const call = this.deps
      .wake(w.node, w.domain, reason)
      .then(
        () => this.deps.metrics.wakes.inc({ result: 'ok' }),
        (err: unknown) => {
          const refused = (err as { code?: unknown }).code !== undefined;
          this.deps.metrics.wakes.inc({ result: refused ? 'refused' : 'failed' });
          this.deps.logger.warn({ err, node: w.node, domain: w.domain, jobId: w.jobId }, 'wake-up not done');
        },
      )
      .finally(() => {
        this.pending.delete(key);
        this.calls.delete(call);
      });
    this.calls.add(call);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    await Promise.all([...this.calls]);
  }
}
