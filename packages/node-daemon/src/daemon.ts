/** Builds the daemon's component graph and runs its lifecycle: start in order, stop in reverse. */
import type { Logger } from 'pino';
import type { DaemonConfig } from './config/load-config';
import type { Clock } from './engine/domain-manager';
import { DomainManager, systemClock } from './engine/domain-manager';
import { DomainCommands } from './engine/commands';
import { createDriver } from './hypervisor/create-driver';
import type { HypervisorDriver, Signaller } from './hypervisor/hypervisor-driver';
import type { AccelFacts } from './hypervisor/qemu/accel';
import { readAccelFacts } from './hypervisor/qemu/accel';
import { FileJournal } from './journal/file-journal';
import type { Journal } from './journal/journal';
import { StateDirLock } from './journal/state-dir';
import type { HostMetrics } from './metrics/host-metrics';
import { SystemInformationMetrics } from './metrics/host-metrics';
import { DaemonMetrics } from './metrics/daemon-metrics';
import type { HookServer } from './hook-api/hook-server';
import { createHookServer } from './hook-api/hook-server';
import { DomainTokens } from './hook-api/tokens';
import { ConfigError, DaemonError } from './errors';
import {
  FailureLimiter,
  InputFileError,
  listenAddress,
  PeerAuthenticator,
  readPem,
  readPemAsync,
  stopInOrder,
  bound,
  toListenError,
  unreadableFiles,
} from '@magrathea/common';
import { Authorizer } from './rpc/authorizer';
import type { RpcServer } from './rpc/rpc-server';
import { createRpcServer } from './rpc/rpc-server';
import type { PeriodicTasks } from './tasks/periodic-tasks';
import { CronTasks } from './tasks/periodic-tasks';
import { ImageCache } from './images/image-cache';
import { hasImageLayer } from './images/image-config';
import type { DomainDisks } from './images/domain-disks';
import type { LifecycleDisks } from './images/lifecycle-disks';
import type * as DomainDisksModule from './images/domain-disks';
import type * as LifecycleDisksModule from './images/lifecycle-disks';

export type DaemonState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface DaemonDeps {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Overrides the configured driver (tests pass a fake or a shared SimulatedDriver). */
  readonly driver?: HypervisorDriver;
  readonly journal?: Journal;
  readonly hostMetrics?: HostMetrics;
  readonly tasks?: PeriodicTasks;
  /** Sends signals to domain processes (the cgroup driver); main.ts passes process.kill. */
  readonly signaller?: Signaller;
  /** Host facts for QEMU's accelerator choice (default: read from /dev/kvm, /proc/cpuinfo). */
  readonly accelFacts?: () => AccelFacts;
  /** The daemon's version, reported in GetNode (default ''). */
  readonly version?: string;
}

/** The node's image cache and the disks of image-based domains (qemu or libvirt driver with a catalogue). */
export function createImageLayer(config: DaemonConfig): { cache: ImageCache; disks: DomainDisks | null } {
  const cache = new ImageCache({ ...config.images.cache, images: config.images.catalogue });
  const { kind } = config.driver;
  if (!hasImageLayer(kind) || config.images.catalogue.length === 0) return { cache, disks: null };
  const hook = config.hookApi;
  // Loaded only for image-based domains (like the drivers in create-driver.ts: not held at idle otherwise).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { DomainDisks } = require('./images/domain-disks') as typeof DomainDisksModule;
  const disks = new DomainDisks({
    driver: kind,
    cache,
    dir: `${config.stateDir}/disks`,
    nodeName: config.nodeName,
    domains: Object.fromEntries(
      config.domains.map((d) => [
        d.name,
        {
          image: d.image,
          hostName: d.hostName ?? `${config.nodeName}-${d.name}`,
          tokenFile: d.tokenFile,
          network: d.network ?? null,
        },
      ]),
    ),
    context: config.context,
    hookApiAddress: config.context?.hookApiAddress ?? (hook ? `${hook.host}:${hook.port}` : null),
    qemuImg: 'qemu-img',
    genisoimage: 'genisoimage',
    openssl: 'openssl',
  });
  return { cache, disks };
}

/** Every file the configuration names that the daemon reads at start: token files and TLS PEM files. */
export function inputFilesOf(config: DaemonConfig): { what: string; file: string }[] {
  const files: { what: string; file: string }[] = [];
  if (config.hookApi)
    config.domains.forEach((d, i) => {
      if (d.tokenFile) files.push({ what: `domains.${i}.tokenFile (domain ${d.name})`, file: d.tokenFile });
    });
  const tls = config.listen.tls;
  if (tls) for (const k of ['ca', 'cert', 'key'] as const) files.push({ what: `listen.tls.${k}`, file: tls[k] });
  return files;
}

export interface Listening {
  readonly tcpPort: number | null;
  readonly unixSocket: string | null;
  readonly hookPort: number | null;
}

export class Daemon {
  private stateValue: DaemonState = 'created';
  readonly manager: DomainManager;
  readonly driver: HypervisorDriver;
  private readonly journal: Journal;
  private readonly hostMetrics: HostMetrics;
  private readonly tasks: PeriodicTasks;
  private readonly rpc: RpcServer;
  private readonly tokens = new DomainTokens();
  private readonly hook: HookServer | null;
  private readonly auth: Authorizer;
  private readonly hookLimiter: FailureLimiter;
  /** One daemon per state directory (null with an injected journal: tests). */
  private readonly lock: StateDirLock | null;
  /** Prometheus metrics, served on the hook API's GET /metrics. */
  readonly metrics: DaemonMetrics;
  private readonly log: Logger;
  private stopping: Promise<number> | null = null;
  /** The node's image cache. */
  readonly images: ImageCache;
  /** Disks of image-based domains (null: no domain runs a catalogue image). */
  readonly disks: DomainDisks | null;
  /** Golden and kept overlays of domains with a per-job lifecycle (image-based ones), or null. */
  readonly lifecycleDisks: LifecycleDisks | null;

  constructor(
    readonly config: DaemonConfig,
    deps: DaemonDeps,
  ) {
    const clock = deps.clock ?? systemClock;
    this.log = deps.logger;
    // A missing token or certificate file is found before anything starts (exit 66).
    const unreadable = unreadableFiles(inputFilesOf(config));
    if (unreadable.length > 0) throw new InputFileError(unreadable);
    const layer = createImageLayer(config);
    this.images = layer.cache;
    this.disks = layer.disks;
    this.lifecycleDisks = layer.disks
      ? // eslint-disable-next-line @typescript-eslint/no-require-imports
        new (require('./images/lifecycle-disks') as typeof LifecycleDisksModule).LifecycleDisks(
          layer.disks,
          Object.fromEntries(config.domains.map((d) => [d.name, d.keepFailed ?? 0])),
          () => clock.now(),
        )
      : null;
    this.driver =
      deps.driver ??
      createDriver(config.driver, {
        commands: Object.fromEntries(config.domains.map((d) => [d.name, d.command])),
        modes: Object.fromEntries(config.domains.map((d) => [d.name, d.preemption])),
        vms: Object.fromEntries(config.domains.flatMap((d) => (d.vm ? [[d.name, d.vm]] : []))),
        accelFacts: deps.accelFacts ?? readAccelFacts,
        disks: this.disks,
        lifecycles: Object.fromEntries(
          config.domains.flatMap((d) =>
            d.lifecycle === 'revert' || d.lifecycle === 'reboot' ? [[d.name, d.lifecycle]] : [],
          ),
        ),
        lifecycleDisks: this.lifecycleDisks,
        libvirtNames: Object.fromEntries(config.domains.map((d) => [d.name, d.libvirtName ?? d.name])),
        signaller:
          deps.signaller ??
          (() => {
            throw new Error('no signaller given to the daemon');
          }),
      });
    this.journal = deps.journal ?? new FileJournal(config.stateDir);
    this.lock = deps.journal ? null : new StateDirLock(config.stateDir);
    const mono = clock.monotonicMs ?? (() => performance.now());
    this.hostMetrics = deps.hostMetrics ?? new SystemInformationMetrics(clock);
    this.tasks = deps.tasks ?? new CronTasks(deps.logger.child({ component: 'tasks' }));
    this.manager = new DomainManager(
      {
        nodeName: config.nodeName,
        domains: config.domains,
        snapshotEvery: config.snapshotEvery,
        eventBacklog: config.eventBacklog,
        flapDamping: config.flapDamping,
        version: deps.version ?? '',
        ...(config.cpuCounting ? { cpuCounting: config.cpuCounting } : {}),
      },
      {
        journal: this.journal,
        driver: this.driver,
        clock,
        logger: deps.logger,
        hostSample: () => this.hostMetrics.latest(),
        onCommitted: (o) => this.metrics.commandCommitted(o),
        onReset: (domain, r) => this.metrics.domainReset(domain, r),
        keptOverlays: (domain) => this.lifecycleDisks?.keptOf(domain) ?? [],
        ...(this.disks ? { images: this.disks } : {}),
        // Loudly: health says NOT_SERVING while no command can be made durable.
        onStorage: (problem) => {
          if (this.stateValue === 'running') this.rpc.setServing(problem === null);
        },
      },
    );
    const commands = new DomainCommands(this.manager, deps.logger);
    const tls = config.listen.tls;
    let authenticator: PeerAuthenticator | null = null;
    if (tls) {
      try {
        authenticator = new PeerAuthenticator(readPem(tls.ca, 'listen.tls.ca: CA certificate'), tls.clients);
      } catch (err) {
        throw new ConfigError([(err as Error).message]);
      }
    }
    this.auth = new Authorizer(
      authenticator,
      config.limits.authFailuresPerMinute,
      deps.logger.child({ component: 'auth' }),
      mono,
      config.listen.unixSocket,
    );
    this.rpc = createRpcServer({
      manager: this.manager,
      commands,
      logger: deps.logger,
      auth: this.auth,
      limits: config.limits,
      heartbeatMs: config.heartbeatMs,
      tls,
      images: { cache: this.images, maxBytes: config.images.cache.maxBytes },
    });
    this.hookLimiter = new FailureLimiter(config.limits.authFailuresPerMinute, 60_000, mono);
    this.metrics = new DaemonMetrics({
      nodeName: config.nodeName,
      manager: this.manager,
      grpcAuth: () => this.auth.counters,
      hookAuth: this.hookLimiter,
      watchStreams: () => this.rpc.openStreams,
      slowWatchersCut: () => this.rpc.slowWatchersCut,
      connectionsRefused: () => ({ grpc: this.rpc.refusedConnections, hook: this.hook?.refusedConnections ?? 0 }),
      host: () => this.hostMetrics.latest(),
    });
    this.hook = config.hookApi
      ? createHookServer(
          {
            manager: this.manager,
            commands,
            tokens: this.tokens,
            logger: deps.logger,
            limiter: this.hookLimiter,
            metrics: this.metrics,
          },
          {
            ...config.hookApi,
            connections: {
              maxConnections: config.limits.maxConnections,
              maxPerSource: config.limits.maxConnectionsPerSource,
            },
          },
        )
      : null;
  }

  private tokenSources(): { domain: string; file: string }[] {
    return this.config.domains.flatMap((d) => (d.tokenFile ? [{ domain: d.name, file: d.tokenFile }] : []));
  }

  /**
   * SIGHUP: re-reads the domains' hook API tokens and the site CA, off the event loop (a token
   * file that is a FIFO or a device is refused, never waited for). On any problem the old tokens
   * and CA stay in force. (Server certificates are re-read by the TLS layer by itself.)
   */
  async reloadTokens(): Promise<string[]> {
    const tls = this.config.listen.tls;
    if (tls) {
      try {
        this.auth.setCa(await readPemAsync(tls.ca, 'CA certificate'));
      } catch (err) {
        this.log.error({ err }, 'CA reload failed; the previous CA stays in force');
      }
    }
    const { problems, warnings } = await this.tokens.load(this.tokenSources());
    for (const w of warnings) this.log.warn({ warning: w }, 'hook API token file readable by others');
    if (problems.length > 0) this.log.error({ problems }, 'token reload failed; the previous tokens stay in force');
    else this.log.info({ domains: this.tokens.size }, 'hook API tokens reloaded');
    return [...problems];
  }

  get state(): DaemonState {
    return this.stateValue;
  }

  /** Journal replay → driver → metrics → reconcile → periodic tasks → listeners → health SERVING. */
  async start(): Promise<Listening> {
    if (this.stateValue !== 'created') throw new Error(`cannot start a daemon that is ${this.stateValue}`);
    this.stateValue = 'starting';
    try {
      if (this.hook) {
        const { problems, warnings } = await this.tokens.load(this.tokenSources());
        if (problems.length > 0) throw new ConfigError([...problems]);
        for (const w of warnings) this.log.warn({ warning: w }, 'hook API token file readable by others');
      }
      // The lock first: nothing of the state directory (nor the socket) is touched while another daemon holds it.
      if (this.lock) await this.lock.acquire();
      this.manager.recover();
      await this.manager.startDriver();
      // Sampling CPU load takes ~0.5 s; GetNode reports host metrics once the first sample is in.
      void this.hostMetrics.refresh().catch((err: unknown) => this.log.warn({ err }, 'host metrics unavailable'));
      await this.manager.reconcile();
      this.tasks.add('reconcile', this.config.reconcileCron, () => this.manager.reconcile());
      this.tasks.add('host-metrics', this.config.metricsCron, () => this.hostMetrics.refresh());
      // domains[].idleShutdownMs: checked every second (the idle time is exact to about a second).
      if (this.config.domains.some((d) => (d.idleShutdownMs ?? 0) > 0))
        this.tasks.add('idle-shutdown', { everyMs: 1000 }, () => this.manager.shutDownIdle());
      let tcpPort: number | null = null;
      const { tcp, unixSocket } = this.config.listen;
      if (tcp) tcpPort = await bound('gRPC', listenAddress(tcp.host, tcp.port), this.rpc.listenTcp(tcp.host, tcp.port));
      if (unixSocket) {
        // A socket another process answers on is refused as the daemon's own error (exit 75), not
        // read as a failed bind.
        await this.rpc.listenUnix(unixSocket).catch((err: unknown) => {
          throw err instanceof DaemonError ? err : toListenError(err, 'gRPC socket', `unix:${unixSocket}`);
        });
      }
      const api = this.config.hookApi;
      const hookPort =
        this.hook && api
          ? await bound('hook API', listenAddress(api.host, api.port), this.hook.listen(api.host, api.port))
          : null;
      this.rpc.setServing(true);
      this.stateValue = 'running';
      const listening = { tcpPort, unixSocket: this.config.listen.unixSocket, hookPort };
      this.log.info(
        {
          node: this.config.nodeName,
          driver: this.driver.kind,
          generation: this.manager.current.generation,
          ...listening,
        },
        'magrathead ready',
      );
      return listening;
    } catch (err) {
      // The caller logs why; the components started so far are stopped first.
      this.stateValue = 'failed';
      await this.stop().catch(() => undefined);
      this.stateValue = 'failed';
      throw err;
    }
  }

  /**
   * Idempotent graceful stop: health NOT_SERVING, periodic tasks, gRPC (streams ended, calls
   * finished or cut after the grace time), the command queue, the driver, the journal.
   * Returns an exit code: 0, or 1 when a component failed to stop cleanly.
   */
  stop(): Promise<number> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<number> {
    const wasFailed = this.stateValue === 'failed';
    this.stateValue = 'stopping';
    const grace = this.config.shutdownGraceMs;
    const code = await stopInOrder(
      [
        { name: 'health', stop: () => this.rpc.setServing(false) },
        { name: 'tasks', stop: () => this.tasks.stop() },
        { name: 'hook-api', stop: () => this.hook?.close(grace) },
        { name: 'rpc', stop: () => this.rpc.shutdown(grace) },
        { name: 'manager', stop: () => this.manager.drain() },
        { name: 'driver', stop: () => this.driver.stop() },
        { name: 'journal', stop: () => this.journal.close() },
        { name: 'state-lock', stop: () => this.lock?.release() },
      ],
      this.log,
    );
    this.stateValue = wasFailed ? 'failed' : 'stopped';
    // After a failed start "stopped" would read as a clean exit: the failure is logged by the caller.
    if (wasFailed) this.log.debug({ code }, 'components stopped after a failed start');
    else this.log.info({ code }, 'magrathead stopped');
    return code;
  }
}
