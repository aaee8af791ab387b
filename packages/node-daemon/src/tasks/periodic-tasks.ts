/**
 * Periodic work (no overlap; stopped first on shutdown). A task runs at a fixed interval (the
 * defaults) or on a cron expression (node-cron syntax, with seconds) the config gives; the
 * waiting is done here on monotonic timers: the time to a cron schedule's next slot is never
 * more than its longest gap, nor less than half its shortest, so a wall clock stepped back an
 * hour cannot stop reconciliation for an hour, and one stepped forward cannot make it run in a
 * burst. node-cron is loaded only when a cron schedule is added (not held at idle otherwise:
 * issue 15, the daemon's footprint).
 */
import type * as NodeCron from 'node-cron';
import type { ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';

/** When a task runs: on a cron expression (with seconds), or every `everyMs` after the last run ended. */
export type Schedule = { readonly cron: string } | { readonly everyMs: number };

export interface PeriodicTasks {
  add(name: string, schedule: Schedule, run: () => Promise<unknown>): void;
  stop(): Promise<void>;
}

/** node-cron, on first use. */
export function nodeCron(): typeof NodeCron {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on use, see above
  return require('node-cron') as typeof NodeCron;
}

/** Slots looked ahead to learn a schedule's gaps. */
const LOOKAHEAD = 64;

interface Task {
  timer: NodeJS.Timeout | null;
  running: Promise<void> | null;
  readonly plan: ScheduledTask | null;
}

export class CronTasks implements PeriodicTasks {
  private readonly tasks: Task[] = [];
  private stopped = false;

  constructor(private readonly logger: Logger) {}

  add(name: string, schedule: Schedule, run: () => Promise<unknown>): void {
    // A task that is never started: node-cron only computes its slots.
    const plan = 'cron' in schedule ? nodeCron().createTask(schedule.cron, () => undefined, { name }) : null;
    const slots = plan ? plan.getNextRuns(LOOKAHEAD).map((d) => d.getTime()) : [];
    let shortest = Infinity;
    let longest = 'everyMs' in schedule ? schedule.everyMs : 1000;
    for (let i = 1; i < slots.length; i++) {
      const gap = (slots[i] as number) - (slots[i - 1] as number);
      shortest = Math.min(shortest, gap);
      longest = Math.max(longest, gap);
    }
    const minWait = Number.isFinite(shortest) ? shortest / 2 : 0;
    const task: Task = { timer: null, running: null, plan };
    const arm = (): void => {
      if (this.stopped) return;
      const next = plan?.getNextRuns(1)[0]?.getTime() ?? Date.now() + longest;
      const wait = Math.min(Math.max(next - Date.now(), minWait), longest);
      task.timer = setTimeout(fire, wait);
      task.timer.unref();
    };
    const fire = (): void => {
      task.timer = null;
      const t0 = performance.now();
      task.running = run()
        .then(
          () => this.logger.debug({ task: name, ms: Math.round(performance.now() - t0) }, 'periodic task ran'),
          (err: unknown) => this.logger.error({ err, task: name }, 'periodic task failed'),
        )
        .finally(() => {
          task.running = null;
          arm();
        });
    };
    this.tasks.push(task);
    arm();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.tasks) {
      if (t.timer) clearTimeout(t.timer);
      t.timer = null;
      await t.running;
      await t.plan?.destroy();
    }
    this.tasks.length = 0;
  }
}
