/** Wake on demand in DomainManager: idle shutdown, the filter's wake-up rule and a failed boot's back-off (simulated driver). */
import { DomainManager } from '../../src/engine/domain-manager';
import type { ManagedDomain } from '../../src/engine/domain-manager';
import { transition } from '../../src/domain';
import { ManualClock, MemoryJournal, memoryLogger, SimulatedDriver } from '../../src/testing';

const DOMAINS: ManagedDomain[] = [
  {
    name: 'wk',
    class: 'normal',
    autostart: false,
    image: 'centos',
    wakeOnDemand: true,
    idleShutdownMs: 10_000,
    bootBackoffMs: 30_000,
  },
  { name: 'other', class: 'normal', autostart: false },
];

async function started(journal = new MemoryJournal(), domains = DOMAINS) {
  const driver = new SimulatedDriver({ latencyMs: { boot: 0 } });
  const clock = new ManualClock();
  const { logger, lines } = memoryLogger();
  const m = new DomainManager(
    { nodeName: 'n1', domains, snapshotEvery: 1000, eventBacklog: 64 },
    { journal, driver, clock, logger },
  );
  m.recover();
  await m.startDriver();
  await m.settleBoots();
  return { m, driver, clock, lines, journal };
}

const stateOf = (m: DomainManager, name: string) => m.current.domains.find((d) => d.name === name);
const wire = (m: DomainManager, name: string) => (m.view().domains ?? []).find((d) => d.name === name);
const startJob = (m: DomainManager, domain: string, jobId: string) =>
  m.execute({ kind: 'start-job', domain, jobId, preemptible: true, cpus: 1, expectedGeneration: 0 });
const boot = (m: DomainManager, domain: string) =>
  m.execute({ kind: 'action', domain, action: 'boot', reason: 'wake on demand: job 1.s asks for image centos' });

describe('wake on demand (DomainManager)', () => {
  test('a wake-on-demand domain is reported as such; only a down-bootable one may be woken by the filter', async () => {
    const { m } = await started();
    expect(wire(m, 'wk')).toEqual(
      expect.objectContaining({ wake_on_demand: true, wake_backoff_for_ms: 0, idle_shutdown_ms: 10000 }),
    );
    expect(wire(m, 'other')?.wake_on_demand).toBe(false);
    expect(m.wakeRefusal('wk')).toBeNull();
    expect(m.wakeRefusal('other')).toMatch(/not woken on demand/);
    expect(m.wakeRefusal('nope')).toMatch(/no domain named nope/);
    await boot(m, 'wk');
    await m.settleBoots();
    expect(stateOf(m, 'wk')?.state).toBe('free');
    expect(m.wakeRefusal('wk')).toMatch(/is free, not down-bootable/);
    expect(wire(m, 'wk')?.last_boot?.policy).toBe('boot');
  });

  test('an idle domain goes down after idleShutdownMs with no job; a job restarts the idle time', async () => {
    const { m, clock, lines } = await started();
    await boot(m, 'wk');
    await m.settleBoots();
    expect(await m.shutDownIdle()).toEqual([]); // first seen idle now
    clock.advance(9_000);
    expect(await m.shutDownIdle()).toEqual([]);
    // A job that starts and ends between two checks restarts the idle time.
    await startJob(m, 'wk', 'j1');
    await m.execute({ kind: 'end-job', domain: 'wk', jobId: 'j1' });
    clock.advance(2_000);
    expect(await m.shutDownIdle()).toEqual([]);
    clock.advance(9_999);
    expect(await m.shutDownIdle()).toEqual([]);
    clock.advance(1);
    expect(await m.shutDownIdle()).toEqual(['wk']);
    const d = stateOf(m, 'wk');
    expect(d?.state).toBe('down-bootable');
    expect(d?.downReason).toMatch(/^idle: no job for 10 s \(idleShutdownMs 10000\)$/);
    expect(m.wakeRefusal('wk')).toBeNull(); // woken again by the next job of its image
    expect(lines.some((l) => l.msg === 'idle domain shut down' && l.domain === 'wk')).toBe(true);
  });

  test('a domain with a job, or one without idleShutdownMs, is never taken down for idleness', async () => {
    const { m, clock } = await started();
    await boot(m, 'wk');
    await boot(m, 'other');
    await m.settleBoots();
    await startJob(m, 'wk', 'j1');
    await m.shutDownIdle();
    clock.advance(3_600_000);
    expect(await m.shutDownIdle()).toEqual([]);
    expect(stateOf(m, 'wk')?.state).toBe('running-preemptible');
    expect(stateOf(m, 'other')?.state).toBe('occupied');
  });

  test('the idle-down command changes nothing for a domain with a job, a down one or an offline one', () => {
    const base = {
      generation: 1,
      domains: [
        {
          name: 'wk',
          class: 'normal' as const,
          state: 'running-preemptible' as const,
          generation: 1,
          sinceMs: 0,
          jobs: [{ id: 'j', preemptible: true, cpus: 1, startedMs: 0, preemptedMs: 0, suspendedSinceMs: null }],
          offline: false,
          offlineReason: '',
          preemptedCpuMsTotal: 0,
          downReason: '',
          rebooting: false,
        },
      ],
    };
    const cmd = { kind: 'idle-down' as const, domain: 'wk', atMs: 5, reason: 'x' };
    const withJob = transition(base, cmd);
    expect(withJob.ok && withJob.noop).toBe(true);
    const down = transition({ ...base, domains: [{ ...base.domains[0]!, jobs: [], state: 'down-bootable' }] }, cmd);
    expect(down.ok && down.noop).toBe(true);
    const offline = transition(
      { ...base, domains: [{ ...base.domains[0]!, jobs: [], state: 'free', offline: true }] },
      cmd,
    );
    expect(offline.ok && offline.noop).toBe(true);
    const idle = transition({ ...base, domains: [{ ...base.domains[0]!, jobs: [], state: 'free' }] }, cmd);
    expect(idle.ok && !idle.noop && idle.next.domains[0]).toEqual(
      expect.objectContaining({ state: 'down-bootable', downReason: 'idle: x' }),
    );
  });

  test('a failed boot puts the domain down with the reason and holds it from wake-ups for bootBackoffMs', async () => {
    const { m, driver, clock } = await started();
    driver.failNext('boot', 'wk', 1, 'no disk');
    await boot(m, 'wk');
    await m.settleBoots();
    const d = stateOf(m, 'wk');
    expect(d?.state).toBe('down-bootable');
    expect(d?.downReason).toMatch(/^boot failed: .*no disk$/);
    expect(wire(m, 'wk')?.last_boot?.error).toMatch(/no disk$/);
    expect(Number(wire(m, 'wk')?.wake_backoff_for_ms)).toBe(30_000);
    expect(m.wakeRefusal('wk')).toMatch(/failed to boot; not woken for another 30000 ms/);
    clock.advance(29_999);
    expect(m.wakeRefusal('wk')).toMatch(/another 1 ms/);
    clock.advance(1);
    expect(m.wakeRefusal('wk')).toBeNull();
    expect(wire(m, 'wk')?.wake_backoff_for_ms).toBe(0);
    // The next boot succeeds: no back-off left over.
    await boot(m, 'wk');
    await m.settleBoots();
    expect(stateOf(m, 'wk')?.state).toBe('free');
    expect(wire(m, 'wk')?.wake_backoff_for_ms).toBe(0);
  });

  test('an idle shutdown is journalled: a restart finds the domain down and does not autostart it', async () => {
    const journal = new MemoryJournal();
    const a = await started(journal);
    await boot(a.m, 'wk');
    await a.m.settleBoots();
    await a.m.shutDownIdle();
    a.clock.advance(10_000);
    expect(await a.m.shutDownIdle()).toEqual(['wk']);
    // Even with autostart: an idle domain waits for a job of its image.
    const b = await started(
      journal,
      DOMAINS.map((d) => (d.name === 'wk' ? { ...d, autostart: true } : d)),
    );
    expect(stateOf(b.m, 'wk')).toEqual(expect.objectContaining({ state: 'down-bootable' }));
    expect(stateOf(b.m, 'wk')?.downReason).toMatch(/^idle: /);
  });
});
