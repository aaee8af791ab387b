/** Validation of raw request fields, for the commands both edges (gRPC and hook API) run: bad input changes nothing. */
import type { DomainActionName } from '@magrathea/common';
import { DOMAIN_ACTIONS, DOMAIN_NAME, JOB_ID_TEXT, isDomainAction } from '@magrathea/common';
import { InvalidArgumentError } from '../errors';

/** PBS job ids: printable ASCII without spaces, e.g. `1234.server` or `12[3].server.example.org` (JOB_ID_TEXT). */
const JOB_ID = JOB_ID_TEXT;
/** Longest job id accepted, characters. */
export const MAX_JOB_ID = 255;
/** Most CPUs a job may ask for. */
export const MAX_CPUS = 4096;
/** Longest action reason accepted, characters. */
export const MAX_REASON = 1024;

/** A domain name (DOMAIN_NAME); whether the node has it is checked by the commands. */
export function checkDomain(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw new InvalidArgumentError('domain is required');
  if (!DOMAIN_NAME.test(v)) throw new InvalidArgumentError(`domain "${v.slice(0, 80)}" is not a valid domain name`);
  return v;
}

/** A PBS job id: printable ASCII without spaces, at most MAX_JOB_ID. */
export function checkJobId(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw new InvalidArgumentError('job_id is required');
  if (v.length > MAX_JOB_ID)
    throw new InvalidArgumentError(`job_id is ${v.length} characters long; at most ${MAX_JOB_ID}`);
  if (!JOB_ID.test(v)) throw new InvalidArgumentError('job_id may contain only printable ASCII without spaces');
  return v;
}

/** Absent means preemptible false (the hook API's JSON may leave it out; gRPC always sends a boolean). */
export function checkPreemptible(v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new InvalidArgumentError('preemptible must be true or false');
  return v;
}

/** CPUs of a job: absent or 0 means 1. */
export function checkCpus(v: unknown): number {
  if (v === undefined || v === null || v === 0) return 1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_CPUS) {
    throw new InvalidArgumentError(`cpus must be an integer from 1 to ${MAX_CPUS}`);
  }
  return v;
}

/** A generation (int64 as number or decimal string); absent means 0 (no fencing). */
export function checkGeneration(v: unknown): number {
  if (v === undefined || v === null || v === '' || v === '0' || v === 0) return 0;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError('expected_generation must be a non-negative integer');
  return n;
}

/**
 * A job's exit status: absent (or gRPC's has_exit_status false) means unknown. PBS exit
 * statuses are small integers (negative for jobs PBS itself ended, 256+ for signals).
 */
export function checkExitStatus(v: unknown, known: unknown = v !== undefined && v !== null): number | undefined {
  if (known === false || known === undefined || known === null) return undefined;
  if (typeof known !== 'boolean') throw new InvalidArgumentError('has_exit_status must be true or false');
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -1_000_000 || v > 1_000_000)
    throw new InvalidArgumentError("exit_status must be an integer (the job's exit status)");
  return v;
}

/** One of DOMAIN_ACTIONS. */
export function checkAction(v: unknown): DomainActionName {
  if (typeof v !== 'string' || !isDomainAction(v)) {
    throw new InvalidArgumentError(`action must be one of ${DOMAIN_ACTIONS.join(', ')}`);
  }
  return v;
}

/** A free-text reason: at most MAX_REASON characters, no control characters; absent means empty. */
export function checkReason(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new InvalidArgumentError('reason must be a string');
  if (v.length > MAX_REASON) throw new InvalidArgumentError(`reason is longer than ${MAX_REASON} characters`);
  if (/[\x00-\x1f\x7f]/.test(v)) throw new InvalidArgumentError('reason may not contain control characters');
  return v;
}

/** A catalogue image name (set-image). */
export function checkImage(v: unknown): string {
  if (typeof v !== 'string' || !DOMAIN_NAME.test(v))
    throw new InvalidArgumentError(`image: ${JSON.stringify(v)} is not an image name`);
  return v;
}

/** set-image's now flag. */
export function checkNow(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`now: ${JSON.stringify(v)} is not a boolean`);
  return v;
}
