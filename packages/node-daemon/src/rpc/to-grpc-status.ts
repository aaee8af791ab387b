/** THE one mapping from daemon errors to gRPC statuses. Unknown errors: INTERNAL, details only in the log. */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { REASON_METADATA_KEY } from '@magrathea/common';
import { DaemonError } from '../errors';
import type { RefusedError } from '../errors';

export function toGrpcStatus(err: unknown, logger: Logger, method: string): Partial<grpc.StatusObject> {
  if (err instanceof DaemonError) {
    const metadata = new grpc.Metadata();
    switch (err.code) {
      case 'invalid-argument':
        return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
      case 'not-found':
        return { code: grpc.status.NOT_FOUND, details: err.message };
      case 'refused':
        metadata.set(REASON_METADATA_KEY, (err as RefusedError).reason);
        return {
          code: grpc.status.FAILED_PRECONDITION,
          details: `${(err as RefusedError).reason}: ${err.message}`,
          metadata,
        };
      case 'unavailable':
        return { code: grpc.status.UNAVAILABLE, details: err.message };
      case 'unauthenticated':
        return { code: grpc.status.UNAUTHENTICATED, details: err.message };
      case 'permission-denied':
        return { code: grpc.status.PERMISSION_DENIED, details: err.message };
      case 'resource-exhausted':
        return { code: grpc.status.RESOURCE_EXHAUSTED, details: err.message };
      case 'config':
      case 'journal-corrupt':
      case 'state-dir':
      case 'state-dir-unsafe':
      case 'state-dir-locked':
      case 'storage':
      case 'state-dir-lost':
      case 'driver':
        break;
    }
  }
  logger.error({ err, method }, 'internal error while serving a request');
  return { code: grpc.status.INTERNAL, details: 'internal error (see the daemon log)' };
}
