/**
 * Who may call what on the daemon's gRPC service. Calls over the Unix socket (mode 0600) or
 * plaintext loopback TCP are local and trusted like root; calls over TLS must present a client
 * certificate from the site CA whose identity has a role that allows the method. Failed
 * authentications are counted per source, and a source that fails too often is refused for a
 * while (logged once per block).
 */
import type { Logger } from 'pino';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context';
import { FailureLimiter, LOCAL_PRINCIPAL, verifiedPeerCertificate } from '@magrathea/common';
import type { Principal, PeerAuthenticator } from '@magrathea/common';
import { PermissionDeniedError, ResourceExhaustedError, UnauthenticatedError } from '../errors';

export interface CallInfo {
  getAuthContext(): AuthContext | null;
  getPeer(): string;
}

export interface AuthCounters {
  readonly failures: number;
  readonly refusedWhileBlocked: number;
}

export class Authorizer {
  private readonly limiter: FailureLimiter;

  constructor(
    private readonly authenticator: PeerAuthenticator | null,
    failuresPerMinute: number,
    private readonly log: Logger,
    now: () => number = Date.now,
  ) {
    this.limiter = new FailureLimiter(failuresPerMinute, 60_000, now);
  }

  get counters(): AuthCounters {
    return { failures: this.limiter.total, refusedWhileBlocked: this.limiter.refusedTotal };
  }

  /** Re-reads the CA (SIGHUP). */
  setCa(pem: Buffer): void {
    this.authenticator?.setCa(pem);
  }

  /** The caller's principal, or a typed error (UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED). */
  authorize(call: CallInfo, method: string): Principal {
    // grpc-js reports no remote address for a Unix-socket peer ("unknown"); with TLS
    // configured every TCP call is a TLS call and must carry a verified certificate (fail
    // closed: grpc-js describes an unverified TLS peer exactly like a plaintext one).
    const peer = call.getPeer();
    if (!this.authenticator || peer === 'unknown') return LOCAL_PRINCIPAL;
    const der = verifiedPeerCertificate(call.getAuthContext());
    const source = sourceOf(peer);
    if (this.limiter.isBlocked(source))
      throw new ResourceExhaustedError('too many failed authentications from this address; try again later');
    const r = this.authenticator.check(der, method);
    if (r.ok) return r.principal;
    const started = this.limiter.fail(source);
    this.log.warn({ source, method, code: r.code, reason: r.message }, 'authentication failed');
    if (started) this.log.error({ source }, 'too many failed authentications: source refused for a minute');
    if (r.code === 'unauthenticated') throw new UnauthenticatedError(r.message);
    throw new PermissionDeniedError(r.message);
  }
}

/** "10.0.0.5:53211" → "10.0.0.5"; "::1:5000" → "::1" (the port is dropped). */
export function sourceOf(peer: string): string {
  const i = peer.lastIndexOf(':');
  return i > 0 && /^\d+$/.test(peer.slice(i + 1)) ? peer.slice(0, i) : peer;
}
