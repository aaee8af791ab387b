/**
 * Who may call what on the daemon's gRPC service, by the listener the call came in on:
 *
 * - the Unix socket (mode 0600, owner root): local root, every method (`operator`);
 * - TCP without TLS: anyone who can connect, so reads only (GetNode, WatchNode; health and
 *   reflection are separate services): StartJob, EndJob and DomainAction are PERMISSION_DENIED
 *   with a message naming the Unix socket and TLS;
 * - TCP with TLS: a client certificate from the site CA whose identity has a role that allows
 *   the method.
 *
 * A failed authentication is answered after a delay that grows with the failures of its source
 * and of everyone (FailureLimiter), never by refusing a caller that does authenticate.
 */
import type { Logger } from 'pino';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context';
import { FailureLimiter, LOCAL_PRINCIPAL, ROLE_METHODS, sourceOf, verifiedPeerCertificate } from '@magrathea/common';
import type { Principal, PeerAuthenticator } from '@magrathea/common';
import type { DaemonError } from '../errors';
import { PermissionDeniedError, UnauthenticatedError } from '../errors';

/** The listener a call came in on. */
export type Transport = 'unix' | 'tcp';

export interface CallInfo {
  getAuthContext(): AuthContext | null;
  getPeer(): string;
}

export interface AuthCounters {
  readonly failures: number;
  readonly delayed: number;
}

/** The outcome of an authorization: the principal, or the error to answer after `delayMs`. */
export type Authorization =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly error: DaemonError; readonly delayMs: number };

export class Authorizer {
  private readonly limiter: FailureLimiter;

  constructor(
    private readonly authenticator: PeerAuthenticator | null,
    failuresPerMinute: number,
    private readonly log: Logger,
    /** Monotonic time, ms (the failure window). */
    now: () => number = () => performance.now(),
    /** The Unix socket, named in the refusal of a write over plaintext TCP (null: none configured). */
    private readonly unixSocket: string | null = null,
  ) {
    this.limiter = new FailureLimiter(failuresPerMinute, 60_000, now);
  }

  get counters(): AuthCounters {
    return { failures: this.limiter.total, delayed: this.limiter.delayedTotal };
  }

  /** Re-reads the CA (SIGHUP). */
  setCa(pem: Buffer): void {
    this.authenticator?.setCa(pem);
  }

  /** May this call run? */
  authorize(call: CallInfo, method: string, transport: Transport): Authorization {
    if (transport === 'unix') return { ok: true, principal: LOCAL_PRINCIPAL };
    const source = sourceOf(call.getPeer());
    if (!this.authenticator) {
      // Any local account can connect to a plaintext TCP port: it gets what a reader gets.
      if (ROLE_METHODS.reader.has(method))
        return { ok: true, principal: { identity: `tcp:${source}`, role: 'reader', local: false } };
      const socket = this.unixSocket ? ` (unix:${this.unixSocket}, mode 0600, owner root)` : '';
      return {
        ok: false,
        delayMs: 0,
        error: new PermissionDeniedError(
          `${method} is not served over plaintext TCP, which any local user can reach: without TLS this listener serves only reads (GetNode, WatchNode, health, reflection). Call ${method} over the Unix socket${socket}, or configure listen.tls and use a certificate with the operator role`,
        ),
      };
    }
    // With TLS configured every TCP call is a TLS call and must carry a verified certificate
    // (fail closed: grpc-js describes an unverified TLS peer exactly like a plaintext one).
    const der = verifiedPeerCertificate(call.getAuthContext());
    const r = this.authenticator.check(der, method);
    if (r.ok) return { ok: true, principal: r.principal };
    const delayMs = this.limiter.fail(source);
    this.log.warn({ source, method, code: r.code, reason: r.message, delayMs }, 'authentication failed');
    return {
      ok: false,
      delayMs,
      error: r.code === 'unauthenticated' ? new UnauthenticatedError(r.message) : new PermissionDeniedError(r.message),
    };
  }
}
