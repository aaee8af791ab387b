/** A NodeService client for an `ADDR` (HOST:PORT or unix:PATH), with typed errors from gRPC statuses. */
import * as grpc from '@grpc/grpc-js';
import type { NodeServiceClient } from '@magrathea/common';
import { clientCredentials, grpcTarget, loadMagratheaApi, parseAddress, REASON_METADATA_KEY } from '@magrathea/common';
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
  denied: 7,
  /** `pbs install|uninstall`: PBS refused a step; `pbs verify`: a check failed. */
  pbsRefused: 8,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly reason = '',
  ) {
    super(message);
  }
}

/** A NodeService client for `addr`, over mTLS with `tls` (or plaintext when null). */
export function connect(addr: string, tls: TlsFiles | null): NodeServiceClient {
  let target: string;
  try {
    target = grpcTarget(parseAddress(addr));
  } catch (err) {
    throw new CliError(`--node: ${(err as Error).message}`, EXIT.usage);
  }
  const api = loadMagratheaApi();
  let creds: grpc.ChannelCredentials;
  try {
    creds = clientCredentials(tls);
  } catch (err) {
    throw new CliError(`TLS: ${(err as Error).message}`, EXIT.usage);
  }
  return new api.magrathea.v1.NodeService(target, creds);
}

/** Maps a gRPC error to a CLI error with a human message and exit code. */
export function fromGrpcError(err: unknown, addr: string): CliError {
  const e = err as grpc.ServiceError;
  const reason = String(e.metadata?.get(REASON_METADATA_KEY)[0] ?? '');
  switch (e.code) {
    case grpc.status.FAILED_PRECONDITION:
      return new CliError(`refused: ${e.details}`, EXIT.refused, reason);
    case grpc.status.NOT_FOUND:
      return new CliError(e.details, EXIT.notFound);
    case grpc.status.INVALID_ARGUMENT:
      return new CliError(`invalid request: ${e.details}`, EXIT.invalid);
    case grpc.status.UNAUTHENTICATED:
      return new CliError(`not authenticated by ${addr}: ${e.details} (set MAGRATHEA_TLS_CA/CERT/KEY)`, EXIT.denied);
    case grpc.status.PERMISSION_DENIED:
      return new CliError(`permission denied by ${addr}: ${e.details}`, EXIT.denied);
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
      return new CliError(`cannot reach magrathead at ${addr}: ${e.details}`, EXIT.unavailable);
    default:
      return new CliError(`${addr}: ${e.details ?? (err as Error).message}`, EXIT.error);
  }
}

type Invoke<Res> = (opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown;

/** Calls a unary method with a deadline and maps errors: `call(addr, (o, cb) => client.GetNode({}, o, cb))`. */
export function call<Res>(addr: string, invoke: Invoke<Res>, timeoutMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke({ deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(fromGrpcError(err, addr));
      else resolve(res as Res);
    });
  });
}
