/**
 * The filter's gRPC server: ClusterService (plaintext, loopback unless the config allows more),
 * behind a connection guard (caps; connections without calls are closed after idleConnectionMs).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { GrpcListener, loadMagratheaApi } from '@magrathea/common';
import { ConnectionGuard, FIRST_BYTES_MS, listenGrpcTcp, shutdownGrpcServer } from '@magrathea/common';
import type { ClusterView } from './cluster-view';
import type { FilterConfig } from './config';
import { ClusterViewCodec } from './cluster-codec';
import { createClusterService } from './cluster-service';

type Api = ReturnType<typeof loadMagratheaApi>;

/** The filter's gRPC listener. */
export interface FilterGrpcServer {
  /** Binds to `host:port` (port 0 picks one); returns the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** Ends the open WatchCluster streams. */
  closeStreams(): void;
  /** Graceful shutdown, forced after `graceMs`. */
  shutdown(graceMs: number): Promise<void>;
  /** Connections refused over a cap. */
  readonly refusedConnections: number;
}

/** ClusterService over the view, on an insecure listener (loopback unless configured). */
export function createGrpcServer(deps: {
  api: Api;
  view: ClusterView;
  logger: Logger;
  limits: FilterConfig['limits'];
  onStreamRefused?: () => void;
}): FilterGrpcServer {
  const { limits } = deps;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
    'grpc.max_connection_idle_ms': limits.idleConnectionMs,
    'grpc.keepalive_time_ms': Math.max(1000, limits.idleConnectionMs),
    'grpc.keepalive_timeout_ms': 20_000,
  });
  const service = createClusterService({
    view: deps.view,
    logger: deps.logger,
    limits,
    ...(deps.onStreamRefused ? { onRefused: deps.onStreamRefused } : {}),
  });
  // Node views are encoded with each domain's bytes kept beside its message (cluster-codec.ts).
  server.addService(
    new ClusterViewCodec().serviceDefinition(deps.api.magrathea.v1.ClusterService.service),
    service.handlers,
  );
  const guard = new ConnectionGuard(
    { maxConnections: limits.maxConnections, maxPerSource: limits.maxConnectionsPerSource },
    deps.logger.child({ component: 'grpc' }),
    { what: 'ClusterService', evictIdle: false },
  );
  let listener: GrpcListener | null = null;
  return {
    listen: async (host, port) => {
      listener = await listenGrpcTcp(
        server,
        grpc.ServerCredentials.createInsecure(),
        guard,
        host,
        port,
        Math.min(limits.idleConnectionMs, FIRST_BYTES_MS),
      );
      return listener.port;
    },
    closeStreams: () => service.closeStreams(),
    shutdown: async (graceMs) => {
      const closed = listener?.close();
      await shutdownGrpcServer(server, graceMs);
      guard.destroyAll();
      await closed;
    },
    get refusedConnections() {
      return guard.refused;
    },
  };
}
