/**
 * What the filter publishes for a vnode, whether a job may be admitted on vnodes, and which
 * vnodes are the best candidates for a job class. Pure functions over the cluster view.
 */
import { REPORTED_STATES } from '@magrathea/common/states';
import type { Eligibility, JobClass } from '@magrathea/common/rules';
import { eligibility } from '@magrathea/common/rules';

/** Known reported state names (the contract's); anything else from a daemon (e.g. a newer version) accepts nothing. */
export const KNOWN_STATES: ReadonlySet<string> = new Set<string>(REPORTED_STATES);

export interface DomainSnapshot {
  readonly name: string;
  readonly class: JobClass;
  readonly state: string;
  readonly offline: boolean;
  readonly preemptedCpuSeconds: number;
  readonly generation: number;
  /** Held out of scheduling for flapping, as of the snapshot. */
  readonly held?: boolean;
  /** The image the domain runs ('' or absent: none). */
  readonly image?: string;
  /** The image the domain is switching to ('' or absent: none); it accepts nothing meanwhile. */
  readonly pendingImage?: string;
  /** domains[].wakeOnDemand: a down-bootable domain is booted for a queued job of its image. */
  readonly wakeOnDemand?: boolean;
  /** CPU-counting mode: the CPUs a job of this domain may take now; null or absent: exclusive mode. */
  readonly cpusFree?: number | null;
}

export interface NodeSnapshot {
  readonly name: string;
  readonly reachable: boolean;
  readonly generation: number;
  readonly domains: readonly DomainSnapshot[];
}

/** The values written to a PBS vnode. */
export interface VnodeValues {
  /** resources_available.magrathea: normal | priority | none. */
  readonly magrathea: string;
  /** resources_available.magrathea_state: the Magrathea state name, or `unreachable`. */
  readonly state: string;
  readonly rank: number;
  readonly comment: string;
  /** resources_available.magrathea_image ('' : none). */
  readonly image: string;
  /**
   * resources_available.magrathea_cpus: the CPUs a job may take on the vnode now (CPU-counting
   * mode; 0 on a vnode that accepts nothing or whose node is unreachable); null: not published.
   */
  readonly cpus: number | null;
}

export function domainEligibility(node: NodeSnapshot, d: DomainSnapshot): Eligibility {
  if (!KNOWN_STATES.has(d.state)) return { accepts: [], token: 'none', rank: 0, reason: `unknown state ${d.state}` };
  return eligibility({
    class: d.class,
    state: d.state,
    offline: d.offline,
    preemptedCpuSeconds: d.preemptedCpuSeconds,
    reachable: node.reachable,
    held: d.held === true,
    pendingImage: d.pendingImage ?? '',
  });
}

export function vnodeValues(node: NodeSnapshot, d: DomainSnapshot): VnodeValues {
  const e = domainEligibility(node, d);
  const state = !node.reachable ? 'unreachable' : KNOWN_STATES.has(d.state) ? d.state : 'unknown';
  const bootable =
    state === 'down-bootable' && d.wakeOnDemand === true && d.image ? `, boots for image ${d.image}` : '';
  const what = node.reachable ? `${state}${d.offline ? ', offline' : ''}${bootable}` : 'node daemon unreachable';
  return {
    magrathea: e.token,
    state,
    rank: e.rank,
    comment: `magrathea: ${what} (gen ${d.generation})`,
    image: d.image ?? '',
    cpus: d.cpusFree === null || d.cpusFree === undefined ? null : e.token === 'none' ? 0 : d.cpusFree,
  };
}

/** Capacity opens when a vnode goes from accepting nothing to accepting something. */
export function opensCapacity(before: VnodeValues | undefined, after: VnodeValues): boolean {
  return after.magrathea !== 'none' && (before === undefined || before.magrathea === 'none');
}

export interface Placed {
  readonly node: NodeSnapshot;
  readonly domain: DomainSnapshot;
  readonly vnode: string;
}

/** Admission (the runjob hook's check): every vnode must accept the job's class now. */
export function admit(
  jobClass: JobClass,
  placed: readonly (Placed | { readonly vnode: string; readonly missing: true })[],
): { admit: boolean; reasons: string[] } {
  const reasons: string[] = [];
  for (const p of placed) {
    if ('missing' in p) {
      reasons.push(`${p.vnode}: not a Magrathea vnode known to this filter`);
      continue;
    }
    const e = domainEligibility(p.node, p.domain);
    if (!e.accepts.includes(jobClass)) reasons.push(`${p.vnode}: does not accept ${jobClass} jobs now (${e.reason})`);
  }
  return { admit: reasons.length === 0, reasons };
}

/** A placed vnode with its eligibility (`P`: the caller's placement type, kept as it is). */
export type Candidate<P extends Placed = Placed> = P & { readonly eligibility: Eligibility };

/** Vnodes accepting the class, best rank first; ties broken by vnode name for a stable order. */
export function candidates<P extends Placed>(
  jobClass: JobClass,
  placed: readonly P[],
  limit = Infinity,
): Candidate<P>[] {
  return placed
    .map((p) => ({ ...p, eligibility: domainEligibility(p.node, p.domain) }))
    .filter((c) => c.eligibility.accepts.includes(jobClass))
    .sort((a, b) => b.eligibility.rank - a.eligibility.rank || (a.vnode < b.vnode ? -1 : a.vnode > b.vnode ? 1 : 0))
    .slice(0, limit);
}
