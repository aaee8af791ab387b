/**
 * The gRPC servers: NodeService, standard health and server reflection, on TCP and/or a Unix
 * socket. Each listener has its own grpc.Server, so a handler knows by construction which one a
 * call came in on (what a caller may do depends on it, see authorizer.ts), and its own
 * connection guard (caps; grpc-js closes connections idle for `idleConnectionMs`).
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import {
  ConnectionGuard,
  FIRST_BYTES_MS,
  listenGrpcTcp,
  listenGrpcUnix,
  loadMagratheaApi,
  loadPackageDefinition,
  serverTlsCredentials,
  shutdownGrpcServer,
  SocketInUseError,
} from '@magrathea/common';
import type { GrpcListener, TlsFiles } from '@magrathea/common';
import type { DaemonConfig } from '../config/load-config';
import { StateDirLockedError } from '../errors';
import type { Authorizer, Transport } from './authorizer';
import type { DomainManager } from '../engine/domain-manager';
import type { DomainCommands } from '../engine/commands';
import { createNodeService } from './node-service';
import { lazyReflection } from './lazy-reflection';

export const NODE_SERVICE_NAME = 'magrathea.v1.NodeService';

export interface RpcServer {
  /** Binds to `host:port` (port 0 picks one); returns the bound port. */
  listenTcp(host: string, port: number): Promise<number>;
  /** Binds to a Unix socket, mode 0600 (never over a socket another process answers on). */
  listenUnix(path: string): Promise<void>;
  setServing(serving: boolean): void;
  /** Graceful shutdown, forced after `graceMs`. */
  shutdown(graceMs: number): Promise<void>;
  readonly openStreams: number;
  /** Watchers cut off for not keeping up. */
  readonly slowWatchersCut: number;
  /** Connections refused over a cap, over every listener. */
  readonly refusedConnections: number;
}

/** Limits against clients that misbehave (docs/configuration.md, `limits`). */
export type RpcLimits = Omit<DaemonConfig['limits'], 'authFailuresPerMinute'>;

export interface RpcServerDeps {
  readonly manager: DomainManager;
  /** The job and domain commands (shared with the hook API). */
  readonly commands: DomainCommands;
  readonly logger: Logger;
  readonly auth: Authorizer;
  readonly limits: RpcLimits;
  /** A quiet watch stream gets a heartbeat this often, ms. */
  readonly heartbeatMs: number;
  /** mTLS on TCP, or null for plaintext (reads only; loopback only, unless the config allows more). */
  readonly tls: TlsFiles | null;
  /** The node's image cache and its size limit. */
  readonly images?: { readonly cache: ImageCache; readonly maxBytes: number } | undefined;
}

import type { ImageCache } from '../images/image-cache';

export function createRpcServer(deps: RpcServerDeps): RpcServer {
  const definition = loadPackageDefinition();
  const api = loadMagratheaApi(definition);
  const { limits } = deps;
  const service = createNodeService({ ...deps, ...limits });
  const health = new HealthImplementation({ '': 'NOT_SERVING', [NODE_SERVICE_NAME]: 'NOT_SERVING' });
  // Built on the first reflection call (grpcurl): not held at idle.
  const reflection = lazyReflection(() => ({ ...definition, ...protoLoader.loadSync(healthProtoPath) }));
  const log = deps.logger.child({ component: 'rpc' });
  const servers: grpc.Server[] = [];
  const listeners: GrpcListener[] = [];
  const guards: ConnectionGuard[] = [];
  // A silent connection waits at most this long for its first bytes.
  const firstBytes = Math.min(limits.idleConnectionMs, FIRST_BYTES_MS);

  const serverFor = (transport: Transport): { server: grpc.Server; guard: ConnectionGuard } => {
    const server = new grpc.Server({
      'grpc.max_receive_message_length': 64 * 1024,
      // A connection without calls this long is closed (a silent TCP connection included).
      'grpc.max_connection_idle_ms': limits.idleConnectionMs,
      // A peer that stops answering pings (or reading) is dropped, even with a stream open.
      'grpc.keepalive_time_ms': Math.max(1000, limits.idleConnectionMs),
      'grpc.keepalive_timeout_ms': 20_000,
      'grpc.max_concurrent_streams': Math.max(100, limits.maxStreamsPerClient * 2),
    });
    server.addService(api.magrathea.v1.NodeService.service, service.handlers(transport));
    health.addToServer(server);
    reflection.addToServer(server);
    servers.push(server);
    const guard = new ConnectionGuard(
      { maxConnections: limits.maxConnections, maxPerSource: limits.maxConnectionsPerSource },
      log,
      { what: `gRPC (${transport})`, evictIdle: false },
    );
    guards.push(guard);
    return { server, guard };
  };

  return {
    async listenTcp(host, port) {
      const creds = deps.tls ? await serverTlsCredentials(deps.tls) : grpc.ServerCredentials.createInsecure();
      const { server, guard } = serverFor('tcp');
      const l = await listenGrpcTcp(server, creds, guard, host, port, firstBytes);
      listeners.push(l);
      log.info({ host, port: l.port, tls: deps.tls !== null }, 'listening on tcp');
      return l.port;
    },
    async listenUnix(path) {
      const { server, guard } = serverFor('unix');
      try {
        listeners.push(await listenGrpcUnix(server, grpc.ServerCredentials.createInsecure(), guard, path, firstBytes));
      } catch (err) {
        if (err instanceof SocketInUseError) throw new StateDirLockedError(err.message);
        throw err;
      }
      log.info({ path }, 'listening on unix socket');
    },
    setServing(serving) {
      const s = serving ? 'SERVING' : 'NOT_SERVING';
      health.setStatus('', s);
      health.setStatus(NODE_SERVICE_NAME, s);
    },
    async shutdown(graceMs) {
      service.closeStreams();
      // Stop accepting now; a listener's close completes once its last connection is gone.
      const closed = Promise.all(listeners.map((l) => l.close()));
      await Promise.all(servers.map((s) => shutdownGrpcServer(s, graceMs)));
      for (const g of guards) g.destroyAll();
      await closed;
    },
    get openStreams() {
      return service.openStreams;
    },
    get slowWatchersCut() {
      return service.slowWatchersCut;
    },
    get refusedConnections() {
      return guards.reduce((n, g) => n + g.refused, 0);
    },
  };
}
