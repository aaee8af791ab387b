/**
 * Clients of magrathead (NodeService) and magrathea-filter (ClusterService) for an `ADDR`
 * (HOST:PORT or unix:PATH), and THE mapping from gRPC errors to CLI errors: a message in the
 * admin's words naming the component that failed (no grpc-js internals), and an exit code.
 */
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Address, ClusterServiceClient, NodeServiceClient } from '@magrathea/common';
import { clientChannel, grpcTarget, loadMagratheaApi, parseAddress, REASON_METADATA_KEY } from '@magrathea/common';
import type { TlsFiles } from '@magrathea/common';

/** Exit codes of the `magrathea` CLI (documented in docs/cli.md). */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  refused: 3,
  notFound: 4,
  unavailable: 5,
  invalid: 6,
  /** Not authenticated, permission denied, or a TLS mismatch (plaintext client, TLS-only daemon). */
  denied: 7,
  /** `pbs install|uninstall`: PBS refused a step; `pbs verify`: a check failed. */
  pbsRefused: 8,
  /** `cluster status`: some node daemons are unreachable or stale (for monitoring checks). */
  degraded: 9,
} as const;

/** The `error.kind` of `--json` errors, by exit code. */
export const EXIT_KIND: Readonly<Record<number, string>> = {
  1: 'error',
  2: 'usage',
  3: 'refused',
  4: 'not-found',
  5: 'unavailable',
  6: 'invalid',
  7: 'denied',
  8: 'pbs-refused',
  9: 'degraded',
};

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** The daemon's machine-readable refusal reason (`occupied`, …), or ''. */
    readonly reason = '',
    /** What to do about it, or ''. */
    readonly hint = '',
  ) {
    super(message);
  }
}

/** The two servers the CLI talks to. */
export type Component = 'magrathead' | 'magrathea-filter';

/** One server to call: where, what it is, with which TLS files, and how long a call may take. */
export interface Endpoint {
  readonly addr: string;
  readonly component: Component;
  /** mTLS files (magrathead over TCP), or null for plaintext. */
  readonly tls: TlsFiles | null;
  readonly timeoutMs: number;
}

function addressOf(ep: Endpoint): Address {
  try {
    return parseAddress(ep.addr);
  } catch (err) {
    throw new CliError(
      `${ep.component === 'magrathead' ? '--node' : '--filter'}: ${(err as Error).message}`,
      EXIT.usage,
    );
  }
}

/** A NodeService client for `ep` (over mTLS when it has TLS files and a TCP address). */
export function connect(ep: Endpoint): NodeServiceClient {
  const a = addressOf(ep);
  let channel: ReturnType<typeof clientChannel>;
  try {
    channel = clientChannel(a.kind === 'tcp' ? ep.tls : null, a.kind === 'tcp' ? a.host : null);
  } catch (err) {
    throw new CliError(`TLS: ${(err as Error).message}`, EXIT.usage);
  }
  return new (loadMagratheaApi().magrathea.v1.NodeService)(grpcTarget(a), channel.credentials, channel.options);
}

/** A ClusterService client for `ep` (magrathea-filter serves plaintext). */
export function connectFilter(ep: Endpoint): ClusterServiceClient {
  return new (loadMagratheaApi().magrathea.v1.ClusterService)(
    grpcTarget(addressOf(ep)),
    grpc.credentials.createInsecure(),
  );
}

const TLS_ENV = 'MAGRATHEA_TLS_CA, MAGRATHEA_TLS_CERT and MAGRATHEA_TLS_KEY';

/** Why a connection could not be made, in words, from grpc-js's UNAVAILABLE details. */
function unreachable(details: string, ep: Endpoint): { why: string; code: number; hint: string } {
  const running = ep.component === 'magrathead' ? 'magrathead' : 'magrathea-filter';
  if (/ECONNREFUSED/.test(details))
    return {
      why: 'connection refused',
      code: EXIT.unavailable,
      hint: `is ${running} running and listening on ${ep.addr}?`,
    };
  if (/connect ENOENT/.test(details))
    return {
      why: 'no socket at that path',
      code: EXIT.unavailable,
      hint: `is ${running} running? Its socket is listen.unixSocket (default: <stateDir>/magrathead.sock)`,
    };
  if (/connect EACCES/.test(details))
    return {
      why: 'permission denied on the socket',
      code: EXIT.denied,
      hint: "the socket is mode 0600: run the CLI as the daemon's user (root)",
    };
  if (/Name resolution failed|ENOTFOUND|EAI_AGAIN/.test(details))
    return { why: 'the host name does not resolve', code: EXIT.unavailable, hint: 'check the address' };
  if (/EHOSTUNREACH|ENETUNREACH|ETIMEDOUT/.test(details))
    return { why: 'the host cannot be reached', code: EXIT.unavailable, hint: 'check the address and the network' };
  if (/wrong version number|packet length too long/.test(details))
    return {
      why: 'it does not speak TLS',
      code: EXIT.denied,
      hint: `it listens in plaintext (loopback or a Unix socket): unset ${TLS_ENV}`,
    };
  if (/altnames|ERR_TLS_CERT_ALTNAME_INVALID/.test(details))
    return {
      why: 'its certificate does not name the address it was reached at',
      code: EXIT.denied,
      hint: 'see its names with openssl x509 -noout -ext subjectAltName -in NODE.pem; re-issue it with magrathea pki init --ip ADDRESS, or use a name it lists',
    };
  if (/self.signed certificate|unable to (get|verify)|certificate/.test(details))
    return {
      why: `its certificate is not accepted (${/Error: ([^.]*)/.exec(details)?.[1] ?? 'verification failed'})`,
      code: EXIT.denied,
      hint: `MAGRATHEA_TLS_CA must be the site CA that issued the server's certificate`,
    };
  if (/Received HTTP status code/.test(details))
    return {
      why: 'something answered HTTP, not gRPC',
      code: EXIT.unavailable,
      hint: `is that ${running}'s gRPC port (not its hook API or metrics port, or a proxy)?`,
    };
  return { why: plainConnectionText(details) || 'the connection failed', code: EXIT.unavailable, hint: '' };
}

/** grpc-js's text of a failed connection without its internals (status name, "Last error", resolution notes, times). */
export function plainConnectionText(details: string): string {
  return details
    .replace(/\s*Resolution note:.*$/s, '')
    .replace(/(?:\b[A-Z_]{4,}: )?No connection established\. Last error: (?:Error: )?/g, '')
    .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/g, '')
    .trim()
    .replace(/\.$/, '');
}

/** Maps a gRPC error to a CLI error with a message in words and an exit code (no TLS probe). */
export function fromGrpcError(err: unknown, ep: Endpoint): CliError {
  const e = err as grpc.ServiceError;
  const reason = String(e.metadata?.get(REASON_METADATA_KEY)[0] ?? '');
  const by = `${ep.component} at ${ep.addr}`;
  switch (e.code) {
    case grpc.status.FAILED_PRECONDITION:
      return new CliError(`refused: ${e.details}`, EXIT.refused, reason);
    case grpc.status.NOT_FOUND:
      return new CliError(e.details, EXIT.notFound);
    case grpc.status.INVALID_ARGUMENT:
      return new CliError(`invalid request: ${e.details}`, EXIT.invalid);
    case grpc.status.UNAUTHENTICATED:
      return new CliError(`not authenticated by ${by}: ${e.details}`, EXIT.denied, '', `set ${TLS_ENV}`);
    case grpc.status.PERMISSION_DENIED:
      return new CliError(`permission denied by ${by}: ${e.details}`, EXIT.denied);
    case grpc.status.DEADLINE_EXCEEDED:
      return new CliError(
        `${by} did not answer within ${ep.timeoutMs / 1000} s`,
        EXIT.unavailable,
        '',
        'is it overloaded or hung? --timeout SECONDS waits longer',
      );
    case grpc.status.UNAVAILABLE: {
      const u = unreachable(e.details ?? '', ep);
      return new CliError(`cannot reach ${by}: ${u.why}`, u.code, '', u.hint);
    }
    case grpc.status.RESOURCE_EXHAUSTED:
      return new CliError(`${by} refused: ${e.details}`, EXIT.error);
    default:
      return new CliError(`${by}: ${e.details || (err as Error).message}`, EXIT.error);
  }
}

/** True when a TLS handshake with HOST:PORT succeeds (any certificate): the server speaks TLS. */
function speaksTls(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    const done = (v: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('secureConnect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * `fromGrpcError`, and when a plaintext client could not connect to a TCP address, a look at
 * whether the server speaks TLS there: then the error says so and how to fix it (exit 7).
 */
export async function explainGrpcError(err: unknown, ep: Endpoint): Promise<CliError> {
  const e = fromGrpcError(err, ep);
  const details = (err as grpc.ServiceError).details ?? '';
  if (ep.tls || !/Failed to connect|Connection dropped|ECONNRESET|Protocol error|socket hang up/.test(details))
    return e;
  const a = parseAddress(ep.addr);
  if (a.kind !== 'tcp' || !(await speaksTls(a.host, a.port, Math.min(ep.timeoutMs, 3000)))) return e;
  return new CliError(
    `cannot reach ${ep.component} at ${ep.addr}: it serves TLS only (mTLS) and this client spoke plaintext`,
    EXIT.denied,
    '',
    `set ${TLS_ENV} to the site CA and a client certificate and key (see magrathea pki init), or use its Unix socket`,
  );
}

type Invoke<Res> = (opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown;

/** Calls a unary method with the endpoint's deadline and maps errors: `call(ep, (o, cb) => client.GetNode({}, o, cb))`. */
export function call<Res>(ep: Endpoint, invoke: Invoke<Res>): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke({ deadline: Date.now() + ep.timeoutMs }, (err, res) => {
      if (err) explainGrpcError(err, ep).then(reject, reject);
      else resolve(res as Res);
    });
  });
}
