/**
 * The engine side of per-job lifecycles, with a driver that records its resets (the simulated
 * driver plus `reset`), a memory journal and a manual clock: the end of a revert domain's last
 * job answers at once and starts the reset in the background; the reset is in the journal, so a
 * daemon restarted in the middle runs it again; the view and the observer get its steps.
 */
import { DomainManager } from '../../src/engine/domain-manager';
import type { ManagedDomain, ResetInfo } from '../../src/engine/domain-manager';
import type { DriverStep } from '../../src/hypervisor/hypervisor-driver';
import type { ResetRecord } from '../../src/domain';
import { FailureLimiter } from '@magrathea/common';
import { DaemonMetrics } from '../../src/metrics/daemon-metrics';
import { ManualClock, MemoryJournal, memoryLogger, SimulatedDriver } from '../../src/testing';

/** The simulated driver with a reset that can be held until released. */
class ResettingDriver extends SimulatedDriver {
  readonly resets: { domain: string; r: ResetRecord }[] = [];
  hold: Promise<void> | null = null;
  fail = false;
  async reset(domain: string, r: ResetRecord): Promise<readonly DriverStep[]> {
    this.resets.push({ domain, r });
    if (this.hold) await this.hold;
    if (this.fail) throw new Error('the golden state does not restore');
    return [
      { name: 'stop', millis: 1 },
      // As with keepFailed: 1, the failed job's overlay is kept.
      { name: r.keepFor ? 'keep-overlay' : 'new-overlay', millis: 2 },
      { name: 'restore', millis: 3 },
    ];
  }
}

const DOMAINS: ManagedDomain[] = [
  { name: 'grid', class: 'normal', autostart: true, lifecycle: 'revert' },
  { name: 'meta', class: 'normal', autostart: true },
];

async function started(journal = new MemoryJournal(), driver = new ResettingDriver({ latencyMs: { boot: 0 } })) {
  const seen: (ResetInfo & { domain: string })[] = [];
  const m = new DomainManager(
    { nodeName: 'n1', domains: DOMAINS, snapshotEvery: 1000, eventBacklog: 64 },
    {
      journal,
      driver,
      clock: new ManualClock(),
      logger: memoryLogger().logger,
      onReset: (domain, r) => seen.push({ ...r, domain }),
    },
  );
  m.recover();
  await m.startDriver();
  await m.settleBoots();
  return { m, journal, driver, seen };
}
/** The resets among what the observer heard (boots are there too, as policy boot). */
const resets = <T extends ResetInfo>(xs: readonly T[]) => xs.filter((r) => r.policy !== 'boot');
const dom = (m: DomainManager, name: string) => m.view().domains!.find((d) => d.name === name)!;
const startJob = (m: DomainManager, domain: string, jobId: string) =>
  m.execute({ kind: 'start-job', domain, jobId, preemptible: true, cpus: 1, expectedGeneration: 0 });

describe('per-job lifecycle in the engine', () => {
  test('end of the last job: booting and resetting at once, then free with the reset in the view', async () => {
    const { m, driver, seen } = await started();
    await startJob(m, 'grid', 'j1');
    let release!: () => void;
    driver.hold = new Promise((r) => (release = r));
    const o = await m.execute({ kind: 'end-job', domain: 'grid', jobId: 'j1', exitStatus: 4 });
    expect(o.state).toBe('booting');
    expect(dom(m, 'grid')).toEqual(expect.objectContaining({ state: 'booting', resetting: true, lifecycle: 'revert' }));
    expect(dom(m, 'meta').state).toBe('occupied-booting');
    await expect(startJob(m, 'meta', 'm1')).rejects.toThrow(/booting/);
    release();
    await m.settleBoots();
    expect(driver.resets).toEqual([{ domain: 'grid', r: { policy: 'revert', afterJob: 'j1', keepFor: 'j1' } }]);
    const v = dom(m, 'grid');
    expect(v.state).toBe('free');
    expect(v.resetting).toBe(false);
    expect(v.last_reset).toEqual(
      expect.objectContaining({ policy: 'revert', after_job: 'j1', kept_for: 'j1', error: '' }),
    );
    expect(resets(seen).map((r) => r.steps.map((s) => s.name))).toEqual([['stop', 'keep-overlay', 'restore']]);
    // A persistent domain does not reset.
    await startJob(m, 'meta', 'm1');
    expect((await m.execute({ kind: 'end-job', domain: 'meta', jobId: 'm1' })).state).toBe('free');
    expect(driver.resets).toHaveLength(1);
  });

  test('a restart in the middle of a reset replays to booting and runs the reset again', async () => {
    const journal = new MemoryJournal();
    const first = await started(journal);
    await startJob(first.m, 'grid', 'j1');
    first.driver.hold = new Promise(() => undefined); // the daemon "dies" during the reset
    await first.m.execute({ kind: 'end-job', domain: 'grid', jobId: 'j1' });
    expect(first.driver.resets).toHaveLength(1);
    const again = await started(journal);
    expect(again.driver.resets).toEqual([{ domain: 'grid', r: { policy: 'revert', afterJob: 'j1', keepFor: '' } }]);
    expect(dom(again.m, 'grid').state).toBe('free');
    expect(dom(again.m, 'grid').jobs).toEqual([]);
  });

  test('a failing reset puts the domain down with the reason, and the observer hears of it', async () => {
    const { m, driver, seen } = await started();
    await startJob(m, 'grid', 'j1');
    driver.fail = true;
    await m.execute({ kind: 'end-job', domain: 'grid', jobId: 'j1' });
    await m.settleBoots();
    const v = dom(m, 'grid');
    expect(v.state).toMatch(/^down/);
    expect(v.down_reason).toBe('reset failed: the golden state does not restore');
    expect(v.last_reset?.error).toBe('the golden state does not restore');
    expect(resets(seen).map((r) => r.error)).toEqual(['the golden state does not restore']);
  });

  test('metrics: each step and the whole reset in a histogram by domain and policy, resets counted by outcome', async () => {
    const { m, driver, seen } = await started();
    const metrics = new DaemonMetrics({
      nodeName: 'n1',
      manager: m,
      grpcAuth: () => ({ failures: 0, delayed: 0 }),
      connectionsRefused: () => ({ grpc: 0, hook: 0 }),
      slowWatchersCut: () => 0,
      hookAuth: new FailureLimiter(20, 60_000),
      watchStreams: () => 0,
      host: () => null,
    });
    for (const id of ['a', 'b']) {
      await startJob(m, 'grid', id);
      await m.execute({ kind: 'end-job', domain: 'grid', jobId: id });
      await m.settleBoots();
    }
    driver.fail = true;
    await startJob(m, 'grid', 'c');
    await m.execute({ kind: 'end-job', domain: 'grid', jobId: 'c' });
    await m.settleBoots();
    for (const r of seen) metrics.domainReset(r.domain, r);
    const text = await metrics.text();
    expect(text).toMatch(/^magrathea_reset_phase_seconds_count\{domain="grid",policy="revert",step="restore"\} 2$/m);
    expect(text).toMatch(/^magrathea_reset_phase_seconds_count\{domain="grid",policy="revert",step="total"\} 2$/m);
    expect(text).toMatch(/^magrathea_resets_total\{domain="grid",policy="revert",outcome="ok"\} 2$/m);
    expect(text).toMatch(/^magrathea_resets_total\{domain="grid",policy="revert",outcome="failed"\} 1$/m);
    // The boots at start (the simulated driver has no steps of its own: the whole boot).
    expect(dom(m, 'meta').last_boot).toEqual(
      expect.objectContaining({
        policy: 'boot',
        after_job: '',
        error: '',
        steps: [expect.objectContaining({ name: 'boot' })],
      }),
    );
    expect(seen.filter((r) => r.policy === 'boot')).toHaveLength(2);
    expect(text).toMatch(/^magrathea_boot_phase_seconds_count\{domain="meta",step="total"\} 1$/m);
    expect(text).toMatch(/^magrathea_boots_total\{domain="grid",outcome="ok"\} 1$/m);
  });
});
