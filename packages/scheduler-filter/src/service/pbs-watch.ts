/**
 * Reads what PBS holds for every vnode (`pbsnodes -av -F json`) every `reassertIntervalMs`, so
 * that the publisher can write back values changed behind it (a hand qmgr, a mom hook that took a
 * vnode out after a refused start, a server restart) and honest accounting can find vnodes PBS left
 * in `maintenance`. PBS coming back after failed reads makes the publisher write everything again.
 */
import type { Logger } from 'pino';
import type { FilterConfig } from './config';
import type { Metrics } from './metrics';
import type { HeldValues } from './publisher';
import { runProcess } from './run-process';
import type { RunCommand } from './run-process';

type PbsConfig = NonNullable<FilterConfig['pbs']>;

/** One vnode as PBS holds it. */
export interface PbsVnode extends HeldValues {
  /** PBS node state, e.g. `free`, `job-busy`, `maintenance`, `down,offline`. */
  readonly pbsState: string;
  /** Jobs PBS keeps the vnode in maintenance for (admin-suspended ones). */
  readonly maintenanceJobs: readonly string[];
  /** Jobs running on the vnode (pbsnodes `jobs`). */
  readonly jobs: readonly string[];
}

const text = (v: unknown): string | null =>
  typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;

/** Parses `pbsnodes -av -F json` (values that look like JSON numbers arrive as numbers). */
export function parsePbsnodes(json: string): Map<string, PbsVnode> {
  const o = JSON.parse(json) as { nodes?: Record<string, Record<string, unknown>> };
  const out = new Map<string, PbsVnode>();
  for (const [name, n] of Object.entries(o.nodes ?? {})) {
    if (typeof n !== 'object' || n === null) continue;
    const ra = (
      typeof n.resources_available === 'object' && n.resources_available !== null ? n.resources_available : {}
    ) as Record<string, unknown>;
    const rank = ra.magrathea_rank === undefined ? null : Number(ra.magrathea_rank);
    out.set(name, {
      magrathea: text(ra.magrathea),
      state: text(ra.magrathea_state),
      rank: rank !== null && Number.isFinite(rank) ? rank : null,
      image: text(ra.magrathea_image),
      cpus: ra.magrathea_cpus === undefined ? null : Number(ra.magrathea_cpus),
      comment: text(n.comment) ?? '',
      pbsState: text(n.state) ?? '',
      jobs: Array.isArray(n.jobs) ? n.jobs.map((j) => text(j) ?? '').filter(Boolean) : [],
      maintenanceJobs: (text(n.maintenance_jobs) ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    });
  }
  return out;
}

export type PbsVnodesListener = (vnodes: ReadonlyMap<string, PbsVnode>, cameBack: boolean) => void;

export class PbsWatch {
  private timer: NodeJS.Timeout | null = null;
  private failing = false;
  private readonly listeners: PbsVnodesListener[] = [];
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly pbs: PbsConfig,
    private readonly deps: {
      logger: Logger;
      metrics: Metrics;
      /** Runs pbsnodes (default runProcess: a fork from this process). */
      run?: RunCommand;
    },
  ) {}

  subscribe(l: PbsVnodesListener): void {
    this.listeners.push(l);
  }

  start(): void {
    if (this.pbs.reassertIntervalMs <= 0) return;
    this.arm(this.pbs.reassertIntervalMs);
  }

  private arm(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.pass().finally(() => this.arm(this.pbs.reassertIntervalMs));
    }, ms);
    this.timer.unref();
  }

  /** One read of every vnode (also on demand); concurrent calls share it. */
  pass(): Promise<void> {
    this.running ??= this.read().finally(() => (this.running = null));
    return this.running;
  }

  private async read(): Promise<void> {
    const r = await (this.deps.run ?? runProcess)(
      this.pbs.pbsnodes,
      ['-av', '-F', 'json', ...(this.pbs.server ? ['-s', this.pbs.server] : [])],
      '',
      this.pbs.qmgrTimeoutMs,
      { maxStdoutBytes: 512 * 1024 * 1024 },
    );
    let vnodes: Map<string, PbsVnode> | null = null;
    if (r.code === 0) {
      try {
        vnodes = parsePbsnodes(r.stdout);
      } catch {
        vnodes = null;
      }
    }
    if (!vnodes) {
      this.deps.metrics.pbsReads.inc({ command: 'pbsnodes', result: 'failed' });
      if (!this.failing)
        this.deps.logger.error(
          { code: r.code, spawnError: r.spawnError, timedOut: r.timedOut, output: r.output.slice(0, 1000) },
          'cannot read the vnodes from PBS (pbsnodes); values are re-asserted once it answers',
        );
      this.failing = true;
      return;
    }
    this.deps.metrics.pbsReads.inc({ command: 'pbsnodes', result: 'ok' });
    const cameBack = this.failing;
    if (cameBack) this.deps.logger.info({ vnodes: vnodes.size }, 'PBS answers again; writing every vnode again');
    this.failing = false;
    for (const l of this.listeners) {
      try {
        l(vnodes, cameBack);
      } catch (err) {
        this.deps.logger.error({ err }, 'PBS vnode listener failed');
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
