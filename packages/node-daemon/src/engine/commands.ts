/**
 * The job and domain commands, written once for both edges: gRPC `NodeService` and the HTTP
 * hook API decode their requests into raw fields, call these, and encode the typed results.
 * Raw fields are validated here (bad input changes nothing), then the command is queued on
 * the DomainManager. Errors are typed (`errors.ts`); each edge maps them in its one place.
 */
import type { Logger } from 'pino';
import type { DomainActionName, PhaseInput } from '@magrathea/common';
import type { JobRef } from '../domain';
import { DomainNotFoundError, RefusedError } from '../errors';
import type { DomainManager } from './domain-manager';
import {
  checkAction,
  checkCpus,
  checkDomain,
  checkGeneration,
  checkExitStatus,
  checkImage,
  checkJobId,
  checkNow,
  checkPreemptible,
  checkReason,
} from './validate';

/** Who is asking: limits what a request may name. */
export interface CommandScope {
  /** The domain a request that names none acts on (the hook API: the token's domain). */
  readonly defaultDomain?: string;
  /** Throws when the caller may not act on the domain (the hook API: a token acts only on its own). */
  readonly authorize?: (domain: string) => void;
}

/** StartJob's raw request fields (the proto's names; the hook API's JSON uses the same). */
export interface StartJobFields {
  readonly domain?: unknown;
  readonly job_id?: unknown;
  readonly preemptible?: unknown;
  readonly cpus?: unknown;
  readonly expected_generation?: unknown;
}

/** EndJob's raw request fields. */
export interface EndJobFields {
  readonly domain?: unknown;
  readonly job_id?: unknown;
  /** The job's exit status (the hook API: a number or absent; gRPC: with has_exit_status). */
  readonly exit_status?: unknown;
  readonly has_exit_status?: unknown;
}

/** DomainAction's raw request fields. */
export interface DomainActionFields {
  readonly domain?: unknown;
  readonly action?: unknown;
  readonly reason?: unknown;
}

/** SetImage's raw request fields. */
export interface SetImageFields {
  readonly domain?: unknown;
  readonly image?: unknown;
  readonly now?: unknown;
}

/** What every accepted command reports. */
export interface CommandDone {
  /** The command's domain (resolved from the request and the scope). */
  readonly domain: string;
  /** Node generation after the command. */
  readonly generation: number;
  /** Reported state of the domain afterwards. */
  readonly state: string;
  /** Driver operations run, with their durations. */
  readonly phases: readonly PhaseInput[];
}

/** An accepted StartJob. */
export interface JobStarted extends CommandDone {
  /** Domains preempted to make room. */
  readonly preempted: readonly string[];
  /** The job was already running (an idempotent retry). */
  readonly alreadyRunning: boolean;
  /** Jobs suspended to make room (CPU-counting mode: only these). */
  readonly suspendedJobs: readonly JobRef[];
}

/** An accepted EndJob. */
export interface JobEnded extends CommandDone {
  /** Domains resumed because no priority work runs any more. */
  readonly resumed: readonly string[];
  /** Set when the job was unknown (the end still succeeds: end hooks retry). */
  readonly warning: string;
  /** Jobs resumed because CPUs became free. */
  readonly resumedJobs: readonly JobRef[];
}

/** An accepted DomainAction. */
export type ActionDone = CommandDone & { readonly action: DomainActionName };

/** An accepted SetImage. */
export interface ImageSet extends CommandDone {
  readonly image: string;
  /** Jobs ended by `now` (reported lost). */
  readonly lostJobs: readonly string[];
  /** The switch waits for the domain's running jobs to end. */
  readonly waitingForJobs: boolean;
}

/** The job and domain commands over one DomainManager. */
export class DomainCommands {
  private readonly log: Logger;

  constructor(
    private readonly manager: DomainManager,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'commands' });
  }

  /** The domain a request acts on: validated, allowed for the caller, and known on this node. */
  domainOf(requested: unknown, scope: CommandScope = {}): string {
    const domain =
      requested === undefined && scope.defaultDomain !== undefined ? scope.defaultDomain : checkDomain(requested);
    scope.authorize?.(domain);
    if (!this.manager.hasDomain(domain)) throw new DomainNotFoundError(domain);
    return domain;
  }

  /** StartJob. A refusal is a RefusedError that carries the domain (the edge reports its status with it). */
  async startJob(f: StartJobFields, scope: CommandScope = {}): Promise<JobStarted> {
    const domain = this.domainOf(f.domain, scope);
    const jobId = checkJobId(f.job_id);
    const preemptible = checkPreemptible(f.preemptible);
    const cpus = checkCpus(f.cpus);
    const expectedGeneration = checkGeneration(f.expected_generation);
    try {
      const o = await this.manager.execute({ kind: 'start-job', domain, jobId, preemptible, cpus, expectedGeneration });
      return {
        domain,
        generation: o.generation,
        state: o.state,
        phases: o.phases,
        preempted: o.result.preempted,
        alreadyRunning: o.result.noop,
        suspendedJobs: o.result.suspendedJobs,
      };
    } catch (err) {
      throw err instanceof RefusedError ? err.inDomain(domain) : err;
    }
  }

  /** EndJob: an unknown job succeeds with a warning. */
  async endJob(f: EndJobFields, scope: CommandScope = {}): Promise<JobEnded> {
    const domain = this.domainOf(f.domain, scope);
    const jobId = checkJobId(f.job_id);
    const exitStatus =
      f.has_exit_status === undefined
        ? checkExitStatus(f.exit_status)
        : checkExitStatus(f.exit_status, f.has_exit_status);
    const o = await this.manager.execute(
      exitStatus === undefined ? { kind: 'end-job', domain, jobId } : { kind: 'end-job', domain, jobId, exitStatus },
    );
    if (o.result.warning) this.log.warn({ domain, jobId, warning: o.result.warning }, 'end of an unknown job');
    return {
      domain,
      generation: o.generation,
      state: o.state,
      phases: o.phases,
      resumed: o.result.resumed,
      warning: o.result.warning,
      resumedJobs: o.result.resumedJobs,
    };
  }

  /** DomainAction: boot, down, reboot, freeze, defrost, offline, online, remove. */
  async domainAction(f: DomainActionFields, scope: CommandScope = {}): Promise<ActionDone> {
    const domain = this.domainOf(f.domain, scope);
    const action = checkAction(f.action);
    const reason = checkReason(f.reason);
    const o = await this.manager.execute({ kind: 'action', domain, action, reason });
    return { domain, action, generation: o.generation, state: o.state, phases: o.phases };
  }

  /**
   * SetImage: refused (nothing changes) for an image not in the catalogue, the image the domain
   * runs, or a domain without a catalogue image. The image is downloaded first (a bad digest
   * refuses the switch, the domain keeps running its image), then the journalled command drains
   * or switches the domain.
   */
  async setImage(f: SetImageFields, scope: CommandScope = {}): Promise<ImageSet> {
    const domain = this.domainOf(f.domain, scope);
    const image = checkImage(f.image);
    const now = checkNow(f.now);
    if (!this.manager.imageBacked(domain))
      throw new RefusedError(
        'not-image-backed',
        `domain ${domain} runs no catalogue image (domains[].image); set-image switches only image-backed domains (qemu or libvirt driver)`,
      );
    if (!this.manager.imageKnown(image))
      throw new RefusedError('unknown-image', `no image named "${image}" in this node's catalogue (images[])`);
    const pending = this.manager.current.domains.find((d) => d.name === domain)?.pendingImage;
    if (pending === undefined && this.manager.imageOf(domain) === image)
      throw new RefusedError('same-image', `domain ${domain} runs image ${image} already`);
    await this.manager.pullImage(image);
    const o = await this.manager.execute({ kind: 'set-image', domain, image, now });
    const d = o.result.next.domains.find((x) => x.name === domain);
    this.log.info({ domain, image, now, lostJobs: o.result.lostJobs.length }, 'set-image accepted');
    return {
      domain,
      image,
      generation: o.generation,
      state: o.state,
      phases: o.phases,
      lostJobs: o.result.lostJobs.map((j) => j.id),
      waitingForJobs: d !== undefined && d.pendingImage === image && d.jobs.length > 0,
    };
  }
}
