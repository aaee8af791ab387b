/** DomainManager in CPU-counting mode: the driver stops single jobs, a failed stop changes nothing, switching modes is checked. */
import { DomainManager } from '../../src/engine/domain-manager';
import type { DomainManagerOptions, ManagedDomain } from '../../src/engine/domain-manager';
import { ConfigError, RefusedError } from '../../src/errors';
import { ManualClock, MemoryJournal, memoryLogger, SimulatedDriver } from '../../src/testing';

const DOMAINS: ManagedDomain[] = [
  { name: 'meta', class: 'normal', autostart: true },
  { name: 'priv', class: 'priority', autostart: true },
];

async function started(
  journal: MemoryJournal,
  driver: SimulatedDriver,
  cpuCounting?: DomainManagerOptions['cpuCounting'],
) {
  const m = new DomainManager(
    {
      nodeName: 'n1',
      domains: DOMAINS,
      snapshotEvery: 1000,
      eventBacklog: 64,
      ...(cpuCounting ? { cpuCounting } : {}),
    },
    { journal, driver, clock: new ManualClock(), logger: memoryLogger().logger },
  );
  m.recover();
  await m.startDriver();
  await m.settleBoots();
  return m;
}

const start = (domain: string, jobId: string, cpus: number, preemptible = true) =>
  ({ kind: 'start-job', domain, jobId, preemptible, cpus, expectedGeneration: 0 }) as const;

describe('DomainManager in CPU-counting mode', () => {
  test('the driver stops exactly the chosen job and continues it; the domain itself is never stopped', async () => {
    const driver = new SimulatedDriver({ latencyMs: { boot: 0 } });
    const m = await started(new MemoryJournal(), driver, { cpus: 4 });
    await m.execute(start('meta', 'a', 2));
    await m.execute(start('meta', 'b', 1));
    driver.log.length = 0;
    const o = await m.execute(start('priv', 'p', 2, false));
    expect(o.result.suspendedJobs).toEqual([{ domain: 'meta', jobId: 'b' }]);
    expect([...driver.stoppedJobs]).toEqual(['meta/b']);
    expect(driver.log.map((l) => l.op)).toEqual(['stop-jobs', 'grow']);
    await m.execute({ kind: 'end-job', domain: 'priv', jobId: 'p' });
    expect([...driver.stoppedJobs]).toEqual([]);
    expect(driver.log.map((l) => l.op)).not.toContain('preempt');
  });

  test("a job's start and end reach the watchers as a change of every domain whose free CPUs it changed", async () => {
    const driver = new SimulatedDriver({ latencyMs: { boot: 0 } });
    const m = await started(new MemoryJournal(), driver, { cpus: 4 });
    const seen: { name: string; free: number }[][] = [];
    m.hub.subscribe((e) => {
      if (e.change) seen.push((e.change.domains ?? []).map((d) => ({ name: d.name ?? '', free: d.cpus_free ?? 0 })));
    });
    await m.execute(start('meta', 'a', 1));
    // priv's own record did not change, but its free CPUs did: it is in the change too.
    expect(seen.pop()).toEqual([
      { name: 'meta', free: 3 },
      { name: 'priv', free: 3 },
    ]);
    await m.execute({ kind: 'end-job', domain: 'meta', jobId: 'a' });
    expect(seen.pop()).toEqual([
      { name: 'meta', free: 4 },
      { name: 'priv', free: 4 },
    ]);
  });

  test('a failure after the stop rolls the stop back (the job continues) and refuses the priority start', async () => {
    const driver = new SimulatedDriver({
      latencyMs: { boot: 0 },
      failures: [{ op: 'grow', domain: 'priv', times: 1 }],
    });
    const m = await started(new MemoryJournal(), driver, { cpus: 2 });
    await m.execute(start('meta', 'a', 2));
    const err = await m.execute(start('priv', 'p', 1, false)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusedError);
    expect([...driver.stoppedJobs]).toEqual([]);
    expect(m.current.domains[0]!.jobs[0]!.suspendedSinceMs).toBeNull();
  });

  test('switching modes: refused while a job is suspended, accepted once it resumed', async () => {
    const journal = new MemoryJournal();
    const driver = new SimulatedDriver({ latencyMs: { boot: 0 } });
    const m = await started(journal, driver, { cpus: 2 });
    await m.execute(start('meta', 'a', 2));
    await m.execute(start('priv', 'p', 1, false));
    await m.drain();
    await expect(started(journal, driver)).rejects.toThrow(ConfigError);
    const again = await started(journal, driver, { cpus: 2 });
    await again.execute({ kind: 'end-job', domain: 'priv', jobId: 'p' });
    await again.drain();
    const exclusive = await started(journal, driver);
    expect(exclusive.current.cpuCounting).toBeUndefined();
    expect(exclusive.current.domains[0]!.state).toBe('running-preemptible');
  });
});
