/** The guest agent channel: the qemu-guest-agent protocol client and what is run through it. */
export { AgentError, GuestAgent, MAX_LINE, MAX_OUTPUT, MAX_SKIPPED } from './agent-client';
export type { ExecResult } from './agent-client';
export {
  DROP_CACHES_SCRIPT,
  jobCgroup,
  parseMemInfo,
  parseSignalled,
  selectorProblem,
  signalJobsScript,
  SWAP_OFF_SCRIPT,
  SWAP_ON_SCRIPT,
  SWAP_SERIAL,
} from './guest-commands';
export type { GuestMemInfo, JobSelector } from './guest-commands';
export { GuestControl } from './guest-control';
