/**
 * Who is calling, and may they? Client certificates (mTLS) are checked against the site CA
 * here rather than by the TLS layer, so that a caller without a certificate or with a bad one
 * gets a clear UNAUTHENTICATED status instead of a failed handshake. The identity is the
 * certificate's subject CN; the config binds identities to roles. Pure apart from the clock.
 */
import { X509Certificate } from 'node:crypto';

export const ROLES = ['reader', 'operator', 'filter'] as const;
export type Role = (typeof ROLES)[number];

/** What each role may call (by method name of NodeService and ClusterService). */
export const ROLE_METHODS: Readonly<Record<Role, ReadonlySet<string>>> = {
  reader: new Set(['GetNode', 'WatchNode', 'ListNodes', 'WatchCluster', 'Candidates']),
  operator: new Set([
    'GetNode',
    'WatchNode',
    'StartJob',
    'EndJob',
    'DomainAction',
    'ListNodes',
    'WatchCluster',
    'Candidates',
    'Admit',
  ]),
  filter: new Set(['GetNode', 'WatchNode', 'ListNodes', 'WatchCluster', 'Candidates', 'Admit']),
};

export interface Principal {
  readonly identity: string;
  readonly role: Role;
  /** Unix socket or plaintext loopback: trusted like the local root account. */
  readonly local: boolean;
}

export type AuthResult =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly code: 'unauthenticated' | 'permission-denied'; readonly message: string };

export interface ClientBinding {
  readonly identity: string;
  readonly role: Role;
}

export const LOCAL_PRINCIPAL: Principal = { identity: 'local', role: 'operator', local: true };

/** The CN of a certificate subject ("CN=admin\nO=site" → admin). */
export function commonName(subject: string): string | null {
  const m = /(?:^|\n|,\s*)CN=([^\n,]+)/.exec(subject);
  return m?.[1]?.trim() ?? null;
}

/** What one certificate says, once parsed and checked against the CA (cached per certificate). */
interface CertFacts {
  readonly issuedByCa: boolean;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly validFrom: string;
  readonly validTo: string;
  readonly identity: string | null;
}

export class PeerAuthenticator {
  private ca: X509Certificate;
  private readonly roles: Map<string, Role>;
  /**
   * Parsing a certificate and verifying its signature costs more than the rest of a call's
   * authorization; a client presents the same certificate on every call, so the facts are kept
   * (bounded; emptied when the CA changes). Validity is still checked against the clock each time.
   */
  private readonly facts = new Map<string, CertFacts>();

  constructor(
    caPem: string | Buffer,
    clients: readonly ClientBinding[],
    private readonly now: () => number = Date.now,
  ) {
    this.ca = new X509Certificate(caPem);
    this.roles = new Map(clients.map((c) => [c.identity, c.role]));
  }

  /** Replaces the CA (SIGHUP after a CA rotation). */
  setCa(caPem: string | Buffer): void {
    this.ca = new X509Certificate(caPem);
    this.facts.clear();
  }

  private factsOf(der: Buffer): CertFacts | null {
    const key = der.toString('base64');
    const known = this.facts.get(key);
    if (known) return known;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch {
      return null;
    }
    const f: CertFacts = {
      issuedByCa: cert.checkIssued(this.ca) && cert.verify(this.ca.publicKey),
      notBeforeMs: Date.parse(cert.validFrom),
      notAfterMs: Date.parse(cert.validTo),
      validFrom: cert.validFrom,
      validTo: cert.validTo,
      identity: commonName(cert.subject),
    };
    if (this.facts.size >= 1024) this.facts.delete(this.facts.keys().next().value as string);
    this.facts.set(key, f);
    return f;
  }

  /** Checks a peer certificate (DER) and the role's right to call `method`. */
  check(peerDer: Buffer | null | undefined, method: string): AuthResult {
    if (!peerDer || peerDer.length === 0)
      return {
        ok: false,
        code: 'unauthenticated',
        message:
          'no valid client certificate (missing, expired, or not issued by the site CA): this service needs mTLS',
      };
    const cert = this.factsOf(peerDer);
    if (!cert) return { ok: false, code: 'unauthenticated', message: 'the client certificate cannot be parsed' };
    if (!cert.issuedByCa)
      return { ok: false, code: 'unauthenticated', message: 'the client certificate is not issued by the site CA' };
    const t = this.now();
    if (t < cert.notBeforeMs)
      return {
        ok: false,
        code: 'unauthenticated',
        message: `the client certificate is not valid before ${cert.validFrom}`,
      };
    if (t > cert.notAfterMs)
      return { ok: false, code: 'unauthenticated', message: `the client certificate expired on ${cert.validTo}` };
    const identity = cert.identity;
    if (!identity) return { ok: false, code: 'unauthenticated', message: 'the client certificate has no CN' };
    const role = this.roles.get(identity);
    if (!role)
      return { ok: false, code: 'permission-denied', message: `identity ${identity} has no role on this service` };
    if (!ROLE_METHODS[role].has(method))
      return {
        ok: false,
        code: 'permission-denied',
        message: `role ${role} (identity ${identity}) may not call ${method}`,
      };
    return { ok: true, principal: { identity, role, local: false } };
  }
}

/**
 * Counts failed authentications per source and refuses a source that fails too often:
 * more than `limit` failures within `windowMs` blocks it for `windowMs`. Pure (clock injected).
 */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();
  private readonly blocked = new Map<string, number>();
  total = 0;
  refusedTotal = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while `source` is blocked. */
  isBlocked(source: string): boolean {
    const until = this.blocked.get(source);
    if (until === undefined) return false;
    if (this.now() >= until) {
      this.blocked.delete(source);
      return false;
    }
    this.refusedTotal++;
    return true;
  }

  /** Records a failure; returns true when this failure starts a block. */
  fail(source: string): boolean {
    this.total++;
    const t = this.now();
    const recent = (this.failures.get(source) ?? []).filter((x) => t - x < this.windowMs);
    recent.push(t);
    this.failures.set(source, recent);
    if (this.failures.size > 10_000) this.failures.delete(this.failures.keys().next().value as string);
    if (recent.length > this.limit && !this.blocked.has(source)) {
      this.blocked.set(source, t + this.windowMs);
      return true;
    }
    return false;
  }
}
