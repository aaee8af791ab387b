/**
 * Honest accounting during preemption: when a domain is preempted its jobs are suspended in
 * PBS too (`qsig -s admin-suspend`), so walltime stops and `qstat` shows the truth; when it
 * resumes, `qsig -s admin-resume`. Only live transitions count (a snapshot after a restart
 * does not suspend again).
 */
import type { Logger } from 'pino';
import type { NodeChange } from './cluster-view';
import type { FilterConfig } from './config';
import type { Metrics } from './metrics';
import { runProcess } from './run-process';

type PbsConfig = NonNullable<FilterConfig['pbs']>;
const RUNNING = new Set(['running', 'running-preemptible']);

export class Accounting {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly pbs: PbsConfig,
    private readonly deps: { logger: Logger; metrics: Metrics },
  ) {}

  readonly onView = ({ node, domains, commitAtMs }: NodeChange): void => {
    if (commitAtMs === 0) return;
    for (const { name, before, after } of domains) {
      if (!before || !after) continue;
      if (after.storedState === 'preempted' && before.storedState !== 'preempted') {
        this.signal('admin-suspend', after.jobIds, node.cfg.name, name);
      } else if (before.storedState === 'preempted' && RUNNING.has(after.storedState)) {
        this.signal('admin-resume', after.jobIds, node.cfg.name, name);
      }
    }
  };

  private signal(sig: 'admin-suspend' | 'admin-resume', jobs: readonly string[], node: string, domain: string): void {
    if (jobs.length === 0) return;
    this.chain = this.chain.then(async () => {
      const r = await runProcess(this.pbs.qsig, ['-s', sig, ...jobs], '', this.pbs.qmgrTimeoutMs);
      const ok = r.code === 0;
      this.deps.metrics.qsig.inc({ signal: sig, result: ok ? 'ok' : 'failed' });
      if (ok) this.deps.logger.info({ node, domain, signal: sig, jobs }, 'PBS accounting updated for a preemption');
      else
        this.deps.logger.error(
          { node, domain, signal: sig, jobs, code: r.code, output: r.output.slice(0, 1000) },
          'qsig failed',
        );
    });
  }

  idle(): Promise<unknown> {
    return this.chain;
  }
}
