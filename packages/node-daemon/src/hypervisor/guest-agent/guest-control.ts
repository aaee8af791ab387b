/**
 * The operations a driver (or the per-job suspension of issue #16) runs inside a guest, over
 * one guest agent session. Each one fails with a clear message: the agent's, the script's
 * output, or the time limit.
 */
import type { GuestAgent } from './agent-client';
import type { GuestMemInfo, JobSelector } from './guest-commands';
import {
  DROP_CACHES_SCRIPT,
  MEMINFO_SCRIPT,
  parseMemInfo,
  parseSignalled,
  signalJobsScript,
  SWAP_OFF_SCRIPT,
  SWAP_ON_SCRIPT,
} from './guest-commands';

export class GuestControl {
  constructor(
    private readonly agent: GuestAgent,
    /** Time limit of each command, ms. */
    private readonly timeoutMs: number,
  ) {}

  private async run(what: string, script: string, timeoutMs = this.timeoutMs): Promise<string> {
    const r = await this.agent.exec(script, timeoutMs);
    if (r.exitCode !== 0)
      throw new Error(
        `${what} failed in the guest (exit ${r.exitCode}): ${r.output.trim().slice(0, 300) || 'no output'}`,
      );
    return r.output;
  }

  /** SIGSTOP to the selected jobs; resolves with how many processes were stopped. */
  async stopJobs(sel: JobSelector): Promise<number> {
    return parseSignalled(await this.run('stopping the jobs', signalJobsScript(sel, 'STOP'))) ?? 0;
  }

  /** SIGCONT to the selected jobs; resolves with how many processes were continued (`missingOk`: a cgroup gone is 0). */
  async continueJobs(sel: JobSelector, missingOk = false): Promise<number> {
    return parseSignalled(await this.run('continuing the jobs', signalJobsScript(sel, 'CONT', missingOk))) ?? 0;
  }

  async dropCaches(): Promise<void> {
    await this.run('dropping the caches', DROP_CACHES_SCRIPT);
  }

  async swapOn(): Promise<void> {
    await this.run('turning the swap disk on', SWAP_ON_SCRIPT);
  }

  /** Turning swap off reads every swapped page back: `timeoutMs` should allow for the disk. */
  async swapOff(timeoutMs: number): Promise<void> {
    await this.run('turning the swap disk off', SWAP_OFF_SCRIPT, timeoutMs);
  }

  async memInfo(): Promise<GuestMemInfo> {
    return parseMemInfo(await this.run('reading /proc/meminfo', MEMINFO_SCRIPT));
  }
}
