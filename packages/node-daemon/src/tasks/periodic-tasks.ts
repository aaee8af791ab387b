/** Periodic work behind a small interface over node-cron (no overlap; stopped first on shutdown). */
import * as cron from 'node-cron';
import type { Logger } from 'pino';

export interface PeriodicTasks {
  add(name: string, expression: string, run: () => Promise<unknown>): void;
  stop(): Promise<void>;
}

export class CronTasks implements PeriodicTasks {
  private readonly tasks: cron.ScheduledTask[] = [];

  constructor(private readonly logger: Logger) {}

  add(name: string, expression: string, run: () => Promise<unknown>): void {
    const task = cron.schedule(
      expression,
      async () => {
        try {
          await run();
        } catch (err) {
          this.logger.error({ err, task: name }, 'periodic task failed');
        }
      },
      { name, noOverlap: true },
    );
    this.tasks.push(task);
  }

  async stop(): Promise<void> {
    for (const t of this.tasks) {
      await t.stop();
      await t.destroy();
    }
    this.tasks.length = 0;
  }
}
