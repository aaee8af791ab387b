/**
 * Job lists from slim WatchNode changes (proto: Change.job_changes): a reader keeps each domain's
 * jobs from the last snapshot and applies the changes in order. Pure; shared by the filter's view
 * and the CLI's `node watch`.
 */

/** One domain's job-list change, as the wire carries it. */
export interface JobListChange<J> {
  readonly removed: readonly string[];
  readonly cleared: boolean;
  readonly added: readonly J[];
}

/** The jobs after a change: those before, minus `removed` (none with `cleared`), plus `added` (by id). */
export function applyJobChange<J extends { readonly id: string }>(
  jobs: ReadonlyMap<string, J>,
  change: JobListChange<J>,
): Map<string, J> {
  const next = change.cleared ? new Map<string, J>() : new Map(jobs);
  if (!change.cleared) for (const id of change.removed) next.delete(id);
  for (const j of change.added) next.set(j.id, j);
  return next;
}

/** The change that turns `before` into `after` (by id), or null when they hold the same jobs. */
export function jobListChange<J extends { readonly id: string }>(
  before: readonly J[],
  after: readonly J[],
): JobListChange<J> | null {
  if (before === after) return null;
  if (after.length === 0) return before.length === 0 ? null : { removed: [], cleared: true, added: [] };
  // The common cases, told by identity (job records are immutable): jobs added at the end, or one
  // job taken out. A domain with 10,000 jobs then costs pointer comparisons, not two sets per command.
  let i = 0;
  while (i < before.length && i < after.length && before[i] === after[i]) i++;
  if (i === before.length) return i === after.length ? null : { removed: [], cleared: false, added: after.slice(i) };
  if (after.length === before.length - 1) {
    let k = i;
    while (k < after.length && after[k] === before[k + 1]) k++;
    if (k === after.length) return { removed: [(before[i] as J).id], cleared: false, added: [] };
  }
  const had = new Map(before.map((j) => [j.id, j]));
  const has = new Set(after.map((j) => j.id));
  const removed = before.filter((j) => !has.has(j.id)).map((j) => j.id);
  // A job whose record changed (suspended or resumed on its own, in CPU-counting mode) is sent
  // again: `added` replaces a kept job of the same id in place.
  const added = after.filter((j) => had.get(j.id) !== j);
  return removed.length === 0 && added.length === 0 ? null : { removed, cleared: false, added };
}

/** A domain record as a change carries it (jobs_omitted: its list is kept by the reader). */
interface DomainWithJobs<J> {
  readonly name: string;
  readonly jobs: readonly J[];
  readonly jobs_omitted?: boolean;
}

/** Each domain's job list across a WatchNode stream: whole from snapshots, kept through slim changes. */
export class JobLists<J extends { readonly id: string }> {
  private readonly byDomain = new Map<string, ReadonlyMap<string, J>>();

  /** A snapshot: its lists replace every kept one. */
  reset(domains: readonly DomainWithJobs<J>[]): void {
    this.byDomain.clear();
    for (const d of domains) this.byDomain.set(d.name, new Map(d.jobs.map((j) => [j.id, j])));
  }

  /** A change's domains, each with its whole job list (a slim record gets the kept list, changed by `changes`). */
  apply<D extends DomainWithJobs<J>>(
    domains: readonly D[],
    changes: readonly (JobListChange<J> & { readonly domain: string })[],
  ): D[] {
    return domains.map((d) => {
      let jobs: ReadonlyMap<string, J>;
      if (d.jobs_omitted) {
        jobs = this.byDomain.get(d.name) ?? new Map<string, J>();
        for (const c of changes) if (c.domain === d.name) jobs = applyJobChange(jobs, c);
      } else jobs = new Map(d.jobs.map((j) => [j.id, j]));
      this.byDomain.set(d.name, jobs);
      return { ...d, jobs: [...jobs.values()], jobs_omitted: false };
    });
  }
}
