/**
 * The daemon's configuration: YAML → validated (every problem reported at once, with the path
 * of the bad field; unknown keys are errors) → compiled into a fully resolved, readonly config.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { DomainClass } from '@magrathea/common';
import {
  ConfigChecker,
  DOMAIN_NAME,
  FileReadError,
  InputFileError,
  LOG_LEVELS,
  MAX_DOMAINS_PER_NODE,
  describeFsError,
  isLoopbackHost,
  parseAddress,
  parseYamlStrict,
  readRegularFileSync,
} from '@magrathea/common';
import type { Role } from '@magrathea/common';
import type { ConfigObject as Obj } from '@magrathea/common';
import { ConfigError } from '../errors';
import { nodeCron } from '../tasks/periodic-tasks';
import type { Schedule } from '../tasks/periodic-tasks';
import type { DriverConfig } from '../hypervisor/create-driver';
import { DRIVER_KINDS, PREEMPTION_MODES } from '../hypervisor/create-driver';
import type { PreemptionMode } from '../hypervisor/create-driver';
import type { QemuVmConfig } from '../hypervisor/qemu/qemu-driver';
import { checkCgroup, checkCgroupDomains, checkCommand, checkCommandUse } from '../hypervisor/cgroup/cgroup-config';
import { checkLibvirt, checkLibvirtName, checkLibvirtNameUse } from '../hypervisor/libvirt/libvirt-config';
import { checkQemu, checkVm, checkVmUse } from '../hypervisor/qemu/qemu-config';
import { checkSimulated } from '../hypervisor/simulated/simulated-config';
import { checkCpuCounting } from './cpu-counting-config';
import type { CpuCountingConfig } from './cpu-counting-config';
import type { ContextConfig, DomainNetwork, ImagesConfig } from '../images/image-config';
import { checkContext, checkImageUse, checkImages, checkNetwork } from '../images/image-config';
import type { Lifecycle } from '../domain';
import { checkLifecycle, checkLifecycleUse } from './lifecycle-config';

export interface DomainConfig {
  readonly name: string;
  readonly class: DomainClass;
  readonly autostart: boolean;
  /** File holding this domain's hook API token (absolute), or null. */
  readonly tokenFile: string | null;
  /** The domain's command (argv), for the cgroup driver; empty otherwise. */
  readonly command: readonly string[];
  /** How the domain is preempted: throttle (default, the original's), pause, or save. */
  readonly preemption: PreemptionMode;
  /** The domain's VM, for the qemu driver; null otherwise. */
  readonly vm: QemuVmConfig | null;
  /** The libvirt domain behind this domain (libvirt driver; default: the same name). */
  readonly libvirtName: string | null;
  /** The image the domain runs, published to PBS as resources_available.magrathea_image ('' for none). */
  readonly image: string;
  /** Host name on the domain's context disk (null: `<node>-<domain>`). */
  readonly hostName?: string | null;
  /** A NIC on a host bridge with a MAC derived from node and domain (null: no NIC). */
  readonly network?: DomainNetwork | null;
  /** What the domain does after each job (default persistent). */
  readonly lifecycle?: Lifecycle;
  /** Overlays of the last N failed jobs kept (lifecycle revert/reboot; default 0). */
  readonly keepFailed?: number;
  /** Woken by the filter for a queued job of its image (default false). */
  readonly wakeOnDemand?: boolean;
  /** Taken down after this long up with no job (0, the default: never). */
  readonly idleShutdownMs?: number;
  /** Not offered for a wake-up this long after a failed boot (default 60000). */
  readonly bootBackoffMs?: number;
}

/** The resolved configuration (see docs/configuration.md for every field, unit and default). */
export interface DaemonConfig {
  readonly nodeName: string;
  readonly stateDir: string;
  readonly listen: {
    /** TCP address of the gRPC server, or null for none. Default 127.0.0.1:5678. */
    readonly tcp: { readonly host: string; readonly port: number } | null;
    /** Unix socket path (mode 0600), or null for none. Default `<stateDir>/magrathead.sock`. */
    readonly unixSocket: string | null;
    /** Allow plaintext gRPC on a non-loopback address. Default false. */
    readonly allowNonLoopback: boolean;
    /** mTLS on the TCP listener, with the roles of client identities; null for plaintext. */
    readonly tls: TlsConfig | null;
  };
  /** A domain dropping (down, failed boot, offline) more than maxFlaps times in windowMs is held out of scheduling for holdMs. */
  readonly flapDamping: { readonly maxFlaps: number; readonly windowMs: number; readonly holdMs: number };
  /** Protection against misbehaving clients. */
  readonly limits: {
    /** Open WatchNode streams per client identity (Unix socket: one identity; plaintext TCP: per source address; TLS: per certificate identity). Default 16. */
    readonly maxStreamsPerClient: number;
    /** Open WatchNode streams in all. Default 256. */
    readonly maxStreams: number;
    /** Events waiting for one watcher before it is cut off (it resumes from its generation). Default 2048. */
    readonly maxQueuedEvents: number;
    /** Open connections per listener (gRPC TCP, gRPC Unix socket, hook API). Default 512. */
    readonly maxConnections: number;
    /** Open connections per listener from one source address. Default 64. */
    readonly maxConnectionsPerSource: number;
    /** A gRPC connection without calls this long is closed, ms. Default 120000. */
    readonly idleConnectionMs: number;
    /** Failed authentications per source within a minute that are answered at once; later ones wait longer and longer. Default 20. */
    readonly authFailuresPerMinute: number;
  };
  readonly driver: DriverConfig;
  readonly domains: readonly DomainConfig[];
  /** CPU-counting mode (partial preemption), or null for exclusive mode (the default). */
  readonly cpuCounting: CpuCountingConfig | null;
  /** The image catalogue and the node's image cache (see docs/configuration.md, images). */
  readonly images: ImagesConfig;
  /** Context disks of the domains (qemu driver with images), or null for none. */
  readonly context: ContextConfig | null;
  /** The HTTP/JSON hook API for the PBS hooks, or null when disabled (the default). */
  readonly hookApi: {
    readonly host: string;
    readonly port: number;
    /** Largest request body, bytes. Default 4096. */
    readonly maxBodyBytes: number;
    /** Whole-request time limit, ms. Default 5000. */
    readonly requestTimeoutMs: number;
  } | null;
  /** When to reconcile: the configured cron expression (with seconds), else every 30 s. */
  readonly reconcileCron: Schedule;
  /** When to refresh host metrics: the configured cron expression, else every 15 s. */
  readonly metricsCron: Schedule;
  /** Journal records between snapshots. Default 1000. */
  readonly snapshotEvery: number;
  /** Events kept in memory for watchers that resume. Default 1024. */
  readonly eventBacklog: number;
  /** A watch stream with nothing to send gets a heartbeat this often, ms. Default 5000. */
  readonly heartbeatMs: number;
  /** Grace time for graceful shutdown before connections are cut, ms. Default 5000. */
  readonly shutdownGraceMs: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

/** Overrides from the command line. */
export interface ConfigOverrides {
  readonly stateDir?: string | undefined;
  readonly listen?: string | undefined;
  readonly socket?: string | undefined;
}

/** The embedded default: one node, `meta` and `egee` (normal) and `priv` (priority), simulated, loopback. */
export const DEFAULT_CONFIG_YAML = `# magrathead embedded default
stateDir: ./.magrathea
listen:
  tcp: 127.0.0.1:5678
driver:
  kind: simulated
domains:
  - { name: meta, class: normal }
  - { name: egee, class: normal }
  - { name: priv, class: priority }
`;

/**
 * A TCP-only address field: HOST:PORT or [IPv6]:PORT. Its problem names only those forms (the
 * CLI's unix:PATH is not one of them here) and, for a socket, the field that takes one.
 */
function tcpAddress(
  c: ConfigChecker,
  field: string,
  text: string,
  socketField: string | null,
): { host: string; port: number } | null {
  const forms = 'must be HOST:PORT or [IPv6]:PORT';
  try {
    const a = parseAddress(text);
    if (a.kind === 'tcp') return { host: a.host, port: a.port };
    c.fail(field, socketField ? `${forms} (a Unix socket goes in ${socketField})` : `${forms}, got "${text}"`);
  } catch (err) {
    const msg = (err as Error).message;
    c.fail(field, /^"/.test(msg) ? `${forms}, got "${text}"` : msg);
  }
  return null;
}

/** A path given by a command-line flag, checked as a path field of the config is (the problem names the flag). */
function flagPath(c: ConfigChecker, flag: string, value: string): string | undefined {
  return c.path({ [flag]: value }, flag, '');
}

/** `listen` (and the --listen/--socket overrides): gRPC on TCP and/or a Unix socket, TLS. */
function checkListen(
  c: ConfigChecker,
  v: unknown,
  overrides: ConfigOverrides,
  stateDir: string,
  baseDir: string,
): DaemonConfig['listen'] {
  const listen = c.object(v, 'listen', ['tcp', 'unixSocket', 'allowNonLoopback', 'tls']);
  const tls = checkTls(c, listen?.tls, baseDir);
  let tcp: DaemonConfig['listen']['tcp'] = { host: '127.0.0.1', port: 5678 };
  const tcpText =
    overrides.listen ??
    (listen && 'tcp' in listen ? (listen.tcp === null ? null : c.string(listen, 'tcp', 'listen')) : undefined);
  const fromFlag = overrides.listen !== undefined;
  const tcpField = fromFlag ? '--listen' : 'listen.tcp';
  if (tcpText === null) tcp = null;
  else if (tcpText !== undefined) tcp = tcpAddress(c, tcpField, tcpText, fromFlag ? '--socket' : 'listen.unixSocket');
  const allowNonLoopback = c.bool(listen, 'allowNonLoopback', 'listen') ?? false;
  if (tcp && !isLoopbackHost(tcp.host) && !allowNonLoopback && !tls) {
    c.fail(
      tcpField,
      `${tcp.host} is not a loopback address; configure listen.tls (mTLS), or accept plaintext gRPC beyond loopback with listen.allowNonLoopback: true`,
    );
  }
  let unixSocket: string | null = path.join(stateDir, 'magrathead.sock');
  const sockText =
    (overrides.socket !== undefined ? flagPath(c, '--socket', overrides.socket) : undefined) ??
    (listen && 'unixSocket' in listen
      ? listen.unixSocket === null
        ? null
        : c.path(listen, 'unixSocket', 'listen')
      : undefined);
  if (sockText === null) unixSocket = null;
  else if (sockText !== undefined) unixSocket = path.resolve(baseDir, sockText.replace(/^unix:/, ''));
  if (unixSocket && Buffer.byteLength(unixSocket) > 107)
    c.fail('listen.unixSocket', `path is longer than the 107 bytes a Unix socket allows: ${unixSocket}`);
  if (!tcp && !unixSocket) c.fail('listen', 'at least one of tcp and unixSocket is needed');
  return { tcp, unixSocket, allowNonLoopback, tls };
}

/** `driver`: the kind, and every driver's section (each driver checks its own, beside its code). */
function checkDriver(c: ConfigChecker, v: unknown, stateDir: string, baseDir: string): DriverConfig {
  const drv = c.object(v, 'driver', ['kind', 'simulated', 'cgroup', 'qemu', 'libvirt']);
  const kind = c.oneOf(drv, 'kind', 'driver', DRIVER_KINDS) ?? 'simulated';
  const simulated = checkSimulated(c, (drv?.simulated as Obj | undefined) ?? null, 'driver.simulated');
  const cgroup = checkCgroup(c, drv?.cgroup);
  const qemu = checkQemu(c, drv?.qemu, stateDir, baseDir);
  const libvirt = checkLibvirt(c, drv?.libvirt, stateDir, baseDir);
  return { kind, simulated, cgroup, qemu, libvirt };
}

/** `domains`, then each driver's cross-checks (what only it may have, and what it needs). */
function checkDomains(
  c: ConfigChecker,
  ds: unknown,
  driver: DriverConfig,
  images: ImagesConfig,
  baseDir: string,
): DomainConfig[] {
  const domains: DomainConfig[] = [];
  if (ds === undefined || ds === null) c.fail('domains', 'is required: list the domains of this node');
  else if (!Array.isArray(ds)) c.fail('domains', 'must be a list');
  else {
    if (ds.length === 0) c.fail('domains', 'must list at least one domain');
    if (ds.length > MAX_DOMAINS_PER_NODE) c.fail('domains', `at most ${MAX_DOMAINS_PER_NODE} domains per node`);
    ds.forEach((d, i) => {
      const p = `domains.${i}`;
      const o = c.object(d, p, [
        'name',
        'class',
        'autostart',
        'tokenFile',
        'command',
        'preemption',
        'vm',
        'libvirtName',
        'image',
        'hostName',
        'network',
        'lifecycle',
        'keepFailed',
        'wakeOnDemand',
        'idleShutdownMs',
        'bootBackoffMs',
      ]);
      if (!o) {
        if (d === null || d === undefined) c.fail(p, 'is empty');
        return;
      }
      const name = c.string(o, 'name', p, {
        pattern: DOMAIN_NAME,
        patternText: 'a domain name (letters, digits, ._-, at most 63)',
      });
      if (o.name === undefined) c.fail(`${p}.name`, 'is required');
      const cls = c.oneOf(o, 'class', p, ['normal', 'priority'] as const) ?? 'normal';
      const autostart = c.bool(o, 'autostart', p) ?? true;
      const tokenFile = c.path(o, 'tokenFile', p);
      const preemption = c.oneOf(o, 'preemption', p, PREEMPTION_MODES) ?? 'throttle';
      const command = checkCommand(c, o, p);
      const vm = o.vm === undefined || o.vm === null ? null : checkVm(c, o.vm, `${p}.vm`, baseDir);
      if (name && domains.some((x) => x.name === name)) c.fail(`${p}.name`, `duplicate domain name "${name}"`);
      else if (name)
        domains.push({
          name,
          class: cls,
          autostart,
          tokenFile: tokenFile ? path.resolve(baseDir, tokenFile) : null,
          command,
          preemption,
          vm,
          libvirtName: checkLibvirtName(c, o, p),
          image:
            c.string(o, 'image', p, {
              pattern: DOMAIN_NAME,
              patternText: 'an image name (letters, digits, ._-, at most 63)',
            }) ?? '',
          hostName:
            c.string(o, 'hostName', p, {
              pattern: /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/,
              patternText: 'a host name (letters, digits, . and -)',
            }) ?? null,
          network: checkNetwork(c, o, p),
          ...checkLifecycle(c, o, p),
        });
    });
  }

  const { kind } = driver;
  domains.forEach((d, i) => {
    checkCommandUse(c, kind, d, i);
    checkLibvirtNameUse(c, kind, d, i);
    checkVmUse(c, kind, d, i, driver.qemu);
    checkImageUse(c, kind, d, i, images);
    checkLifecycleUse(
      c,
      kind,
      {
        ...d,
        lifecycle: d.lifecycle ?? 'persistent',
        keepFailed: d.keepFailed ?? 0,
        wakeOnDemand: d.wakeOnDemand ?? false,
        idleShutdownMs: d.idleShutdownMs ?? 0,
        bootBackoffMs: d.bootBackoffMs ?? 60_000,
      },
      i,
      images.catalogue.length > 0,
    );
  });
  if (kind === 'cgroup') checkCgroupDomains(c, domains);
  return domains;
}

/** `hookApi`: the HTTP/JSON endpoint for the PBS hooks, or null when not configured. */
function checkHookApi(c: ConfigChecker, v: unknown, domains: readonly DomainConfig[]): DaemonConfig['hookApi'] {
  const hook = c.object(v, 'hookApi', ['listen', 'allowNonLoopback', 'maxBodyBytes', 'requestTimeoutMs']);
  let hookApi: DaemonConfig['hookApi'] = null;
  if (hook) {
    const listenText = c.string(hook, 'listen', 'hookApi');
    if (listenText === undefined) c.fail('hookApi.listen', 'is required (HOST:PORT) when hookApi is configured');
    const allow = c.bool(hook, 'allowNonLoopback', 'hookApi') ?? false;
    const maxBodyBytes = c.int(hook, 'maxBodyBytes', 'hookApi', 256, 1024 * 1024) ?? 4096;
    const requestTimeoutMs = c.int(hook, 'requestTimeoutMs', 'hookApi', 100, 120_000) ?? 5000;
    if (listenText !== undefined) {
      const a = tcpAddress(c, 'hookApi.listen', listenText, null);
      if (a && !isLoopbackHost(a.host) && !allow) {
        c.fail(
          'hookApi.listen',
          `${a.host} is not a loopback address; serving the hook API beyond loopback needs hookApi.allowNonLoopback: true`,
        );
      } else if (a) hookApi = { host: a.host, port: a.port, maxBodyBytes, requestTimeoutMs };
    }
    if (domains.length > 0 && domains.every((d) => d.tokenFile === null)) {
      c.fail('domains', 'the hook API is enabled but no domain has a tokenFile; give each domain its own token');
    }
  }
  return hookApi;
}

/**
 * Validates a parsed YAML document and resolves defaults. `baseDir` resolves relative paths
 * (the config file's directory, or the working directory for the embedded default).
 */
export function compileConfig(
  doc: unknown,
  baseDir: string,
  overrides: ConfigOverrides = {},
  hostname = os.hostname(),
): DaemonConfig {
  const c = new ConfigChecker();
  const top = c.object(doc ?? {}, '', [
    'node',
    'stateDir',
    'listen',
    'hookApi',
    'driver',
    'domains',
    'reconcileCron',
    'limits',
    'flapDamping',
    'metricsCron',
    'snapshotEvery',
    'eventBacklog',
    'heartbeatMs',
    'shutdownGraceMs',
    'log',
    'cpuCounting',
    'images',
    'imageCache',
    'context',
  ]);
  const node = c.object(top?.node, 'node', ['name']);
  const nodeName =
    c.string(node, 'name', 'node', { pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/, patternText: 'a host name' }) ??
    hostname;
  const stateDir = path.resolve(
    baseDir,
    (overrides.stateDir !== undefined ? flagPath(c, '--state-dir', overrides.stateDir) : c.path(top, 'stateDir', '')) ??
      './.magrathea',
  );

  const listen = checkListen(c, top?.listen, overrides, stateDir, baseDir);
  const driver = checkDriver(c, top?.driver, stateDir, baseDir);
  const images = checkImages(c, top?.images, top?.imageCache, stateDir, baseDir);
  const context = checkContext(c, top?.context, baseDir);
  const domains = checkDomains(c, top?.domains, driver, images, baseDir);
  const hookApi = checkHookApi(c, top?.hookApi, domains);
  const cpuCounting = checkCpuCounting(c, top?.cpuCounting, os.availableParallelism());

  // Not given: a fixed interval (node-cron is loaded only for a configured expression).
  const schedule = (key: string, everyMs: number): Schedule => {
    const v = c.string(top, key, '');
    if (v === undefined) return { everyMs };
    if (!nodeCron().validate(v)) c.fail(key, `"${v}" is not a valid cron expression`);
    return { cron: v };
  };
  const reconcileCron = schedule('reconcileCron', 30_000);
  const metricsCron = schedule('metricsCron', 15_000);
  const snapshotEvery = c.int(top, 'snapshotEvery', '', 1, 10_000_000) ?? 1000;
  const eventBacklog = c.int(top, 'eventBacklog', '', 16, 1_000_000) ?? 1024;
  const heartbeatMs = c.int(top, 'heartbeatMs', '', 100, 600_000) ?? 5000;
  const shutdownGraceMs = c.int(top, 'shutdownGraceMs', '', 0, 600_000) ?? 5000;
  const log = c.object(top?.log, 'log', ['level']);
  const logLevel = c.oneOf(log, 'level', 'log', LOG_LEVELS) ?? 'info';
  const lim = c.object(top?.limits, 'limits', [
    'maxStreamsPerClient',
    'maxStreams',
    'maxQueuedEvents',
    'maxConnections',
    'maxConnectionsPerSource',
    'idleConnectionMs',
    'authFailuresPerMinute',
  ]);
  const fd = c.object(top?.flapDamping, 'flapDamping', ['maxFlaps', 'windowMs', 'holdMs']);
  const flapDamping = {
    maxFlaps: c.int(fd, 'maxFlaps', 'flapDamping', 1, 1000) ?? 3,
    windowMs: c.int(fd, 'windowMs', 'flapDamping', 1000, 86_400_000) ?? 600_000,
    holdMs: c.int(fd, 'holdMs', 'flapDamping', 0, 86_400_000) ?? 600_000,
  };
  const limits = {
    maxStreamsPerClient: c.int(lim, 'maxStreamsPerClient', 'limits', 1, 100_000) ?? 16,
    maxStreams: c.int(lim, 'maxStreams', 'limits', 1, 100_000) ?? 256,
    maxQueuedEvents: c.int(lim, 'maxQueuedEvents', 'limits', 16, 1_000_000) ?? 2048,
    maxConnections: c.int(lim, 'maxConnections', 'limits', 1, 100_000) ?? 512,
    maxConnectionsPerSource: c.int(lim, 'maxConnectionsPerSource', 'limits', 1, 100_000) ?? 64,
    idleConnectionMs: c.int(lim, 'idleConnectionMs', 'limits', 100, 86_400_000) ?? 120_000,
    authFailuresPerMinute: c.int(lim, 'authFailuresPerMinute', 'limits', 1, 1_000_000) ?? 20,
  };

  if (c.problems.length > 0) throw new ConfigError(c.problems);
  return {
    nodeName,
    stateDir,
    listen,
    limits,
    flapDamping,
    driver,
    domains,
    cpuCounting,
    images,
    context,
    hookApi,
    reconcileCron,
    metricsCron,
    snapshotEvery,
    eventBacklog,
    heartbeatMs,
    shutdownGraceMs,
    logLevel,
  };
}

export interface TlsConfig {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  readonly clients: readonly { readonly identity: string; readonly role: Role }[];
}

function checkTls(c: ConfigChecker, v: unknown, baseDir: string): TlsConfig | null {
  const at = 'listen.tls';
  const t = c.pemFiles(v, at, baseDir, ['clients']);
  if (!t) return null;
  const clients = c.clientBindings(
    t.o.clients,
    `${at}.clients`,
    'the client identities (certificate CN) and their roles',
  );
  if (!t.files) return null;
  return { ...t.files, clients };
}

/** Parses YAML text; syntax errors and warnings become problems with line and column. */
export function parseConfigText(text: string, source: string): unknown {
  const r = parseYamlStrict(text, source);
  if (!r.ok) throw new ConfigError(r.problems);
  return r.value;
}

/** Largest config file read, bytes. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Loads a config file (a regular file; or the embedded default when `file` is undefined). */
export function loadConfig(file: string | undefined, overrides: ConfigOverrides, cwd: string): DaemonConfig {
  if (file === undefined)
    return compileConfig(parseConfigText(DEFAULT_CONFIG_YAML, '(embedded default)'), cwd, overrides);
  let text: string;
  try {
    text = readRegularFileSync(file, { maxBytes: MAX_CONFIG_BYTES, what: 'config file' }).data.toString('utf8');
  } catch (err) {
    // Missing or unreadable: the file is the problem (exit 66). A FIFO, a device or a huge file
    // named as the config is a configuration mistake (exit 78).
    if (err instanceof FileReadError && (err.problem === 'not-regular' || err.problem === 'too-large'))
      throw new ConfigError([err.message]);
    throw new InputFileError([
      `cannot read the configuration file ${path.resolve(cwd, file)} (${describeFsError(err)})`,
    ]);
  }
  return compileConfig(parseConfigText(text, file), path.dirname(path.resolve(cwd, file)), overrides);
}
