/** Admission requests, as both servers receive them (gRPC Admit and HTTP POST /v1/admit): validation and the check. */
import type { JobClass } from '../core';
import { admit } from '../core';
import type { ClusterView } from './cluster-view';

/** A malformed request: INVALID_ARGUMENT on gRPC, 400 on HTTP. */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';
}

/** `normal` or `priority`. */
export function checkJobClass(v: unknown): JobClass {
  if (v === 'normal' || v === 'priority') return v;
  throw new InvalidRequestError('job_class must be normal or priority');
}

/** A non-empty list of vnode names (at most 10,000, each shorter than 256). */
export function checkVnodes(v: unknown): string[] {
  if (
    !Array.isArray(v) ||
    v.length === 0 ||
    v.length > 10_000 ||
    !v.every((x) => typeof x === 'string' && x.length > 0 && x.length < 256)
  ) {
    throw new InvalidRequestError('vnodes must be a non-empty list of vnode names');
  }
  return v as string[];
}

/** Admission: the job's vnodes are looked up in the view's index (nothing is rebuilt). */
export function admitJob(
  view: ClusterView,
  jobClass: JobClass,
  vnodes: readonly string[],
): { admit: boolean; reasons: string[] } {
  return admit(
    jobClass,
    vnodes.map((v) => view.placed(v) ?? { vnode: v, missing: true as const }),
  );
}

/** Validates raw request fields and runs the check. */
export function admitRequest(
  view: ClusterView,
  req: { job_class?: unknown; vnodes?: unknown },
): ReturnType<typeof admitJob> {
  return admitJob(view, checkJobClass(req.job_class), checkVnodes(req.vnodes));
}
