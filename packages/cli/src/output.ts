/** Rendering of status and events for people (tables) and programs (JSON). The only place that prints. */
import type { DomainMessage, NodeMessage } from '@magrathea/common';

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const consoleIo: Io = {
  out: (t) => console.log(t),
  err: (t) => console.error(t),
};

/** The JSON shape of one domain in `status --json` and `watch --json`. */
export function domainJson(d: DomainMessage): Record<string, unknown> {
  return {
    name: d.name,
    class: d.domain_class,
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
    })),
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
          drift: d.observed.drift,
          detail: d.observed.detail,
        }
      : null,
    last_release: d.last_release
      ? {
          mode: d.last_release.mode,
          memory_released_bytes: Number(d.last_release.memory_released_bytes),
          cpu_weight_before: d.last_release.cpu_weight_before,
          cpu_weight_after: d.last_release.cpu_weight_after,
          phases: d.last_release.phases.map((p) => ({ name: p.name, millis: p.millis })),
        }
      : null,
  };
}

export function nodeJson(n: NodeMessage): Record<string, unknown> {
  return {
    node: n.name,
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

function bytes(n: number): string {
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

function notes(d: DomainMessage): string {
  const n: string[] = [];
  if (d.offline) n.push(`offline: ${d.offline_reason || 'no reason'}`);
  if (d.down_reason && (d.stored_state === 'down' || d.stored_state === 'down-bootable')) n.push(d.down_reason);
  if (d.preempted_cpu_seconds > 0) n.push(`preempted ${d.preempted_cpu_seconds.toFixed(0)} cpu-s`);
  if (d.last_release && d.stored_state === 'preempted') {
    n.push(`released ${bytes(Number(d.last_release.memory_released_bytes))} (${d.last_release.mode})`);
  }
  if (d.observed?.drift) n.push(`DRIFT: driver sees ${d.observed.power}`);
  if (Number(d.held_until_ms) > 0)
    n.push(`HELD until ${new Date(Number(d.held_until_ms)).toISOString()} (flapping: ${d.flap_count} drops)`);
  else if (d.flap_count > 0) n.push(`${d.flap_count} drop(s) recently`);
  return n.join('; ');
}

export function statusTable(n: NodeMessage, now = Date.now()): string {
  const head =
    `node ${n.name}  generation ${n.generation}  driver ${n.driver}` +
    (n.host
      ? `  load ${n.host.load1.toFixed(2)}  mem ${bytes(Number(n.host.memory_available_bytes))}/${bytes(Number(n.host.memory_total_bytes))} free`
      : '');
  const rows = [['DOMAIN', 'CLASS', 'STATE', 'JOBS', 'SINCE', 'GEN', 'NOTES']];
  for (const d of n.domains) {
    const jobs = d.jobs.length === 0 ? '-' : d.jobs.map((j) => `${j.id}${j.preemptible ? '' : '*'}`).join(',');
    rows.push([d.name, d.domain_class, d.state, jobs, ago(Number(d.since_ms), now), String(d.generation), notes(d)]);
  }
  return `${head}\n${table(rows)}`;
}

/** One line for a domain as it is after a change. */
export function changeLine(generation: string, cause: string, d: DomainMessage, atMs: number): string {
  const jobs = d.jobs.length === 0 ? '' : ` jobs=${d.jobs.map((j) => j.id).join(',')}`;
  return `${new Date(atMs).toISOString()} gen=${generation} ${d.name} ${d.state}${jobs} (${cause})`;
}
