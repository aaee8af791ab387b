/**
 * Victim selection of partial preemption (CPU-counting mode), pure.
 *
 * A priority job that needs `need` CPUs more than are free suspends a set of victim units (a
 * job, or a whole domain whose driver cannot stop one job alone) whose CPUs cover the need.
 * Of all covering sets the one chosen is the cheapest by, in this order:
 *   1. waste: CPUs suspended beyond the need;
 *   2. rank: the sum of the units' anti-starvation ranks (how often their jobs were suspended
 *      before), so the least-preempted jobs go first;
 *   3. count: fewer units.
 * The three are additive, so a 0/1 knapsack over exact CPU sums finds the optimum in
 * O(units × (need + largest unit)) time.
 */

export interface VictimUnit {
  readonly domain: string;
  /** The jobs suspended together (one, or every job of a domain suspended whole). */
  readonly jobs: readonly string[];
  readonly cpus: number;
  /** Anti-starvation rank: times the unit's jobs have been suspended before (lower goes first). */
  readonly rank: number;
}

/** The cost of a choice, compared lexicographically. */
export interface VictimCost {
  readonly waste: number;
  readonly rank: number;
  readonly count: number;
}

export interface VictimChoice {
  readonly units: readonly VictimUnit[];
  readonly cpus: number;
  readonly cost: VictimCost;
}

/** Negative when `a` is cheaper than `b`. */
export function compareCost(a: VictimCost, b: VictimCost): number {
  return a.waste - b.waste || a.rank - b.rank || a.count - b.count;
}

/** The cost of suspending `units` for `need` CPUs, or null when they do not cover it. */
export function costOf(units: readonly VictimUnit[], need: number): VictimCost | null {
  const cpus = units.reduce((s, u) => s + u.cpus, 0);
  if (cpus < need) return null;
  return { waste: cpus - need, rank: units.reduce((s, u) => s + u.rank, 0), count: units.length };
}

/** A deterministic order of candidates, so equal-cost ties always fall the same way. */
function byKey(a: VictimUnit, b: VictimUnit): number {
  return (
    a.rank - b.rank ||
    a.cpus - b.cpus ||
    (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0) ||
    ((a.jobs[0] ?? '') < (b.jobs[0] ?? '') ? -1 : (a.jobs[0] ?? '') > (b.jobs[0] ?? '') ? 1 : 0)
  );
}

/**
 * The cheapest set of units covering `need` CPUs (an empty set for need ≤ 0), or null when
 * even all of them do not cover it.
 */
export function chooseVictims(candidates: readonly VictimUnit[], need: number): VictimChoice | null {
  if (need <= 0) return { units: [], cpus: 0, cost: { waste: 0, rank: 0, count: 0 } };
  const units = candidates.filter((u) => u.cpus > 0).sort(byKey);
  const total = units.reduce((s, u) => s + u.cpus, 0);
  if (total < need) return null;
  // A covering set of at least need + largest CPUs has a unit whose removal still covers the
  // need with less waste: no optimum reaches that far.
  const largest = units.reduce((m, u) => Math.max(m, u.cpus), 0);
  const cap = Math.min(total, need + largest - 1);
  // best[t]: the cheapest (rank, count) of a set of exactly t CPUs; take[i][t]: unit i is in it at stage i.
  const rank = new Float64Array(cap + 1).fill(Infinity);
  const count = new Float64Array(cap + 1).fill(Infinity);
  rank[0] = 0;
  count[0] = 0;
  const take = units.map(() => new Uint8Array(cap + 1));
  units.forEach((u, i) => {
    const row = take[i] as Uint8Array;
    for (let t = cap; t >= u.cpus; t--) {
      const r = (rank[t - u.cpus] as number) + u.rank;
      const c = (count[t - u.cpus] as number) + 1;
      if (r < (rank[t] as number) || (r === rank[t] && c < (count[t] as number))) {
        rank[t] = r;
        count[t] = c;
        row[t] = 1;
      }
    }
  });
  let t = need;
  while (t <= cap && rank[t] === Infinity) t++;
  if (t > cap) return null;
  const chosen: VictimUnit[] = [];
  let rest = t;
  for (let i = units.length - 1; i >= 0 && rest > 0; i--) {
    if ((take[i] as Uint8Array)[rest] === 1) {
      const u = units[i] as VictimUnit;
      chosen.push(u);
      rest -= u.cpus;
    }
  }
  chosen.reverse();
  return { units: chosen, cpus: t, cost: { waste: t - need, rank: rank[t] as number, count: chosen.length } };
}
