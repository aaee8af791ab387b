/**
 * Wake on demand: which down domains to boot for which queued jobs (pure, no I/O).
 *
 * A job waiting in PBS for an image (`magrathea_image`) that no up domain of its class offers
 * wakes one `down-bootable` domain of that image (domains[].wakeOnDemand) whose boot has not
 * failed within its back-off time. Jobs are served in queue order; a domain already booting for
 * the image, or one accepting the job's class now, covers one waiting job, so no more domains
 * boot than jobs wait. At most one domain per node is woken at a time: a booting domain holds
 * every start on its host until it is up.
 */
import { domainEligibility } from './publication';
import type { DomainSnapshot, NodeSnapshot } from './publication';
import type { JobClass } from '@magrathea/common/rules';

/** A job PBS holds queued, with what it asks for. */
export interface QueuedJob {
  readonly id: string;
  /** The image it asks for ('' : none; such a job wakes nothing). */
  readonly image: string;
  readonly jobClass: JobClass;
}

/** A domain the filter knows, with what waking needs beyond the core snapshot. */
export interface WakeDomain {
  readonly node: NodeSnapshot;
  readonly domain: DomainSnapshot;
  readonly vnode: string;
  /** domains[].wakeOnDemand, as the daemon reports it. */
  readonly wakeOnDemand: boolean;
  /** A failed boot's back-off still runs (the domain is not offered for a wake-up). */
  readonly backingOff: boolean;
}

export interface Wake {
  readonly jobId: string;
  readonly node: string;
  readonly domain: string;
  readonly vnode: string;
  readonly image: string;
}

/** Can this domain be woken now? */
export function wakeable(w: WakeDomain): boolean {
  return (
    w.wakeOnDemand &&
    !w.backingOff &&
    w.node.reachable &&
    w.domain.state === 'down-bootable' &&
    !w.domain.offline &&
    w.domain.held !== true &&
    (w.domain.image ?? '') !== ''
  );
}

const byVnode = (a: WakeDomain, b: WakeDomain): number => (a.vnode < b.vnode ? -1 : a.vnode > b.vnode ? 1 : 0);

/**
 * The wake-ups for `jobs` (in queue order) over `domains`; `pending` names domains (node/domain)
 * a wake-up was already asked for and whose answer has not yet arrived: they count as booting.
 */
export function planWakes(
  jobs: readonly QueuedJob[],
  domains: readonly WakeDomain[],
  pending: ReadonlySet<string> = new Set(),
): Wake[] {
  const key = (w: WakeDomain): string => `${w.node.name}/${w.domain.name}`;
  // What already covers a waiting job: per image and class, domains booting or accepting now.
  const cover = new Map<string, number>();
  const slot = (image: string, cls: JobClass): string => `${cls}\u0000${image}`;
  // Nodes on which a domain boots (or a wake-up is pending): nothing else boots there now.
  const busyNodes = new Set<string>();
  for (const w of domains) {
    const image = w.domain.image ?? '';
    const booting = w.domain.state === 'booting' || w.domain.state === 'occupied-booting' || pending.has(key(w));
    if (booting) busyNodes.add(w.node.name);
    if (image === '') continue;
    const accepts = domainEligibility(w.node, w.domain).accepts;
    const classes: JobClass[] = booting ? [w.domain.class] : [...accepts];
    for (const cls of classes) cover.set(slot(image, cls), (cover.get(slot(image, cls)) ?? 0) + 1);
  }
  const free = domains.filter((w) => wakeable(w) && !pending.has(key(w))).sort(byVnode);
  const used = new Set<string>();
  const out: Wake[] = [];
  for (const j of jobs) {
    if (j.image === '') continue;
    const s = slot(j.image, j.jobClass);
    const covered = cover.get(s) ?? 0;
    if (covered > 0) {
      cover.set(s, covered - 1);
      continue;
    }
    const w = free.find(
      (x) =>
        !used.has(key(x)) && !busyNodes.has(x.node.name) && x.domain.image === j.image && x.domain.class === j.jobClass,
    );
    if (!w) continue;
    used.add(key(w));
    busyNodes.add(w.node.name);
    out.push({ jobId: j.id, node: w.node.name, domain: w.domain.name, vnode: w.vnode, image: j.image });
  }
  return out;
}
