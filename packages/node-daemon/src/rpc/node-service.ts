/**
 * NodeService handlers: decode → engine commands (validation included) → encode. Errors go
 * through toGrpcStatus only. One set of handlers per listener (the transport decides what a
 * caller may do, see authorizer.ts); the watch streams and their limits are shared by all.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  DomainActionResponseInput,
  SetImageResponseInput,
  EndJobResponseInput,
  NodeEventInput,
  NodeInput,
  NodeServiceHandlers,
  StartJobResponseInput,
} from '@magrathea/common';
import { StreamPump, StreamRegistry } from '@magrathea/common';
import type { Principal } from '@magrathea/common';
import type { DomainManager } from '../engine/domain-manager';
import type { DomainCommands } from '../engine/commands';
import { InvalidArgumentError, PermissionDeniedError, ResourceExhaustedError } from '../errors';
import type { Authorizer, Transport } from './authorizer';
import { toGrpcStatus } from './to-grpc-status';
import { checkGeneration } from '../engine/validate';
import { jobRefView } from '../engine/view';
import type { ImageCache } from '../images/image-cache';
import { imageMethods } from './image-handlers';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What NodeService's handlers use. */
export interface NodeServiceDeps {
  readonly manager: DomainManager;
  /** The node's image cache and its size limit (ListImages, PullImage, RemoveImage). */
  readonly images?: { readonly cache: ImageCache; readonly maxBytes: number } | undefined;
  /** The job and domain commands (shared with the hook API). */
  readonly commands: DomainCommands;
  readonly logger: Logger;
  readonly auth: Authorizer;
  /** Open WatchNode streams allowed per client identity, on every listener. */
  readonly maxStreamsPerClient: number;
  /** Open WatchNode streams allowed in all. */
  readonly maxStreams: number;
  /** Events waiting for one watcher before it is cut off as too slow. */
  readonly maxQueuedEvents: number;
  /** A quiet watch stream gets a heartbeat this often, ms. */
  readonly heartbeatMs: number;
}

/** The handlers and the open watch streams. */
export interface NodeServiceImpl {
  /** The handlers for calls that come in on `transport`. */
  handlers(transport: Transport): NodeServiceHandlers;
  /** Ends every open watch stream (shutdown). */
  closeStreams(): void;
  readonly openStreams: number;
  /** Watchers cut off for not keeping up. */
  readonly slowWatchersCut: number;
}

/** NodeService: GetNode and WatchNode over the manager, the job and domain commands through engine/commands.ts. */
export function createNodeService({
  manager,
  commands,
  logger,
  auth,
  maxStreamsPerClient,
  maxStreams,
  maxQueuedEvents,
  heartbeatMs,
  images,
}: NodeServiceDeps): NodeServiceImpl {
  const log = logger.child({ component: 'rpc' });
  const streams = new StreamRegistry();
  const perClient = new Map<string, number>();
  let slowCut = 0;

  /** Wraps an async handler after authorization; the wrapper is the only code that calls `callback`. */
  const unary =
    <Req, Res>(
      transport: Transport,
      method: string,
      fn: (req: Req, principal: Principal) => Promise<Res>,
    ): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      Promise.resolve()
        .then(async () => {
          const a = auth.authorize(call, method, transport);
          if (!a.ok) {
            if (a.delayMs > 0) await sleep(a.delayMs);
            throw a.error;
          }
          return fn(call.request, a.principal);
        })
        .then(
          (res) => callback(null, res),
          (err: unknown) => callback(toGrpcStatus(err, log, method)),
        );
    };

  const watch =
    (transport: Transport): NodeServiceHandlers['WatchNode'] =>
    (call) => {
      void (async () => {
        let since: number;
        let client: string;
        try {
          const a = auth.authorize(call, 'WatchNode', transport);
          if (!a.ok) {
            if (a.delayMs > 0) await sleep(a.delayMs);
            throw a.error;
          }
          client = a.principal.identity;
          if ((perClient.get(client) ?? 0) >= maxStreamsPerClient)
            throw new ResourceExhaustedError(`at most ${maxStreamsPerClient} open watch streams per client`);
          if (streams.size >= maxStreams)
            throw new ResourceExhaustedError(`at most ${maxStreams} open watch streams in all`);
          since = checkGeneration(call.request.since_generation);
        } catch (err) {
          call.emit('error', toGrpcStatus(err, log, 'WatchNode'));
          return;
        }
        if (call.cancelled) return;
        serveWatch(call, client, since);
      })();
    };

  const serveWatch = (
    call: grpc.ServerWritableStream<unknown, NodeEventInput>,
    client: string,
    since: number,
  ): void => {
    perClient.set(client, (perClient.get(client) ?? 0) + 1);
    let released = false;
    const releaseOnce = (): void => {
      if (released) return;
      released = true;
      const n = (perClient.get(client) ?? 1) - 1;
      if (n <= 0) perClient.delete(client);
      else perClient.set(client, n);
    };
    call.on('cancelled', releaseOnce);
    call.on('close', releaseOnce);
    call.on('finish', releaseOnce);
    call.on('error', releaseOnce);
    let lastGeneration = since;
    const pump = new StreamPump<NodeEventInput>(call, maxQueuedEvents, () => {
      slowCut++;
      log.warn({ client, queued: maxQueuedEvents, generation: lastGeneration }, 'watcher too slow; stream cut off');
      call.emit('error', {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `watch stream too slow: more than ${maxQueuedEvents} events were waiting; resume with since_generation=${lastGeneration}`,
      });
    });
    const send = (e: NodeEventInput): void => {
      if (pump.push(e)) lastGeneration = Number(e.generation);
    };
    const current = manager.current.generation;
    // A replay longer than half the queue would start the watcher behind: a snapshot instead.
    const replay = since > 0 ? manager.hub.since(since, current) : null;
    const backlog = replay && replay.length <= maxQueuedEvents / 2 ? replay : null;
    // Headers now, so a watcher that resumes with nothing to replay still learns it is in sync.
    call.sendMetadata(new grpc.Metadata());
    // Snapshot/backlog and subscription happen in the same tick: no event can slip between them.
    if (backlog === null) send({ generation: current, snapshot: manager.view() });
    else for (const e of backlog) send(e);
    // An idle daemon still speaks: a heartbeat whenever the stream has been quiet that long.
    let lastWrite = performance.now(); // monotonic: a clock step neither silences nor floods the stream
    const unsubscribe = manager.hub.subscribe((e) => {
      lastWrite = performance.now();
      send(e);
    });
    const beat = setInterval(() => {
      if (performance.now() - lastWrite < heartbeatMs * 0.9 || pump.queued > 0) return;
      lastWrite = performance.now();
      send({
        generation: manager.current.generation,
        heartbeat: { at_ms: Date.now(), interval_ms: heartbeatMs },
      });
    }, heartbeatMs);
    beat.unref();
    streams.add(call, () => {
      clearInterval(beat);
      unsubscribe();
    });
  };

  const handlers = (transport: Transport): NodeServiceHandlers => ({
    GetNode: unary(transport, 'GetNode', (): Promise<NodeInput> => Promise.resolve(manager.view())),

    StartJob: unary(transport, 'StartJob', async (req): Promise<StartJobResponseInput> => {
      const r = await commands.startJob(req);
      return {
        generation: r.generation,
        preempted: [...r.preempted],
        already_running: r.alreadyRunning,
        state: r.state,
        phases: [...r.phases],
        suspended_jobs: r.suspendedJobs.map(jobRefView),
      };
    }),

    EndJob: unary(transport, 'EndJob', async (req): Promise<EndJobResponseInput> => {
      const r = await commands.endJob(req);
      return {
        generation: r.generation,
        resumed: [...r.resumed],
        warning: r.warning,
        state: r.state,
        phases: [...r.phases],
        resumed_jobs: r.resumedJobs.map(jobRefView),
      };
    }),

    DomainAction: unary(transport, 'DomainAction', async (req, principal): Promise<DomainActionResponseInput> => {
      // The filter's certificate may only wake a domain for a queued job (domains[].wakeOnDemand).
      if (principal.role === 'filter') {
        const refusal =
          req.action === 'boot' ? manager.wakeRefusal(req.domain) : 'the filter may only boot (wake) a domain';
        if (refusal !== null) throw new PermissionDeniedError(`${principal.identity}: ${refusal}`);
      }
      const r = await commands.domainAction(req);
      return { generation: r.generation, state: r.state };
    }),

    SetImage: unary(transport, 'SetImage', async (req): Promise<SetImageResponseInput> => {
      const r = await commands.setImage(req);
      return {
        generation: r.generation,
        state: r.state,
        lost_jobs: [...r.lostJobs],
        waiting_for_jobs: r.waitingForJobs,
      };
    }),

    WatchNode: watch(transport),

    ...imageHandlers(transport),
  });

  const imageHandlers = (transport: Transport) => {
    const m = images ? imageMethods(images.cache, images.maxBytes) : null;
    const none = (): never => {
      throw new InvalidArgumentError('this node has no image cache');
    };
    return {
      ListImages: unary(transport, 'ListImages', () => (m ? m.list() : none())),
      PullImage: unary(transport, 'PullImage', (req: { name?: string }) => (m ? m.pull(req) : none())),
      RemoveImage: unary(transport, 'RemoveImage', (req: { name?: string }) => (m ? m.remove(req) : none())),
    };
  };

  return {
    handlers,
    closeStreams: () => streams.endAll(),
    get openStreams() {
      return streams.size;
    },
    get slowWatchersCut() {
      return slowCut;
    },
  };
}
