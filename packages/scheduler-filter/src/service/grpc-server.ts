/** The filter's gRPC server: ClusterService (plaintext, loopback unless the config allows more). */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { loadMagratheaApi } from '@magrathea/common';
import { shutdownGrpcServer } from '@magrathea/common';
import type { ClusterView } from './cluster-view';
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
}

/** ClusterService over the view, on an insecure listener (loopback unless configured). */
export function createGrpcServer(deps: { api: Api; view: ClusterView; logger: Logger }): FilterGrpcServer {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  const service = createClusterService({ view: deps.view, logger: deps.logger });
  server.addService(deps.api.magrathea.v1.ClusterService.service, service.handlers);
  return {
    listen: (host, port) =>
      new Promise((resolve, reject) =>
        server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
          e ? reject(e) : resolve(p),
        ),
      ),
    closeStreams: () => service.closeStreams(),
    shutdown: (graceMs) => shutdownGrpcServer(server, graceMs),
  };
}
