/** NodeService handlers: decode → validate → DomainManager → encode. Errors go through toGrpcStatus only. */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type {
  DomainActionResponseInput,
  EndJobResponseInput,
  NodeInput,
  NodeServiceHandlers,
  StartJobResponseInput,
} from '@magrathea/common';
import type { DomainManager } from '../domain-manager';
import { StreamRegistry } from '@magrathea/common';
import { DomainNotFoundError, ResourceExhaustedError } from '../errors';
import type { Authorizer } from './authorizer';
import { toGrpcStatus } from './to-grpc-status';
import { checkAction, checkCpus, checkDomain, checkGeneration, checkJobId, checkReason } from './validate';

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

export interface NodeServiceDeps {
  readonly manager: DomainManager;
  readonly logger: Logger;
  readonly auth: Authorizer;
  /** Open WatchNode streams allowed per client identity (per peer for local callers). */
  readonly maxStreamsPerClient: number;
}

export interface NodeServiceImpl {
  readonly handlers: NodeServiceHandlers;
  /** Ends every open watch stream (shutdown). */
  closeStreams(): void;
  readonly openStreams: number;
}

export function createNodeService({ manager, logger, auth, maxStreamsPerClient }: NodeServiceDeps): NodeServiceImpl {
  const log = logger.child({ component: 'rpc' });
  const streams = new StreamRegistry();
  const perClient = new Map<string, number>();

  const known = (domain: string): string => {
    if (!manager.hasDomain(domain)) throw new DomainNotFoundError(domain);
    return domain;
  };

  const handlers: NodeServiceHandlers = {
    GetNode: unary(log, auth, 'GetNode', (): Promise<NodeInput> => Promise.resolve(manager.view())),

    StartJob: unary(log, auth, 'StartJob', async (req): Promise<StartJobResponseInput> => {
      const domain = known(checkDomain(req.domain));
      const jobId = checkJobId(req.job_id);
      const cpus = checkCpus(req.cpus);
      const expectedGeneration = checkGeneration(req.expected_generation);
      const o = await manager.execute({
        kind: 'start-job',
        domain,
        jobId,
        preemptible: req.preemptible,
        cpus,
        expectedGeneration,
      });
      return {
        generation: String(o.generation),
        preempted: [...o.result.preempted],
        already_running: o.result.noop,
        state: o.state,
        phases: [...o.phases],
      };
    }),

    EndJob: unary(log, auth, 'EndJob', async (req): Promise<EndJobResponseInput> => {
      const domain = known(checkDomain(req.domain));
      const jobId = checkJobId(req.job_id);
      const o = await manager.execute({ kind: 'end-job', domain, jobId });
      if (o.result.warning) log.warn({ domain, jobId, warning: o.result.warning }, 'end of an unknown job');
      return {
        generation: String(o.generation),
        resumed: [...o.result.resumed],
        warning: o.result.warning,
        state: o.state,
        phases: [...o.phases],
      };
    }),

    DomainAction: unary(log, auth, 'DomainAction', async (req): Promise<DomainActionResponseInput> => {
      const domain = known(checkDomain(req.domain));
      const action = checkAction(req.action);
      const reason = checkReason(req.reason);
      const o = await manager.execute({ kind: 'action', domain, action, reason });
      return { generation: String(o.generation), state: o.state };
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
      streams.add(
        call,
        manager.hub.subscribe((e) => call.write(e)),
      );
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
