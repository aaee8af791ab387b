/**
 * Typed daemon errors. Each server maps them in one place: `rpc/to-grpc-status.ts` (gRPC) and
 * `toHttpReply` in `hook-api/hook-server.ts` (the hook API).
 */
import type { RefusalReason } from '@magrathea/common';

export type DaemonErrorCode =
  | 'invalid-argument'
  | 'not-found'
  | 'refused'
  | 'unavailable'
  | 'config'
  | 'journal-corrupt'
  | 'state-dir'
  | 'state-dir-unsafe'
  | 'state-dir-locked'
  | 'storage'
  | 'state-dir-lost'
  | 'driver'
  | 'unauthenticated'
  | 'permission-denied'
  | 'resource-exhausted';

export class DaemonError extends Error {
  override readonly name: string = 'DaemonError';
  constructor(
    readonly code: DaemonErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A request that is malformed: nothing was changed. */
export class InvalidArgumentError extends DaemonError {
  override readonly name = 'InvalidArgumentError';
  constructor(message: string) {
    super('invalid-argument', message);
  }
}

export class DomainNotFoundError extends DaemonError {
  override readonly name = 'DomainNotFoundError';
  constructor(readonly domain: string) {
    super('not-found', `no domain named ${domain} on this node`);
  }
}

/** The state machine (or the driver) refused the command: nothing was changed. */
export class RefusedError extends DaemonError {
  override readonly name = 'RefusedError';
  /** The domain whose status the edge reports with the refusal (a refused job start), or null. */
  readonly domain: string | null;
  constructor(
    readonly reason: RefusalReason,
    message: string,
    options?: { cause?: unknown; domain?: string },
  ) {
    super('refused', message, options);
    this.domain = options?.domain ?? null;
  }

  /** The same refusal, carrying the domain whose status goes with it. */
  inDomain(domain: string): RefusedError {
    return new RefusedError(this.reason, this.message, { cause: this.cause, domain });
  }
}

/** The daemon is stopping or not ready. */
export class UnavailableError extends DaemonError {
  override readonly name = 'UnavailableError';
  constructor(message: string) {
    super('unavailable', message);
  }
}

export class ConfigError extends DaemonError {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super('config', `invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export class JournalCorruptError extends DaemonError {
  override readonly name = 'JournalCorruptError';
  constructor(message: string) {
    super('journal-corrupt', message);
  }
}

export class StateDirError extends DaemonError {
  override readonly name = 'StateDirError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('state-dir', message, options);
  }
}

/**
 * The state directory (or one of its parents, or a file in it) could be changed by another local
 * user: the daemon refuses to use it (exit 77).
 */
export class StateDirUnsafeError extends DaemonError {
  override readonly name = 'StateDirUnsafeError';
  constructor(message: string) {
    super('state-dir-unsafe', message);
  }
}

/** Another magrathead holds the state directory (or answers on the Unix socket): exit 75. */
export class StateDirLockedError extends DaemonError {
  override readonly name = 'StateDirLockedError';
  constructor(message: string) {
    super('state-dir-locked', message);
  }
}

/**
 * A write or fsync of the journal or the snapshot failed (ENOSPC, EIO, …). Nothing was
 * acknowledged by it; at start-up it stops the daemon (exit 74), while serving it refuses the
 * command (reason `storage-failed`).
 */
export class StorageError extends DaemonError {
  override readonly name = 'StorageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('storage', message, options);
  }
}

/**
 * The state directory was deleted or replaced under the running daemon: a command written now
 * would be lost at the next start, so commands are refused (reason `state-dir-lost`).
 */
export class StateDirLostError extends DaemonError {
  override readonly name = 'StateDirLostError';
  constructor(message: string) {
    super('state-dir-lost', message);
  }
}

/** sysexits.h exit code for a daemon error at start-up (main.ts exits with it), or null for EX_SOFTWARE. */
export function exitCodeOf(err: DaemonError): number | null {
  switch (err.code) {
    case 'config':
      return 78; // EX_CONFIG
    case 'state-dir':
      return 73; // EX_CANTCREAT
    case 'journal-corrupt':
      return 65; // EX_DATAERR
    case 'storage':
    case 'state-dir-lost':
      return 74; // EX_IOERR
    case 'state-dir-locked':
      return 75; // EX_TEMPFAIL
    case 'state-dir-unsafe':
      return 77; // EX_NOPERM
    case 'invalid-argument':
    case 'not-found':
    case 'refused':
    case 'unavailable':
    case 'driver':
    case 'unauthenticated':
    case 'permission-denied':
    case 'resource-exhausted':
      return null;
  }
}

/** A hypervisor driver operation failed. */
export class DriverError extends DaemonError {
  override readonly name = 'DriverError';
  constructor(
    readonly driver: string,
    readonly op: string,
    readonly domain: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('driver', `${driver} driver: ${op} ${domain} failed: ${message}`, options);
  }

  /** A driver operation's failure as a DriverError (one that already is passes through unchanged). */
  static wrap(driver: string, op: string, domain: string, err: unknown): DriverError {
    if (err instanceof DriverError) return err;
    return new DriverError(driver, op, domain, (err as Error).message, { cause: err });
  }
}

/** The caller could not be authenticated (no, unknown or invalid certificate). */
export class UnauthenticatedError extends DaemonError {
  override readonly name = 'UnauthenticatedError';
  constructor(message: string) {
    super('unauthenticated', message);
  }
}

/** The caller is known but its role does not allow the call. */
export class PermissionDeniedError extends DaemonError {
  override readonly name = 'PermissionDeniedError';
  constructor(message: string) {
    super('permission-denied', message);
  }
}

/** A limit was reached (streams per client, failed authentications). */
export class ResourceExhaustedError extends DaemonError {
  override readonly name = 'ResourceExhaustedError';
  constructor(message: string) {
    super('resource-exhausted', message);
  }
}
