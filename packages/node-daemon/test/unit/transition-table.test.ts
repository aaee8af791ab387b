/** Every row of the original Magrathea's transition table (reference §1.4), plus the lifecycle rules. */
import { initialNodeState, reportedState, transition } from '../../src/domain';
import type { Command } from '../../src/domain';
import { apply, bootedNode, end, EGEE, META, PRIV, refusal, start, states } from './core-helpers';

const act = (domain: string, action: string, atMs = 2500): Command =>
  ({ kind: 'action', domain, action, reason: 'test', atMs }) as Command;

describe('two-domain preemption case (N normal, P priority)', () => {
  const idle = bootedNode([META, PRIV]);

  test('idle: free / free', () => {
    expect(states(idle)).toEqual({ meta: 'free', priv: 'free' });
  });

  test('preemptible job in N: running-preemptible / occupied-would-preempt', () => {
    expect(states(apply(idle, start('meta', 'j1', true)))).toEqual({
      meta: 'running-preemptible',
      priv: 'occupied-would-preempt',
    });
  });

  test('non-preemptible job in N: running / occupied', () => {
    expect(states(apply(idle, start('meta', 'j1', false)))).toEqual({ meta: 'running', priv: 'occupied' });
  });

  test('job in P while N running-preemptible: preempted / running (reported running-priority)', () => {
    const s1 = apply(idle, start('meta', 'j1', true));
    const r = transition(s1, start('priv', 'p1'));
    expect(r.ok && r.preempted).toEqual(['meta']);
    const s2 = apply(s1, start('priv', 'p1'));
    expect(states(s2)).toEqual({ meta: 'preempted', priv: 'running' });
    expect(reportedState(s2, s2.domains[1]!)).toBe('running-priority');
    expect(s2.domains[0]!.jobs[0]!.suspendedSinceMs).toBe(2000);
  });

  test('job in P while N free: occupied / running', () => {
    expect(states(apply(idle, start('priv', 'p1')))).toEqual({ meta: 'occupied', priv: 'running' });
  });

  test("P's last job ends: N resumed to running-preemptible / P occupied-would-preempt", () => {
    const s = apply(apply(idle, start('meta', 'j1', true, 1000)), start('priv', 'p1', true, 2000));
    const r = transition(s, end('priv', 'p1', 5000));
    expect(r.ok && r.resumed).toEqual(['meta']);
    const s2 = apply(s, end('priv', 'p1', 5000));
    expect(states(s2)).toEqual({ meta: 'running-preemptible', priv: 'occupied-would-preempt' });
    expect(s2.domains[0]!.jobs[0]!.preemptedMs).toBe(3000);
    expect(s2.domains[0]!.preemptedCpuMsTotal).toBe(3000);
  });

  test("N's last job ends: free / free", () => {
    const s = apply(idle, start('meta', 'j1', true));
    expect(states(apply(s, end('meta', 'j1')))).toEqual({ meta: 'free', priv: 'free' });
  });

  test('start refused in occupied and preempted domains', () => {
    const s = apply(idle, start('priv', 'p1'));
    expect(refusal(transition(s, start('meta', 'j1')))).toBe('occupied');
    const s2 = apply(apply(idle, start('meta', 'j1')), start('priv', 'p1'));
    expect(refusal(transition(s2, start('meta', 'j2')))).toBe('preempted');
  });

  test('a non-preemptible job in a running-preemptible domain makes it running; its end makes it preemptible again', () => {
    const s = apply(apply(idle, start('meta', 'j1', true)), start('meta', 'j2', false));
    expect(states(s)).toEqual({ meta: 'running', priv: 'occupied' });
    expect(states(apply(s, end('meta', 'j2')))).toEqual({
      meta: 'running-preemptible',
      priv: 'occupied-would-preempt',
    });
  });

  test('jobs in priority domains are never preemptible', () => {
    const s = apply(idle, start('priv', 'p1', true));
    expect(s.domains[1]!.jobs[0]!.preemptible).toBe(false);
  });
});

describe('several priority domains and the static two-normal-domain case', () => {
  const PRIV2 = { name: 'priv2', class: 'priority' as const };

  test('all priority domains would-preempt; once one runs the others are occupied', () => {
    const s = apply(bootedNode([META, PRIV, PRIV2]), start('meta', 'j1'));
    expect(states(s)).toEqual({
      meta: 'running-preemptible',
      priv: 'occupied-would-preempt',
      priv2: 'occupied-would-preempt',
    });
    expect(states(apply(s, start('priv', 'p1')))).toEqual({ meta: 'preempted', priv: 'running', priv2: 'occupied' });
  });

  test('EGEE/META: a job in one makes the other occupied, no preemption ever', () => {
    const s = apply(bootedNode([META, EGEE]), start('meta', 'j1'));
    expect(states(s)).toEqual({ meta: 'running-preemptible', egee: 'occupied' });
    expect(refusal(transition(s, start('egee', 'e1')))).toBe('occupied');
  });

  test('preemption takes every running-preemptible domain and only those', () => {
    const s = apply(bootedNode(), start('egee', 'e1'));
    const r = transition(s, start('priv', 'p1'));
    expect(r.ok && r.preempted).toEqual(['egee']);
    expect(states(apply(s, start('priv', 'p1')))).toEqual({ meta: 'occupied', egee: 'preempted', priv: 'running' });
  });
});

describe('lifecycle', () => {
  test('a new node is down-bootable; boot → booting → free', () => {
    const s = initialNodeState([META, PRIV], 0);
    expect(states(s)).toEqual({ meta: 'down-bootable', priv: 'down-bootable' });
    const b = apply(s, act('meta', 'boot'));
    expect(states(b)).toEqual({ meta: 'booting', priv: 'down-bootable' });
    expect(states(apply(b, { kind: 'boot-complete', domain: 'meta', atMs: 3000 }))).toEqual({
      meta: 'free',
      priv: 'down-bootable',
    });
  });

  test('while any domain boots, starts are refused everywhere and idle domains report occupied-booting', () => {
    let s = bootedNode();
    s = apply(s, act('egee', 'reboot'));
    expect(states(s).egee).toBe('booting');
    expect(refusal(transition(s, start('meta', 'j1')))).toBe('booting');
    expect(reportedState(s, s.domains[0]!)).toBe('occupied-booting');
    s = apply(s, { kind: 'boot-complete', domain: 'egee', atMs: 4000 });
    expect(reportedState(s, s.domains[0]!)).toBe('free');
  });

  test('boot is refused while non-preemptible work runs; down domains are then plain down', () => {
    let s = apply(bootedNode(), act('egee', 'down'));
    expect(states(s).egee).toBe('down-bootable');
    s = apply(s, start('meta', 'j1', false));
    expect(states(s).egee).toBe('down');
    expect(refusal(transition(s, act('egee', 'boot')))).toBe('occupied');
  });

  test('boot-failed puts the domain down with the reason', () => {
    const s = apply(apply(bootedNode(), act('egee', 'down')), act('egee', 'boot'));
    const f = apply(s, { kind: 'boot-failed', domain: 'egee', reason: 'kernel not found', atMs: 9 });
    expect(states(f).egee).toBe('down-bootable');
    expect(f.domains[1]!.downReason).toBe('kernel not found');
  });

  test('down and reboot refuse a domain with jobs; remove only from down', () => {
    const s = apply(bootedNode(), start('meta', 'j1'));
    expect(refusal(transition(s, act('meta', 'down')))).toBe('has-jobs');
    expect(refusal(transition(s, act('meta', 'reboot')))).toBe('has-jobs');
    expect(refusal(transition(s, act('egee', 'remove')))).toBe('not-down');
    const r = apply(apply(s, act('egee', 'down')), act('egee', 'remove'));
    expect(states(r).egee).toBe('removed');
    expect(refusal(transition(r, start('egee', 'x')))).toBe('removed');
    expect(refusal(transition(r, act('egee', 'boot')))).toBe('removed');
  });

  test('freeze only a running priority domain; frozen releases the machine to preemptible work only', () => {
    let s = apply(apply(bootedNode(), start('meta', 'j1')), start('priv', 'p1'));
    expect(refusal(transition(s, act('meta', 'freeze')))).toBe('not-priority');
    const fr = transition(s, act('priv', 'freeze'));
    expect(fr.ok && fr.resumed).toEqual(['meta']);
    s = apply(s, act('priv', 'freeze'));
    expect(states(s)).toEqual({ meta: 'running-preemptible', egee: 'occupied', priv: 'frozen' });
    // Non-preemptible jobs are refused anywhere while a frozen domain exists.
    s = apply(s, end('meta', 'j1'));
    expect(refusal(transition(s, start('meta', 'np', false)))).toBe('frozen-exists');
    s = apply(s, start('meta', 'j2', true));
    // Defrost preempts the preemptible work and runs the priority domain again.
    const d = transition(s, act('priv', 'defrost'));
    expect(d.ok && d.preempted).toEqual(['meta']);
    expect(states(apply(s, act('priv', 'defrost')))).toEqual({ meta: 'preempted', egee: 'occupied', priv: 'running' });
  });

  test('offline keeps jobs running but refuses new starts; online lifts it', () => {
    let s = apply(bootedNode(), start('meta', 'j1'));
    s = apply(s, act('meta', 'offline'));
    expect(states(s).meta).toBe('running-preemptible');
    expect(refusal(transition(s, start('meta', 'j2')))).toBe('offline');
    s = apply(s, act('meta', 'online'));
    expect(transition(s, start('meta', 'j2')).ok).toBe(true);
  });

  test('offline again without a reason keeps the earlier reason; a new reason replaces it; online clears it', () => {
    const reason = (n: ReturnType<typeof bootedNode>) => n.domains.find((d) => d.name === 'egee')!.offlineReason;
    const offline = (why: string, atMs: number): Command => ({
      kind: 'action',
      domain: 'egee',
      action: 'offline',
      reason: why,
      atMs,
    });
    let s = apply(bootedNode(), offline('disk check', 2500));
    s = apply(s, offline('', 2600));
    expect(reason(s)).toBe('disk check');
    s = apply(s, offline('RAM test', 2700));
    expect(reason(s)).toBe('RAM test');
    s = apply(s, act('egee', 'online'));
    expect(reason(s)).toBe('');
    expect(reason(apply(s, offline('', 2800)))).toBe('');
  });

  test('a vanished VM goes down, its jobs are reported lost, and preempted work resumes', () => {
    const s = apply(apply(bootedNode(), start('meta', 'j1')), start('priv', 'p1'));
    const r = transition(s, { kind: 'observed-down', domain: 'priv', reason: 'VM vanished', atMs: 7000 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.lostJobs.map((j) => j.id)).toEqual(['p1']);
    expect(r.resumed).toEqual(['meta']);
    expect(states(r.next)).toEqual({ meta: 'running-preemptible', egee: 'occupied', priv: 'down-bootable' });
  });
});

describe('idempotency, fencing and refusals', () => {
  test('StartJob twice is a no-op; EndJob of an unknown job succeeds with a warning', () => {
    const s = apply(bootedNode(), start('meta', 'j1'));
    const again = transition(s, start('meta', 'j1'));
    expect(again.ok && again.noop && again.next).toBe(s);
    const e = transition(s, end('meta', 'nope'));
    expect(e.ok && e.noop).toBe(true);
    expect(e.ok && e.warning).toMatch(/not known/);
  });

  test('a job id running in another domain is refused for start and end', () => {
    const s = apply(bootedNode(), start('meta', 'j1'));
    expect(refusal(transition(s, start('priv', 'j1')))).toBe('job-elsewhere');
    expect(refusal(transition(s, end('priv', 'j1')))).toBe('job-elsewhere');
  });

  test('expected_generation fences a start against a changed domain', () => {
    const s = bootedNode();
    const g = s.domains[0]!.generation;
    const stale: Command = {
      ...(start('meta', 'j1') as Extract<Command, { kind: 'start-job' }>),
      expectedGeneration: g + 5,
    };
    expect(refusal(transition(s, stale))).toBe('stale-generation');
    const fresh: Command = {
      ...(start('meta', 'j1') as Extract<Command, { kind: 'start-job' }>),
      expectedGeneration: g,
    };
    expect(transition(s, fresh).ok).toBe(true);
  });

  test('unknown domain', () => {
    expect(refusal(transition(bootedNode(), start('nope', 'j1')))).toBe('unknown-domain');
  });

  test('generation bumps once per change and only on changed domains; since moves only with the state', () => {
    const s = bootedNode();
    const s1 = apply(s, start('meta', 'j1', true, 5000));
    expect(s1.generation).toBe(s.generation + 1);
    expect(s1.domains.map((d) => d.generation)).toEqual([s1.generation, s1.generation, s1.generation]);
    const s2 = apply(s1, start('meta', 'j2', true, 6000));
    expect(s2.domains[0]!.generation).toBe(s2.generation);
    expect(s2.domains[0]!.sinceMs).toBe(5000);
    expect(s2.domains[1]!.generation).toBe(s1.generation);
  });
});
