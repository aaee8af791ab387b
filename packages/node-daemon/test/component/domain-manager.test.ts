/** DomainManager with the simulated driver, a memory journal and a manual clock. */
import type { NodeEventInput } from '@magrathea/common';
import { DomainManager } from '../../src/engine/domain-manager';
import type { ManagedDomain } from '../../src/engine/domain-manager';
import { ConfigError, RefusedError } from '../../src/errors';
import type { HypervisorDriver } from '../../src/hypervisor/hypervisor-driver';
import { ManualClock, MemoryJournal, memoryLogger, SimulatedDriver } from '../../src/testing';

const DOMAINS: ManagedDomain[] = [
  { name: 'meta', class: 'normal', autostart: true },
  { name: 'egee', class: 'normal', autostart: true },
  { name: 'priv', class: 'priority', autostart: true },
];

async function started(
  opts: { journal?: MemoryJournal; driver?: HypervisorDriver; domains?: ManagedDomain[]; clock?: ManualClock } = {},
) {
  const journal = opts.journal ?? new MemoryJournal();
  const driver = opts.driver ?? new SimulatedDriver({ latencyMs: { boot: 0 } });
  const clock = opts.clock ?? new ManualClock();
  const { logger, lines } = memoryLogger();
  const m = new DomainManager(
    { nodeName: 'n1', domains: opts.domains ?? DOMAINS, snapshotEvery: 1000, eventBacklog: 64 },
    { journal, driver, clock, logger },
  );
  m.recover();
  await m.startDriver();
  await m.settleBoots();
  const events: NodeEventInput[] = [];
  m.hub.subscribe((e) => events.push(e));
  return { m, journal, driver, clock, lines, events };
}

const states = (m: DomainManager) => Object.fromEntries(m.current.domains.map((d) => [d.name, d.state]));

describe('DomainManager', () => {
  test('autostart boots every domain; the driver sees release-before-take order on preemption', async () => {
    const { m, driver } = await started();
    expect(states(m)).toEqual({ meta: 'free', egee: 'free', priv: 'free' });
    const sim = driver as SimulatedDriver;
    sim.log.length = 0;
    await m.execute({
      kind: 'start-job',
      domain: 'meta',
      jobId: 'j1',
      preemptible: true,
      cpus: 1,
      expectedGeneration: 0,
    });
    const o = await m.execute({
      kind: 'start-job',
      domain: 'priv',
      jobId: 'p1',
      preemptible: false,
      cpus: 1,
      expectedGeneration: 0,
    });
    expect(o.result.preempted).toEqual(['meta']);
    expect(sim.log).toEqual([
      { op: 'grow', domain: 'meta' },
      { op: 'preempt', domain: 'meta' },
      { op: 'grow', domain: 'priv' },
    ]);
    expect(o.phases.map((p) => p.name)).toEqual(['preempt:meta', 'grow:priv']);
    sim.log.length = 0;
    await m.execute({ kind: 'end-job', domain: 'priv', jobId: 'p1' });
    expect(sim.log).toEqual([
      { op: 'shrink', domain: 'priv' },
      { op: 'resume', domain: 'meta' },
    ]);
  });

  test('a failing driver operation during a preemption rolls back and refuses; nothing is half-switched', async () => {
    const { m, driver, journal, events } = await started();
    const sim = driver as SimulatedDriver;
    await m.execute({
      kind: 'start-job',
      domain: 'meta',
      jobId: 'j1',
      preemptible: true,
      cpus: 1,
      expectedGeneration: 0,
    });
    const before = m.current;
    sim.failNext('grow', 'priv');
    sim.log.length = 0;
    const nEvents = events.length;
    await expect(
      m.execute({ kind: 'start-job', domain: 'priv', jobId: 'p1', preemptible: false, cpus: 1, expectedGeneration: 0 }),
    ).rejects.toMatchObject({ reason: 'driver-failed' });
    expect(sim.log).toEqual([
      { op: 'preempt', domain: 'meta' },
      { op: 'grow', domain: 'priv' },
      { op: 'resume', domain: 'meta' },
    ]);
    expect(m.current).toBe(before);
    expect(events.length).toBe(nEvents);
    expect(journal.records.at(-1)).toMatchObject({ t: 'abort' });
    expect((await sim.observe('meta')).power).toBe('running');
    // The node still works afterwards.
    const ok = await m.execute({
      kind: 'start-job',
      domain: 'priv',
      jobId: 'p1',
      preemptible: false,
      cpus: 1,
      expectedGeneration: 0,
    });
    expect(ok.result.preempted).toEqual(['meta']);
  });

  test('refusals are typed, journal nothing and publish nothing', async () => {
    const { m, journal, events } = await started();
    await m.execute({
      kind: 'start-job',
      domain: 'priv',
      jobId: 'p1',
      preemptible: false,
      cpus: 1,
      expectedGeneration: 0,
    });
    const n = journal.records.length;
    const e = events.length;
    const err = await m
      .execute({ kind: 'start-job', domain: 'meta', jobId: 'j1', preemptible: true, cpus: 1, expectedGeneration: 0 })
      .catch((x: unknown) => x);
    expect(err).toBeInstanceOf(RefusedError);
    expect((err as RefusedError).reason).toBe('occupied');
    await expect(m.execute({ kind: 'end-job', domain: 'nope', jobId: 'x' })).rejects.toMatchObject({
      code: 'not-found',
    });
    expect(journal.records.length).toBe(n);
    expect(events.length).toBe(e);
  });

  test('boot failure puts the domain down with the driver reason', async () => {
    const driver = new SimulatedDriver({
      latencyMs: { boot: 0 },
      failures: [{ op: 'boot', domain: 'egee', message: 'kernel missing' }],
    });
    const { m } = await started({ driver });
    expect(states(m).egee).toBe('down-bootable');
    expect(m.current.domains[1]!.downReason).toMatch(/kernel missing/);
  });

  test('reconcile: a vanished VM becomes down, its jobs are reported lost, preempted work resumes', async () => {
    const { m, driver, lines, events } = await started();
    const sim = driver as SimulatedDriver;
    await m.execute({
      kind: 'start-job',
      domain: 'meta',
      jobId: 'j1',
      preemptible: true,
      cpus: 1,
      expectedGeneration: 0,
    });
    await m.execute({
      kind: 'start-job',
      domain: 'priv',
      jobId: 'p1',
      preemptible: false,
      cpus: 1,
      expectedGeneration: 0,
    });
    sim.vanish('priv');
    const r = await m.reconcile();
    expect(r.down).toEqual(['priv']);
    expect(states(m)).toEqual({ meta: 'running-preemptible', egee: 'occupied', priv: 'down-bootable' });
    expect(lines.some((l) => l.msg === 'job lost: its domain vanished' && l.jobId === 'p1')).toBe(true);
    expect(events.at(-1)?.change?.cause).toBe('observed-down');
  });

  test('reconcile: a VM paused behind our back is reported as drift and the state is not rewritten', async () => {
    const { m, driver, lines } = await started();
    (driver as SimulatedDriver).pauseBehindBack('egee');
    const before = m.current;
    const r = await m.reconcile();
    expect(r.drift).toEqual(['egee']);
    expect(m.current).toBe(before);
    expect(m.view().domains?.[1]?.observed).toMatchObject({ power: 'paused', drift: true });
    expect(lines.filter((l) => l.msg === 'domain drift: the driver disagrees with the recorded state')).toHaveLength(1);
    await m.reconcile();
    expect(lines.filter((l) => l.msg === 'domain drift: the driver disagrees with the recorded state')).toHaveLength(1);
  });

  test('reconcile: an observation made while a command changed the domain is not a drift (it may predate the change)', async () => {
    const sim = new SimulatedDriver({ latencyMs: { boot: 0 } });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    let observing: () => void = () => undefined;
    const inObserve = new Promise<void>((r) => (observing = r));
    const slow: HypervisorDriver = Object.assign(Object.create(sim) as SimulatedDriver, {
      observe: async (domain: string) => {
        const o = await sim.observe(domain);
        if (domain === 'meta') {
          observing();
          await gate; // the preemption below commits while this observation is on its way
        }
        return o;
      },
    });
    const { m, lines } = await started({ driver: slow });
    await m.execute({
      kind: 'start-job',
      domain: 'meta',
      jobId: 'j1',
      preemptible: true,
      cpus: 1,
      expectedGeneration: 0,
    });
    const pass = m.reconcile();
    await inObserve;
    await m.execute({
      kind: 'start-job',
      domain: 'priv',
      jobId: 'p1',
      preemptible: false,
      cpus: 1,
      expectedGeneration: 0,
    });
    expect(states(m).meta).toBe('preempted');
    release();
    expect((await pass).drift).toEqual([]);
    expect(lines.filter((l) => l.msg === 'domain drift: the driver disagrees with the recorded state')).toEqual([]);
    const again = await m.reconcile(); // observed afresh: it agrees
    expect(again.drift).toEqual([]);
    expect(m.view().domains?.[0]?.observed?.drift).toBe(false);
  });

  test('an operation the driver cannot do is refused with reason unsupported', async () => {
    const sim = new SimulatedDriver({ latencyMs: { boot: 0 } });
    const limited: HypervisorDriver = Object.assign(Object.create(sim) as SimulatedDriver, {
      capabilities: { ...sim.capabilities, save: false },
    });
    const { m } = await started({ driver: limited });
    await m.execute({
      kind: 'start-job',
      domain: 'priv',
      jobId: 'p1',
      preemptible: false,
      cpus: 1,
      expectedGeneration: 0,
    });
    await expect(m.execute({ kind: 'action', domain: 'priv', action: 'freeze', reason: '' })).rejects.toMatchObject({
      reason: 'unsupported',
    });
    expect(states(m).priv).toBe('running');
  });

  test('recovery replays to exactly the acknowledged state; a new config domain is added, a class change with jobs is refused', async () => {
    const journal = new MemoryJournal();
    const clock = new ManualClock();
    const a = await started({ journal, clock });
    await a.m.execute({
      kind: 'start-job',
      domain: 'meta',
      jobId: 'j1',
      preemptible: true,
      cpus: 2,
      expectedGeneration: 0,
    });
    clock.advance(5000);
    await a.m.execute({
      kind: 'start-job',
      domain: 'priv',
      jobId: 'p1',
      preemptible: false,
      cpus: 1,
      expectedGeneration: 0,
    });
    const acknowledged = a.m.current;
    const b = await started({ journal, clock });
    expect(b.m.current).toEqual(acknowledged);
    const c = await started({
      journal,
      clock,
      domains: [...DOMAINS, { name: 'extra', class: 'normal', autostart: false }],
    });
    expect(c.m.current.domains.map((d) => d.name)).toEqual(['meta', 'egee', 'priv', 'extra']);
    expect(c.m.current.domains[3]!.state).toBe('down');
    const swapped = DOMAINS.map((d) => (d.name === 'meta' ? { ...d, class: 'priority' as const } : d));
    await expect(started({ journal, clock, domains: swapped })).rejects.toBeInstanceOf(ConfigError);
  });

  test('watch backlog: resume gives exactly the missed events; too old or future generations get null (snapshot)', async () => {
    const { m } = await started();
    const g0 = m.current.generation;
    await m.execute({
      kind: 'start-job',
      domain: 'meta',
      jobId: 'j1',
      preemptible: true,
      cpus: 1,
      expectedGeneration: 0,
    });
    await m.execute({ kind: 'end-job', domain: 'meta', jobId: 'j1' });
    const missed = m.hub.since(g0, m.current.generation)!;
    expect(missed.map((e) => Number(e.generation))).toEqual([g0 + 1, g0 + 2]);
    expect(m.hub.since(m.current.generation, m.current.generation)).toEqual([]);
    expect(m.hub.since(m.current.generation + 5, m.current.generation)).toBeNull();
  });
});

describe('recovery of a command interrupted by a crash', () => {
  test('the driver operations of an unacknowledged preemption are undone at start', async () => {
    const journal = new MemoryJournal();
    const clock = new ManualClock();
    const a = await started({ journal, clock });
    await a.m.execute({
      kind: 'start-job',
      domain: 'meta',
      jobId: 'j1',
      preemptible: true,
      cpus: 1,
      expectedGeneration: 0,
    });
    // The daemon died after journaling the intent of a priority start and preempting meta.
    const next = Math.max(journal.snapshot?.seq ?? 0, ...journal.records.map((r) => r.seq)) + 1;
    journal.append(
      {
        t: 'intent',
        seq: next,
        cmd: {
          kind: 'start-job',
          domain: 'priv',
          jobId: 'p1',
          preemptible: false,
          cpus: 1,
          expectedGeneration: 0,
          atMs: clock.now(),
        },
      },
      true,
    );
    const sim = new SimulatedDriver({ latencyMs: { boot: 0 } });
    await sim.start(
      a.m.current.domains.map((d) => ({
        name: d.name,
        posture: d.state === 'running-preemptible' ? 'active' : 'idle',
      })),
    );
    await sim.preempt('meta');
    expect((await sim.observe('meta')).power).toBe('throttled');
    sim.log.length = 0;
    const b = await started({ journal, clock, driver: sim });
    expect(sim.log.filter((l) => l.op !== 'observe')).toEqual([
      { op: 'shrink', domain: 'priv' },
      { op: 'resume', domain: 'meta' },
    ]);
    expect((await sim.observe('meta')).power).toBe('running');
    expect(states(b.m)).toEqual({ meta: 'running-preemptible', egee: 'occupied', priv: 'occupied-would-preempt' });
    expect(b.m.current.domains[2]!.jobs).toEqual([]);
  });
});
