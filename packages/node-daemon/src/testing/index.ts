/** Test helpers shared across packages: fakes that implement the real interfaces. */
import type { Logger } from 'pino';
import { createLogger } from '@magrathea/common';
import type { Clock } from '../engine/domain-manager';
import type { HostMetrics } from '../metrics/host-metrics';
import type { PeriodicTasks, Schedule } from '../tasks/periodic-tasks';
import type { HostSample } from '../engine/view';

export { MemoryJournal } from '../journal/memory-journal';
export { SimulatedDriver } from '../hypervisor/simulated/simulated-driver';

/** A clock the test moves by hand: `advance` moves both times, `stepWall` only the wall clock (a clock step). */
export class ManualClock implements Clock {
  /** Monotonic time, ms. */
  mono = 0;
  constructor(public ms = 1_700_000_000_000) {}
  now(): number {
    return this.ms;
  }
  readonly monotonicMs = (): number => this.mono;
  advance(ms: number): void {
    this.ms += ms;
    this.mono += ms;
  }
  stepWall(ms: number): void {
    this.ms += ms;
  }
}

/** Host metrics with a fixed sample (no systeminformation calls in unit tests). */
export class FixedHostMetrics implements HostMetrics {
  private readonly sample: HostSample = {
    memoryTotalBytes: 8 * 1024 ** 3,
    memoryAvailableBytes: 4 * 1024 ** 3,
    load1: 0.5,
    cpus: 2,
    sampledAtMs: 0,
  };
  latest(): HostSample {
    return this.sample;
  }
  refresh(): Promise<HostSample> {
    return Promise.resolve(this.sample);
  }
}

/** Periodic tasks that never fire by themselves: tests call `runAll()`. */
export class ManualTasks implements PeriodicTasks {
  readonly tasks = new Map<string, () => Promise<unknown>>();
  add(name: string, _schedule: Schedule, run: () => Promise<unknown>): void {
    this.tasks.set(name, run);
  }
  async runAll(): Promise<void> {
    for (const t of this.tasks.values()) await t();
  }
  stop(): Promise<void> {
    this.tasks.clear();
    return Promise.resolve();
  }
}

/** A logger (the binaries' factory, redaction included) that keeps every line in memory (`lines`), for asserting on logs. */
export function memoryLogger(level = 'debug'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    service: 'test',
    level,
    destination: { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) },
  });
  return { logger, lines };
}
