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
  reader: new Set(['GetNode', 'WatchNode', 'WatchNodes', 'ListNodes', 'WatchCluster', 'Candidates', 'ListImages']),
  operator: new Set([
    'GetNode',
    'WatchNode',
    'WatchNodes',
    'StartJob',
    'EndJob',
    'DomainAction',
    'SetImage',
    'ListImages',
    'PullImage',
    'RemoveImage',
    'ListNodes',
    'WatchCluster',
    'Candidates',
    'Admit',
  ]),
  // DomainAction: only `boot` of a wake-on-demand domain (the daemon checks).
  filter: new Set([
    'GetNode',
    'WatchNode',
    'WatchNodes',
    'ListNodes',
    'WatchCluster',
    'Candidates',
    'Admit',
    'ListImages',
    'DomainAction',
  ]),
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

/** How failed authentications are slowed down. */
export interface FailureDelayOptions {
  /** Each failure beyond the free ones adds this much delay, ms. Default 100. */
  readonly stepMs?: number;
  /** Longest delay, ms. Default 5000. */
  readonly maxDelayMs?: number;
  /** Failures from all sources together that are free, as a multiple of the per-source limit. Default 5. */
  readonly globalFactor?: number;
}

/** Failure times within the window, oldest first, at most `cap` of them. */
class Window {
  private times: number[] = [];
  constructor(private readonly cap: number) {}
  /** Records a failure at `t` and returns how many fell within `windowMs` (the cap at most). */
  add(t: number, windowMs: number): number {
    let i = 0;
    while (i < this.times.length && t - (this.times[i] as number) >= windowMs) i++;
    if (i > 0) this.times = this.times.slice(i);
    this.times.push(t);
    if (this.times.length > this.cap) this.times.shift();
    return this.times.length;
  }
  lastAt(): number {
    return this.times[this.times.length - 1] ?? -Infinity;
  }
}

/**
 * Slows guessing down without locking anyone out. A request that authenticates is never
 * delayed or refused (a guest's user job that shares its hooks' address cannot lock them out by
 * guessing). A failure is answered after a delay: the first `limit` failures of a source within
 * `windowMs` at once, then each further one `stepMs` later than the previous, up to `maxDelayMs`;
 * the same applies to the failures of all sources together beyond `limit × globalFactor`, so
 * guesses spread over many addresses are slowed down too. Durations run on a monotonic clock
 * (`now`, default `performance.now()`): a wall clock stepped back stretches nothing.
 */
export class FailureLimiter {
  private readonly sources = new Map<string, Window>();
  private readonly all: Window;
  private readonly stepMs: number;
  private readonly maxDelayMs: number;
  private readonly globalLimit: number;
  /** Failed authentications. */
  total = 0;
  /** Failures answered after a delay. */
  delayedTotal = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = () => performance.now(),
    opts: FailureDelayOptions = {},
  ) {
    this.stepMs = opts.stepMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 5000;
    this.globalLimit = limit * (opts.globalFactor ?? 5);
    const steps = Math.ceil(this.maxDelayMs / this.stepMs) + 1;
    this.all = new Window(this.globalLimit + steps);
  }

  /** Records a failure from `source`; returns how long to wait before answering it, ms (0: at once). */
  fail(source: string): number {
    this.total++;
    const t = this.now();
    const steps = Math.ceil(this.maxDelayMs / this.stepMs) + 1;
    let w = this.sources.get(source);
    if (!w) {
      if (this.sources.size >= 10_000) this.forgetOldest(t);
      w = new Window(this.limit + steps);
      this.sources.set(source, w);
    }
    const own = w.add(t, this.windowMs) - this.limit;
    const everyone = this.all.add(t, this.windowMs) - this.globalLimit;
    const delay = Math.min(this.maxDelayMs, Math.max(0, own, everyone) * this.stepMs);
    if (delay > 0) this.delayedTotal++;
    return delay;
  }

  /** Drops the sources not heard from within the window (or the oldest one). */
  private forgetOldest(t: number): void {
    let oldest: string | null = null;
    let oldestAt = Infinity;
    for (const [s, w] of this.sources) {
      if (t - w.lastAt() >= this.windowMs) this.sources.delete(s);
      else if (w.lastAt() < oldestAt) {
        oldestAt = w.lastAt();
        oldest = s;
      }
    }
    if (this.sources.size >= 10_000 && oldest !== null) this.sources.delete(oldest);
  }
}
