/** A Domain message as a node daemon sends it (every field set), for tests of the filter's view. */
export function domainMessage(
  name: string,
  state: string,
  gen: number,
  cls = 'normal',
  extra: Record<string, unknown> = {},
) {
  return {
    name,
    domain_class: cls,
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
    image: '',
    ...extra,
  };
}
