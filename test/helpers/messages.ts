/** Whole magrathea.v1 messages for tests that play a node daemon (every field set). */
import type { DomainInput, JobInput, NodeEventInput } from '@magrathea/common';

/** A whole Domain message (every field set), with `extra` over it. */
export function domainMsg(name: string, state: string, gen: number, extra: Partial<DomainInput> = {}): DomainInput {
  return {
    name,
    domain_class: 'normal',
    state,
    stored_state: state,
    generation: String(gen),
    since_ms: '0',
    jobs: [],
    offline: false,
    offline_reason: '',
    preempted_cpu_seconds: 0,
    preempted_cpu_seconds_total: 0,
    observed: null,
    down_reason: '',
    last_release: null,
    flap_count: 0,
    held_until_ms: '0',
    held_for_ms: '0',
    jobs_omitted: false,
    job_count: 0,
    image: '',
    ...extra,
  };
}

/** A snapshot event of node `name`. */
export const snapshotOf = (name: string, gen: number, domains: DomainInput[]): NodeEventInput => ({
  generation: String(gen),
  snapshot: { name, generation: String(gen), driver: 'simulated', reported_at_ms: '0', host: null, domains },
});

/** A job as a daemon reports it. */
export const jobMsg = (id: string, suspended = false): JobInput => ({
  id,
  preemptible: true,
  cpus: 1,
  started_at_ms: '0',
  preempted_seconds: 0,
  suspended,
});
