/** The gRPC server: NodeService, standard health and server reflection, on TCP and/or a Unix socket. */
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import type { Logger } from 'pino';
import { loadMagratheaApi, loadPackageDefinition, serverTlsCredentials, shutdownGrpcServer } from '@magrathea/common';
import type { TlsFiles } from '@magrathea/common';
import type { Authorizer } from './authorizer';
import type { DomainManager } from '../engine/domain-manager';
import type { DomainCommands } from '../engine/commands';
import { createNodeService } from './node-service';

export const NODE_SERVICE_NAME = 'magrathea.v1.NodeService';

export interface RpcServer {
  /** Binds to `host:port` (port 0 picks one); returns the bound port. */
  listenTcp(host: string, port: number): Promise<number>;
  /** Binds to a Unix socket and makes it mode 0600. */
  listenUnix(path: string): Promise<void>;
  setServing(serving: boolean): void;
  /** Graceful shutdown, forced after `graceMs`. */
  shutdown(graceMs: number): Promise<void>;
  readonly openStreams: number;
}

export interface RpcServerDeps {
  readonly manager: DomainManager;
  /** The job and domain commands (shared with the hook API). */
  readonly commands: DomainCommands;
  readonly logger: Logger;
  readonly auth: Authorizer;
  readonly maxStreamsPerClient: number;
  /** A quiet watch stream gets a heartbeat this often, ms. */
  readonly heartbeatMs: number;
  /** mTLS on TCP, or null for plaintext (loopback only, unless the config allows more). */
  readonly tls: TlsFiles | null;
}

export function createRpcServer(deps: RpcServerDeps): RpcServer {
  const definition = loadPackageDefinition();
  const api = loadMagratheaApi(definition);
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 });
  const service = createNodeService(deps);
  server.addService(api.magrathea.v1.NodeService.service, service.handlers);
  const health = new HealthImplementation({ '': 'NOT_SERVING', [NODE_SERVICE_NAME]: 'NOT_SERVING' });
  health.addToServer(server);
  new ReflectionService({ ...definition, ...protoLoader.loadSync(healthProtoPath) }).addToServer(server);
  const log = deps.logger.child({ component: 'rpc' });

  const bind = (target: string, creds: grpc.ServerCredentials): Promise<number> =>
    new Promise((resolve, reject) => {
      server.bindAsync(target, creds, (err, port) => (err ? reject(err) : resolve(port)));
    });

  return {
    async listenTcp(host, port) {
      const creds = deps.tls ? await serverTlsCredentials(deps.tls) : grpc.ServerCredentials.createInsecure();
      const bound = await bind(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`, creds);
      log.info({ host, port: bound, tls: deps.tls !== null }, 'listening on tcp');
      return bound;
    },
    async listenUnix(path) {
      try {
        if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path);
      } catch {
        // No stale socket to remove.
      }
      await bind(`unix:${path}`, grpc.ServerCredentials.createInsecure());
      fs.chmodSync(path, 0o600);
      log.info({ path }, 'listening on unix socket');
    },
    setServing(serving) {
      const s = serving ? 'SERVING' : 'NOT_SERVING';
      health.setStatus('', s);
      health.setStatus(NODE_SERVICE_NAME, s);
    },
    shutdown(graceMs) {
      service.closeStreams();
      return shutdownGrpcServer(server, graceMs);
    },
    get openStreams() {
      return service.openStreams;
    },
  };
}
