/** How status notes and watch lines tell a per-job reset and a boot (domains[].lifecycle). */
import type { DomainMessage, ResetMessage } from '@magrathea/common';
import { changeLine, statusTable } from '../src/output';

const reset = (policy: string, atMs: number, steps: [string, number][], millis: number): ResetMessage => ({
  policy,
  after_job: policy === 'boot' ? '' : 'j1',
  at_ms: String(atMs),
  millis,
  steps: steps.map(([name, ms]) => ({ name, millis: ms })),
  error: '',
  kept_for: '',
});
const domain = (over: Partial<DomainMessage>): DomainMessage =>
  ({
    name: 'grid',
    domain_class: 'normal',
    state: 'free',
    stored_state: 'free',
    generation: '7',
    since_ms: '0',
    jobs: [],
    image: 'sl6',
    lifecycle: 'revert',
    resetting: false,
    last_reset: null,
    last_boot: null,
    kept_overlays: [],
    preempted_cpu_seconds: 0,
    flap_count: 0,
    held_until_ms: '0',
    ...over,
  }) as DomainMessage;
const AT = Date.UTC(2026, 11, 2, 10, 0, 0);

describe('lifecycle in status and watch', () => {
  test('watch: resetting while it runs, then the reset or the boot that completed, with its steps', () => {
    expect(changeLine('8', 'end-job', domain({ state: 'booting', resetting: true }), AT)).toBe(
      '2026-12-02T10:00:00.000Z gen=8 grid booting resetting=revert (end-job)',
    );
    const r = reset(
      'revert',
      AT,
      [
        ['stop', 5],
        ['new-overlay', 3],
        ['restore', 140],
      ],
      151.2,
    );
    const b = reset(
      'boot',
      AT - 60_000,
      [
        ['new-overlay', 2],
        ['boot', 6000],
        ['golden', 400],
      ],
      6402,
    );
    expect(changeLine('9', 'boot-complete', domain({ last_reset: r, last_boot: b }), AT)).toBe(
      '2026-12-02T10:00:00.000Z gen=9 grid free reset=revert:151ms[stop:5ms,new-overlay:3ms,restore:140ms] (boot-complete)',
    );
    // A boot after the last reset is the one that completed.
    const later = reset(
      'boot',
      AT + 1,
      [
        ['new-overlay', 2],
        ['restore', 150],
      ],
      152,
    );
    expect(changeLine('10', 'boot-complete', domain({ last_reset: r, last_boot: later }), AT)).toContain(
      ' boot=152ms[new-overlay:2ms,restore:150ms] (boot-complete)',
    );
    expect(changeLine('11', 'start-job', domain({ last_reset: r }), AT)).not.toContain('reset=');
  });

  test('status: a resetting domain and a reset one are noted, with their legend lines', () => {
    const t = statusTable(
      {
        name: 'n1',
        generation: '9',
        driver: 'qemu',
        version: '',
        host: null,
        domains: [
          domain({ name: 'grid', state: 'booting', stored_state: 'booting', resetting: true }),
          domain({
            name: 'ce',
            last_reset: reset(
              'reboot',
              AT,
              [
                ['stop', 6],
                ['boot', 5900],
              ],
              5930.4,
            ),
          }),
        ],
      } as unknown as Parameters<typeof statusTable>[0],
      AT,
    );
    expect(t).toMatch(/grid .* resetting \(revert\)/);
    expect(t).toMatch(/ce .* reset 5\.9s \(stop:6ms,boot:5900ms\)/);
    expect(t).toContain('resetting (policy): cleaning the domain after its job');
    expect(t).toContain('reset Ns (steps): how long the last per-job reset took');
  });
});
