/** Rendering of status and events for people (tables) and programs (JSON). The only place that prints. */
import type { DomainMessage, NodeMessage, ResetMessage } from '@magrathea/common';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const consoleIo: Io = {
  out: (t) => console.log(t),
  err: (t) => console.error(t),
};

const ms = (v: string | number): string => (Number(v) > 0 ? new Date(Number(v)).toISOString() : '-');

/** The JSON shape of one domain in `status --json` and `watch --json`. */
export function domainJson(d: DomainMessage): Record<string, unknown> {
  return {
    name: d.name,
    class: d.domain_class,
    image: d.image,
    pending_image: d.pending_image,
    state: d.state,
    stored_state: d.stored_state,
    generation: Number(d.generation),
    since: new Date(Number(d.since_ms)).toISOString(),
    since_ms: Number(d.since_ms),
    jobs: d.jobs.map((j) => ({
      id: j.id,
      preemptible: j.preemptible,
      cpus: j.cpus,
      started: new Date(Number(j.started_at_ms)).toISOString(),
      preempted_seconds: j.preempted_seconds,
      suspended: j.suspended,
      preemptions: j.preemptions,
    })),
    cpus_running: d.cpus_running,
    cpus_suspended: d.cpus_suspended,
    cpus_free: d.cpus_free,
    cpus_displaceable: d.cpus_displaceable,
    per_job_suspension: d.per_job_suspension,
    offline: d.offline,
    offline_reason: d.offline_reason,
    flap_count: d.flap_count,
    held_until: Number(d.held_until_ms) > 0 ? new Date(Number(d.held_until_ms)).toISOString() : null,
    down_reason: d.down_reason,
    preempted_cpu_seconds: d.preempted_cpu_seconds,
    preempted_cpu_seconds_total: d.preempted_cpu_seconds_total,
    observed: d.observed
      ? {
          power: d.observed.power,
          memory_bytes: Number(d.observed.memory_bytes),
          cpu_weight: d.observed.cpu_weight,
          cpu_cap: d.observed.cpu_cap ?? 0,
          drift: d.observed.drift,
          detail: d.observed.detail,
        }
      : null,
    lifecycle: d.lifecycle,
    resetting: d.resetting,
    last_reset: d.last_reset
      ? {
          policy: d.last_reset.policy,
          after_job: d.last_reset.after_job,
          at: ms(d.last_reset.at_ms),
          millis: d.last_reset.millis,
          steps: d.last_reset.steps.map((p) => ({ name: p.name, millis: p.millis })),
          kept_for: d.last_reset.kept_for,
          error: d.last_reset.error,
        }
      : null,
    kept_overlays: d.kept_overlays.map((k) => ({ job: k.job_id, file: k.file, bytes: Number(k.bytes) })),
    last_boot: d.last_boot
      ? {
          at: ms(d.last_boot.at_ms),
          millis: d.last_boot.millis,
          steps: d.last_boot.steps.map((p) => ({ name: p.name, millis: p.millis })),
          error: d.last_boot.error,
        }
      : null,
    last_release: d.last_release
      ? {
          mode: d.last_release.mode,
          memory_released_bytes: Number(d.last_release.memory_released_bytes),
          cpu_weight_before: d.last_release.cpu_weight_before,
          cpu_weight_after: d.last_release.cpu_weight_after,
          phases: d.last_release.phases.map((p) => ({ name: p.name, millis: p.millis })),
          outcome: d.last_release.outcome,
          reason: d.last_release.reason,
          steps: d.last_release.steps.map((p) => ({ name: p.name, millis: p.millis })),
          target_bytes: Number(d.last_release.target_bytes),
          balloon_bytes: Number(d.last_release.balloon_bytes),
        }
      : null,
  };
}

export function nodeJson(n: NodeMessage): Record<string, unknown> {
  return {
    node: n.name,
    version: n.version,
    generation: Number(n.generation),
    driver: n.driver,
    host: n.host
      ? {
          memory_total_bytes: Number(n.host.memory_total_bytes),
          memory_available_bytes: Number(n.host.memory_available_bytes),
          load1: n.host.load1,
          cpus: n.host.cpus,
        }
      : null,
    domains: n.domains.map(domainJson),
  };
}

function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)}G`;
  if (n >= 1024 ** 2) return `${Math.round(n / 1024 ** 2)}M`;
  return `${n}B`;
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The markers a status table shows, and what each means (printed under the table when used). */
export const LEGEND: Readonly<Record<string, string>> = {
  '*': 'JOB* a job that may not be preempted (multi-node, a non-preemptible queue, or in a priority domain)',
  offline: 'offline: REASON: taken out by an admin; its jobs continue, no new ones start (domain online D)',
  preempted: 'preempted N cpu-s: CPU-seconds its current jobs have been suspended by priority work',
  suspended: 'suspended J: jobs suspended one by one for priority work (CPU-counting mode); the others run',
  released:
    'released M (mode): what the last preemption took back from it (reclaim short of its target: kept or saved, see domain show)',
  resetting:
    'resetting (policy): cleaning the domain after its job (domains[].lifecycle); it takes no job until it is free',
  reset: 'reset Ns (steps): how long the last per-job reset took, and its steps',
  DRIFT: 'DRIFT: the hypervisor disagrees with the recorded state (see the runbook)',
  HELD: 'HELD: out of scheduling until then, after dropping too often (flap damping)',
  drops: 'N drop(s) recently: times it went down within the flap-damping window',
  down: 'a down domain: why it is down',
  switching: 'magrathea domain set-image: no job starts until the domain is up on this image',
};

/** A reset's steps as `name:ms` (the whole reset is its millis). */
function resetSteps(r: ResetMessage): string {
  return r.steps.map((x) => `${x.name}:${x.millis.toFixed(0)}ms`).join(',');
}

/** The NOTES of a domain, each with the legend key that explains it. */
function notes(d: DomainMessage): { text: string; key: string }[] {
  const n: { text: string; key: string }[] = [];
  if (d.offline) n.push({ text: `offline: ${d.offline_reason || 'no reason given'}`, key: 'offline' });
  if (d.down_reason && (d.stored_state === 'down' || d.stored_state === 'down-bootable'))
    n.push({ text: d.down_reason, key: 'down' });
  if (d.pending_image) n.push({ text: `switching to image ${d.pending_image}`, key: 'switching' });
  // A priority domain's counter is its victims' (for ranking), not its own: never "preempted".
  if (d.domain_class === 'normal' && d.preempted_cpu_seconds > 0)
    n.push({ text: `preempted ${d.preempted_cpu_seconds.toFixed(0)} cpu-s`, key: 'preempted' });
  const suspended = d.jobs.filter((j) => j.suspended).map((j) => j.id);
  if (suspended.length > 0 && d.stored_state !== 'preempted')
    n.push({ text: `suspended ${suspended.join(',')}`, key: 'suspended' });
  if (d.last_release && d.stored_state === 'preempted')
    n.push({
      text: `released ${bytes(Number(d.last_release.memory_released_bytes))} (${d.last_release.mode}${
        d.last_release.outcome && d.last_release.outcome !== 'reached' ? `, ${d.last_release.outcome}` : ''
      })`,
      key: 'released',
    });
  if (d.resetting) n.push({ text: `resetting (${d.lifecycle})`, key: 'resetting' });
  else if (d.last_reset && !d.last_reset.error)
    n.push({ text: `reset ${(d.last_reset.millis / 1000).toFixed(1)}s (${resetSteps(d.last_reset)})`, key: 'reset' });
  if (d.observed?.drift) n.push({ text: `DRIFT: driver sees ${d.observed.power}`, key: 'DRIFT' });
  if (Number(d.held_until_ms) > 0)
    n.push({
      text: `HELD until ${new Date(Number(d.held_until_ms)).toISOString()} (flapping: ${d.flap_count} drops)`,
      key: 'HELD',
    });
  else if (d.flap_count > 0) n.push({ text: `${d.flap_count} drop(s) recently`, key: 'drops' });
  return n;
}

/** Legend lines for the markers in `keys` (in LEGEND's order). */
export function legendLines(keys: ReadonlySet<string>): string[] {
  return Object.entries(LEGEND)
    .filter(([k]) => keys.has(k))
    .map(([, v]) => `  ${v}`);
}

export function statusTable(n: NodeMessage, now = Date.now(), domains: readonly DomainMessage[] = n.domains): string {
  const head =
    `node ${n.name}  generation ${n.generation}  driver ${n.driver}` +
    (n.version ? `  magrathead ${n.version}` : '') +
    (n.host
      ? `  load ${n.host.load1.toFixed(2)}  mem ${bytes(Number(n.host.memory_available_bytes))}/${bytes(Number(n.host.memory_total_bytes))} free`
      : '');
  const rows = [['DOMAIN', 'CLASS', 'IMAGE', 'STATE', 'JOBS', 'SINCE', 'GEN', 'NOTES']];
  const used = new Set<string>();
  for (const d of domains) {
    const jobs = d.jobs.length === 0 ? '-' : d.jobs.map((j) => `${j.id}${j.preemptible ? '' : '*'}`).join(',');
    if (d.jobs.some((j) => !j.preemptible)) used.add('*');
    const ns = notes(d);
    for (const x of ns) used.add(x.key);
    rows.push([
      d.name,
      d.domain_class,
      d.image || '-',
      d.state,
      jobs,
      ago(Number(d.since_ms), now),
      String(d.generation),
      ns.map((x) => x.text).join('; '),
    ]);
  }
  const legend = legendLines(used);
  return `${head}\n${table(rows)}${legend.length ? `\n\n${legend.join('\n')}` : ''}`;
}

/** Pseudo-states `status --state` accepts besides the state names. */
export const PSEUDO_STATES = ['offline', 'held', 'drift'] as const;

/** True when the domain is in one of `states` (reported or stored name, or a pseudo-state). */
export function inStates(d: DomainMessage, states: ReadonlySet<string>): boolean {
  return (
    states.has(d.state) ||
    states.has(d.stored_state) ||
    (states.has('offline') && d.offline) ||
    (states.has('held') && Number(d.held_until_ms) > 0) ||
    (states.has('drift') && d.observed?.drift === true)
  );
}

/**
 * Why a domain cannot take work, in words (empty: it can, or it is busy with jobs as it should
 * be): down, offline, held, preempted, frozen, drifting, or not observable. `pbsnodes -l` /
 * `sinfo -R` for one node.
 */
export function problemsOf(d: DomainMessage, node: NodeMessage): string[] {
  const p: string[] = [];
  if (d.stored_state === 'down' || d.stored_state === 'down-bootable')
    p.push(`down: ${d.down_reason || 'shut down (magrathea domain boot D starts it)'}`);
  if (d.offline) p.push(`offline: ${d.offline_reason || 'no reason given'}`);
  if (Number(d.held_until_ms) > 0)
    p.push(`held until ${new Date(Number(d.held_until_ms)).toISOString()}: flapping (${d.flap_count} drops)`);
  if (d.stored_state === 'preempted') {
    const by = node.domains.filter((x) => x.domain_class === 'priority' && x.jobs.length > 0).map((x) => x.name);
    const jobs = d.jobs.map((j) => j.id).join(', ');
    p.push(`preempted by ${by.join(', ') || 'a priority domain'}: jobs ${jobs || '-'} suspended`);
  }
  if (d.stored_state === 'frozen') p.push('frozen: saved to disk on request (magrathea domain defrost D)');
  if (d.stored_state === 'removed') p.push('removed from the configuration');
  if (d.observed?.drift)
    p.push(`drift: the hypervisor sees ${d.observed.power}${d.observed.detail ? ` (${d.observed.detail})` : ''}`);
  else if (d.observed?.power === 'unknown')
    p.push(`not observable: ${d.observed.detail || 'the hypervisor does not answer'}`);
  return p;
}

/** `status --problems`: one row per domain with a problem, its state and why. */
export function problemsTable(n: NodeMessage, now = Date.now()): string {
  const rows = [['DOMAIN', 'STATE', 'SINCE', 'REASON']];
  for (const d of n.domains) {
    const p = problemsOf(d, n);
    if (p.length > 0) rows.push([d.name, d.state, ago(Number(d.since_ms), now), p.join('; ')]);
  }
  if (rows.length === 1) return `node ${n.name}: no domain is down, offline, held, preempted, frozen or drifting`;
  return `node ${n.name}\n${table(rows)}`;
}

/** `domain show D`: every fact of one domain, `scontrol show node` style (Key=Value, grouped). */
export function domainDetail(n: NodeMessage, d: DomainMessage, now = Date.now()): string {
  const jobs = d.jobs.map(
    (j) =>
      `${j.id}[cpus=${j.cpus} ${j.preemptible ? 'preemptible' : 'non-preemptible'} started=${ms(j.started_at_ms)} ` +
      `preempted=${j.preempted_seconds.toFixed(1)}s${j.suspended ? ' SUSPENDED' : ''}]`,
  );
  const o = d.observed;
  const r = d.last_release;
  const p = problemsOf(d, n);
  return [
    `Domain=${d.name} Node=${n.name} Class=${d.domain_class} Image=${d.image || '-'}${d.pending_image ? ` PendingImage=${d.pending_image}` : ''}`,
    `   State=${d.state} StoredState=${d.stored_state} Generation=${d.generation} Since=${ms(d.since_ms)} (${ago(Number(d.since_ms), now)})`,
    `   Offline=${d.offline ? 'yes' : 'no'} OfflineReason=${d.offline ? d.offline_reason || '(none given)' : '-'}`,
    `   DownReason=${d.down_reason || '-'}`,
    `   Jobs=${jobs.length ? jobs.join(',') : '-'}`,
    d.domain_class === 'normal'
      ? `   PreemptedCpuSeconds=${d.preempted_cpu_seconds.toFixed(1)} (current jobs) ${d.preempted_cpu_seconds_total.toFixed(1)} (lifetime)`
      : `   VictimsPreemptedCpuSeconds=${d.preempted_cpu_seconds.toFixed(1)} (the host's normal domains; used for ranking)`,
    `   Driver=${n.driver} Power=${o?.power ?? '-'} Memory=${o ? bytes(Number(o.memory_bytes)) : '-'} CpuWeight=${o?.cpu_weight ?? '-'} CpuCap=${o?.cpu_cap ? Number(o.cpu_cap.toFixed(2)) : '-'} Drift=${o ? (o.drift ? 'YES' : 'no') : '-'}${o?.detail ? ` Detail="${o.detail}"` : ''}`,
    r
      ? `   LastRelease=${r.mode} Released=${bytes(Number(r.memory_released_bytes))} CpuWeight=${r.cpu_weight_before}->${r.cpu_weight_after} Phases=${r.phases.map((x) => `${x.name}:${x.millis.toFixed(1)}ms`).join(',') || '-'}${
          r.outcome
            ? `\n   Reclaim=${r.outcome} Balloon=${bytes(Number(r.balloon_bytes))}/${bytes(Number(r.target_bytes))} Steps=${r.steps.map((x) => `${x.name}:${x.millis.toFixed(0)}ms`).join(',') || '-'} Reason=${r.reason || '-'}`
            : ''
        }`
      : '   LastRelease=-',
    ...(n.cpu_counting
      ? [
          `   Cpus=${n.cpus} CpusRunning=${d.cpus_running} CpusSuspended=${d.cpus_suspended} CpusFree=${d.cpus_free}` +
            (d.domain_class === 'priority' ? ` CpusDisplaceable=${d.cpus_displaceable}` : '') +
            ` Suspension=${d.per_job_suspension ? 'per-job' : 'whole-domain'}`,
        ]
      : []),
    `   Lifecycle=${d.lifecycle || 'persistent'} Resetting=${d.resetting ? 'yes' : 'no'} KeptOverlays=${d.kept_overlays.map((k) => k.job_id).join(',') || '-'}` +
      (d.last_reset
        ? ` LastReset=${d.last_reset.policy} After=${d.last_reset.after_job} Took=${d.last_reset.millis.toFixed(0)}ms Steps=${resetSteps(d.last_reset) || '-'}${d.last_reset.error ? ` Error="${d.last_reset.error}"` : ''}`
        : ' LastReset=-') +
      (d.last_boot
        ? ` LastBoot=${d.last_boot.millis.toFixed(0)}ms Steps=${resetSteps(d.last_boot) || '-'}${d.last_boot.error ? ` Error="${d.last_boot.error}"` : ''}`
        : ' LastBoot=-'),
    ...(d.wake_on_demand || Number(d.idle_shutdown_ms) > 0
      ? [
          `   WakeOnDemand=${d.wake_on_demand ? 'yes' : 'no'} IdleShutdown=${Number(d.idle_shutdown_ms) > 0 ? `${d.idle_shutdown_ms}ms` : '-'} WakeBackoff=${Number(d.wake_backoff_for_ms) > 0 ? `${d.wake_backoff_for_ms}ms` : '-'}`,
        ]
      : []),
    `   Flaps=${d.flap_count} HeldUntil=${ms(d.held_until_ms)}`,
    `   Problems=${p.length ? p.join('; ') : '-'}`,
  ].join('\n');
}

/** One line for a domain as it is after a change. */
export function changeLine(generation: string, cause: string, d: DomainMessage, atMs: number): string {
  const jobs = d.jobs.length === 0 ? '' : ` jobs=${d.jobs.map((j) => j.id).join(',')}`;
  const stopped = d.jobs.filter((j) => j.suspended).map((j) => j.id);
  const suspended = stopped.length > 0 && d.stored_state !== 'preempted' ? ` suspended=${stopped.join(',')}` : '';
  // The boot that just completed: a reset's, or a plain boot's (the later of the two).
  const r = d.last_reset;
  const b = d.last_boot;
  const done = cause === 'boot-complete' ? (r && (!b || Number(r.at_ms) >= Number(b.at_ms)) ? r : b) : null;
  const label = done?.policy === 'boot' ? 'boot=' : `reset=${done?.policy}:`;
  const reset = d.resetting
    ? ` resetting=${d.lifecycle}`
    : done
      ? ` ${label}${done.millis.toFixed(0)}ms[${resetSteps(done)}]`
      : '';
  return `${new Date(atMs).toISOString()} gen=${generation} ${d.name} ${d.state}${jobs}${suspended}${reset} (${cause})`;
}
