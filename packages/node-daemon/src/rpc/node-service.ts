/** NodeService handlers: decode → engine commands (validation included) → encode. Errors go through toGrpcStatus only. */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  DomainActionResponseInput,
  EndJobResponseInput,
  NodeInput,
  NodeServiceHandlers,
  StartJobResponseInput,
} from '@magrathea/common';
import type { DomainManager } from '../engine/domain-manager';
import type { DomainCommands } from '../engine/commands';
import { StreamRegistry } from '@magrathea/common';
import { ResourceExhaustedError } from '../errors';
import type { Authorizer } from './authorizer';
import { toGrpcStatus } from './to-grpc-status';
import { checkGeneration } from '../engine/validate';

/** Wraps an async handler after authorization; the wrapper is the only code that calls `callback`. */
function unary<Req, Res>(
  logger: Logger,
  auth: Authorizer,
  method: string,
  fn: (req: Req) => Promise<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => {
        auth.authorize(call, method);
        return fn(call.request);
      })
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toGrpcStatus(err, logger, method)),
      );
  };
}

/** What NodeService's handlers use. */
export interface NodeServiceDeps {
  readonly manager: DomainManager;
  /** The job and domain commands (shared with the hook API). */
  readonly commands: DomainCommands;
  readonly logger: Logger;
  readonly auth: Authorizer;
  /** Open WatchNode streams allowed per client identity (per peer for local callers). */
  readonly maxStreamsPerClient: number;
  /** A quiet watch stream gets a heartbeat this often, ms. */
  readonly heartbeatMs: number;
}

/** The handlers and the open watch streams. */
export interface NodeServiceImpl {
  readonly handlers: NodeServiceHandlers;
  /** Ends every open watch stream (shutdown). */
  closeStreams(): void;
  readonly openStreams: number;
}

/** NodeService: GetNode and WatchNode over the manager, the job and domain commands through engine/commands.ts. */
export function createNodeService({
  manager,
  commands,
  logger,
  auth,
  maxStreamsPerClient,
  heartbeatMs,
}: NodeServiceDeps): NodeServiceImpl {
  const log = logger.child({ component: 'rpc' });
  const streams = new StreamRegistry();
  const perClient = new Map<string, number>();

  const handlers: NodeServiceHandlers = {
    GetNode: unary(log, auth, 'GetNode', (): Promise<NodeInput> => Promise.resolve(manager.view())),

    StartJob: unary(log, auth, 'StartJob', async (req): Promise<StartJobResponseInput> => {
      const r = await commands.startJob(req);
      return {
        generation: String(r.generation),
        preempted: [...r.preempted],
        already_running: r.alreadyRunning,
        state: r.state,
        phases: [...r.phases],
      };
    }),

    EndJob: unary(log, auth, 'EndJob', async (req): Promise<EndJobResponseInput> => {
      const r = await commands.endJob(req);
      return {
        generation: String(r.generation),
        resumed: [...r.resumed],
        warning: r.warning,
        state: r.state,
        phases: [...r.phases],
      };
    }),

    DomainAction: unary(log, auth, 'DomainAction', async (req): Promise<DomainActionResponseInput> => {
      const r = await commands.domainAction(req);
      return { generation: String(r.generation), state: r.state };
    }),

    WatchNode: (call) => {
      let since: number;
      let client: string;
      try {
        const principal = auth.authorize(call, 'WatchNode');
        client = principal.local ? `local:${call.getPeer()}` : principal.identity;
        if ((perClient.get(client) ?? 0) >= maxStreamsPerClient)
          throw new ResourceExhaustedError(`at most ${maxStreamsPerClient} open watch streams per client`);
        since = checkGeneration(call.request.since_generation);
      } catch (err) {
        call.emit('error', toGrpcStatus(err, log, 'WatchNode'));
        return;
      }
      perClient.set(client, (perClient.get(client) ?? 0) + 1);
      const release = (): void => {
        const n = (perClient.get(client) ?? 1) - 1;
        if (n <= 0) perClient.delete(client);
        else perClient.set(client, n);
      };
      let released = false;
      const releaseOnce = (): void => {
        if (!released) {
          released = true;
          release();
        }
      };
      call.on('cancelled', releaseOnce);
      call.on('close', releaseOnce);
      call.on('finish', releaseOnce);
      const current = manager.current.generation;
      const backlog = since > 0 ? manager.hub.since(since, current) : null;
      // Headers now, so a watcher that resumes with nothing to replay still learns it is in sync.
      call.sendMetadata(new grpc.Metadata());
      // Snapshot/backlog and subscription happen in the same tick: no event can slip between them.
      if (backlog === null) call.write({ generation: String(current), snapshot: manager.view() });
      else for (const e of backlog) call.write(e);
      // An idle daemon still speaks: a heartbeat whenever the stream has been quiet that long.
      let lastWrite = performance.now(); // monotonic: a clock step neither silences nor floods the stream
      const unsubscribe = manager.hub.subscribe((e) => {
        lastWrite = performance.now();
        call.write(e);
      });
      const beat = setInterval(() => {
        if (performance.now() - lastWrite < heartbeatMs * 0.9) return;
        lastWrite = performance.now();
        call.write({
          generation: String(manager.current.generation),
          heartbeat: { at_ms: String(Date.now()), interval_ms: heartbeatMs },
        });
      }, heartbeatMs);
      beat.unref();
      streams.add(call, () => {
        clearInterval(beat);
        unsubscribe();
      });
    },
  };

  return {
    handlers,
    closeStreams: () => streams.endAll(),
    get openStreams() {
      return streams.size;
    },
  };
}
