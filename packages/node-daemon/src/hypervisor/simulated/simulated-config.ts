/** Config checks of the `simulated` driver (`driver.simulated`). */
import type { ConfigChecker, ConfigObject as Obj } from '@magrathea/common';
import { DOMAIN_NAME } from '@magrathea/common';
import type { SimulatedDriverOptions, SimulatedFailure } from './simulated-driver';

const SIM_OPS = ['preempt', 'save', 'shrink', 'shutdown', 'resume', 'restore', 'grow', 'boot', 'observe'] as const;

/** `driver.simulated`: latencies, scripted failures and memory figures. */
export function checkSimulated(c: ConfigChecker, o: Obj | null, at: string): SimulatedDriverOptions {
  const sim = c.object(o, at, [
    'latencyMs',
    'failures',
    'activeMemoryBytes',
    'idleMemoryBytes',
    'preemptedMemoryBytes',
  ]);
  const latencyObj = c.object(sim?.latencyMs, `${at}.latencyMs`, SIM_OPS);
  const latencyMs: Partial<Record<(typeof SIM_OPS)[number], number>> = {};
  for (const op of SIM_OPS) {
    const v = c.int(latencyObj, op, `${at}.latencyMs`, 0, 600_000);
    if (v !== undefined) latencyMs[op] = v;
  }
  const failures: SimulatedFailure[] = [];
  const fl = sim?.failures;
  if (fl !== undefined && fl !== null) {
    if (!Array.isArray(fl)) c.fail(`${at}.failures`, 'must be a list');
    else
      fl.forEach((f, i) => {
        const p = `${at}.failures.${i}`;
        const fo = c.object(f, p, ['op', 'domain', 'times', 'message']);
        const op = c.oneOf(fo, 'op', p, SIM_OPS);
        if (op === undefined && fo && fo.op === undefined) c.fail(`${p}.op`, 'is required');
        const domain = c.string(fo, 'domain', p, { pattern: DOMAIN_NAME, patternText: 'a domain name' });
        const times = c.int(fo, 'times', p, 1, 1_000_000);
        const message = c.string(fo, 'message', p);
        if (op)
          failures.push({
            op,
            ...(domain ? { domain } : {}),
            ...(times ? { times } : {}),
            ...(message ? { message } : {}),
          });
      });
  }
  const mem = (k: string): number | undefined => c.int(sim, k, at, 0, Number.MAX_SAFE_INTEGER);
  const active = mem('activeMemoryBytes');
  const idle = mem('idleMemoryBytes');
  const pre = mem('preemptedMemoryBytes');
  return {
    latencyMs,
    failures,
    ...(active !== undefined ? { activeMemoryBytes: active } : {}),
    ...(idle !== undefined ? { idleMemoryBytes: idle } : {}),
    ...(pre !== undefined ? { preemptedMemoryBytes: pre } : {}),
  };
}
