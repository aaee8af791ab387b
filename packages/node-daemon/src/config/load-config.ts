/**
 * The daemon's configuration: YAML → validated (every problem reported at once, with the path
 * of the bad field; unknown keys are errors) → compiled into a fully resolved, readonly config.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { validate as validateCron } from 'node-cron';
import type { DomainClass } from '@magrathea/common';
import { ConfigChecker, DOMAIN_NAME, ROLES, isLoopbackHost, parseAddress, parseYamlStrict } from '@magrathea/common';
import type { Role } from '@magrathea/common';
import type { ConfigObject as Obj } from '@magrathea/common';
import { ConfigError } from '../errors';
import type { DriverConfig } from '../hypervisor/create-driver';
import { DRIVER_KINDS, PREEMPTION_MODES } from '../hypervisor/create-driver';
import type { PreemptionMode } from '../hypervisor/create-driver';
import type { SimulatedFailure } from '../hypervisor/simulated/simulated-driver';
import type { QemuVmConfig } from '../hypervisor/qemu/qemu-driver';

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
    /** Open WatchNode streams per client identity (local callers: per peer). Default 16. */
    readonly maxStreamsPerClient: number;
    /** Failed authentications per source within a minute before it is refused for a minute. Default 20. */
    readonly authFailuresPerMinute: number;
  };
  readonly driver: DriverConfig;
  readonly domains: readonly DomainConfig[];
  /** The HTTP/JSON hook API for the PBS hooks, or null when disabled (the default). */
  readonly hookApi: {
    readonly host: string;
    readonly port: number;
    /** Largest request body, bytes. Default 4096. */
    readonly maxBodyBytes: number;
    /** Whole-request time limit, ms. Default 5000. */
    readonly requestTimeoutMs: number;
  } | null;
  /** Cron expression (with seconds) for reconciliation. Default every 30 s. */
  readonly reconcileCron: string;
  /** Cron expression (with seconds) for refreshing host metrics. Default every 15 s. */
  readonly metricsCron: string;
  /** Journal records between snapshots. Default 1000. */
  readonly snapshotEvery: number;
  /** Events kept in memory for watchers that resume. Default 1024. */
  readonly eventBacklog: number;
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

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const SIM_OPS = ['preempt', 'save', 'shrink', 'shutdown', 'resume', 'restore', 'grow', 'boot', 'observe'] as const;

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

function checkSimulated(c: ConfigChecker, o: Obj | null, at: string): DriverConfig['simulated'] {
  const sim = c.object(o, at, [
    'latencyMs',
    'failures',
    'activeMemoryBytes',
    'idleMemoryBytes',
    'preemptedMemoryBytes',
  ]);
  const latencyObj = c.object(sim?.latencyMs, `${at}.latencyMs`, SIM_OPS);
  const latencyMs: Partial<Record<(typeof SIM_OPS)[number], number>> = {};
  for (const op of SIM_OPS) {
    const v = c.int(latencyObj, op, `${at}.latencyMs`, 0, 600_000);
    if (v !== undefined) latencyMs[op] = v;
  }
  const failures: SimulatedFailure[] = [];
  const fl = sim?.failures;
  if (fl !== undefined && fl !== null) {
    if (!Array.isArray(fl)) c.fail(`${at}.failures`, 'must be a list');
    else
      fl.forEach((f, i) => {
        const p = `${at}.failures.${i}`;
        const fo = c.object(f, p, ['op', 'domain', 'times', 'message']);
        const op = c.oneOf(fo, 'op', p, SIM_OPS);
        if (op === undefined && fo && fo.op === undefined) c.fail(`${p}.op`, 'is required');
        const domain = c.string(fo, 'domain', p, { pattern: DOMAIN_NAME, patternText: 'a domain name' });
        const times = c.int(fo, 'times', p, 1, 1_000_000);
        const message = c.string(fo, 'message', p);
        if (op)
          failures.push({
            op,
            ...(domain ? { domain } : {}),
            ...(times ? { times } : {}),
            ...(message ? { message } : {}),
          });
      });
  }
  const mem = (k: string): number | undefined => c.int(sim, k, at, 0, Number.MAX_SAFE_INTEGER);
  const active = mem('activeMemoryBytes');
  const idle = mem('idleMemoryBytes');
  const pre = mem('preemptedMemoryBytes');
  return {
    latencyMs,
    failures,
    ...(active !== undefined ? { activeMemoryBytes: active } : {}),
    ...(idle !== undefined ? { idleMemoryBytes: idle } : {}),
    ...(pre !== undefined ? { preemptedMemoryBytes: pre } : {}),
  };
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
    'shutdownGraceMs',
    'log',
  ]);
  const node = c.object(top?.node, 'node', ['name']);
  const nodeName =
    c.string(node, 'name', 'node', { pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/, patternText: 'a host name' }) ??
    hostname;
  const stateDir = path.resolve(baseDir, overrides.stateDir ?? c.string(top, 'stateDir', '') ?? './.magrathea');

  const listen = c.object(top?.listen, 'listen', ['tcp', 'unixSocket', 'allowNonLoopback', 'tls']);
  const tls = checkTls(c, listen?.tls, baseDir);
  let tcp: DaemonConfig['listen']['tcp'] = { host: '127.0.0.1', port: 5678 };
  const tcpText =
    overrides.listen ??
    (listen && 'tcp' in listen ? (listen.tcp === null ? null : c.string(listen, 'tcp', 'listen')) : undefined);
  if (tcpText === null) tcp = null;
  else if (tcpText !== undefined) {
    try {
      const a = parseAddress(tcpText);
      if (a.kind !== 'tcp') c.fail('listen.tcp', 'must be HOST:PORT (use listen.unixSocket for a socket)');
      else tcp = { host: a.host, port: a.port };
    } catch (err) {
      c.fail(overrides.listen ? '--listen' : 'listen.tcp', (err as Error).message);
    }
  }
  const allowNonLoopback = c.bool(listen, 'allowNonLoopback', 'listen') ?? false;
  if (tcp && !isLoopbackHost(tcp.host) && !allowNonLoopback && !tls) {
    c.fail(
      overrides.listen ? '--listen' : 'listen.tcp',
      `${tcp.host} is not a loopback address; configure listen.tls (mTLS), or accept plaintext gRPC beyond loopback with listen.allowNonLoopback: true`,
    );
  }
  let unixSocket: string | null = path.join(stateDir, 'magrathead.sock');
  const sockText =
    overrides.socket ??
    (listen && 'unixSocket' in listen
      ? listen.unixSocket === null
        ? null
        : c.string(listen, 'unixSocket', 'listen')
      : undefined);
  if (sockText === null) unixSocket = null;
  else if (sockText !== undefined) unixSocket = path.resolve(baseDir, sockText.replace(/^unix:/, ''));
  if (unixSocket && Buffer.byteLength(unixSocket) > 107)
    c.fail('listen.unixSocket', `path is longer than the 107 bytes a Unix socket allows: ${unixSocket}`);
  if (!tcp && !unixSocket) c.fail('listen', 'at least one of tcp and unixSocket is needed');

  const drv = c.object(top?.driver, 'driver', ['kind', 'simulated', 'cgroup', 'qemu', 'libvirt']);
  const kind = c.oneOf(drv, 'kind', 'driver', DRIVER_KINDS) ?? 'simulated';
  const simulated = checkSimulated(c, (drv?.simulated as Obj | undefined) ?? null, 'driver.simulated');
  const cg = c.object(drv?.cgroup, 'driver.cgroup', [
    'mount',
    'root',
    ...SHARE_KEYS,
    'preemptedMemoryBytes',
    'stopTimeoutMs',
  ]);
  const cgroup = {
    mount: c.string(cg, 'mount', 'driver.cgroup') ?? '/sys/fs/cgroup',
    root:
      c.string(cg, 'root', 'driver.cgroup', {
        pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
        patternText: 'a cgroup name',
      }) ?? 'magrathea',
    ...checkShares(c, cg, 'driver.cgroup'),
    preemptedMemoryBytes:
      c.int(cg, 'preemptedMemoryBytes', 'driver.cgroup', 4096, Number.MAX_SAFE_INTEGER) ?? 64 * 1024 * 1024,
    stopTimeoutMs: c.int(cg, 'stopTimeoutMs', 'driver.cgroup', 0, 600_000) ?? 5000,
  };

  const qemu = checkQemu(c, drv?.qemu, stateDir, baseDir);
  const libvirt = checkLibvirt(c, drv?.libvirt, stateDir, baseDir);

  const domains: DomainConfig[] = [];
  const ds = top?.domains;
  if (ds === undefined || ds === null) c.fail('domains', 'is required: list the domains of this node');
  else if (!Array.isArray(ds)) c.fail('domains', 'must be a list');
  else {
    if (ds.length === 0) c.fail('domains', 'must list at least one domain');
    if (ds.length > 64) c.fail('domains', 'at most 64 domains per node');
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
      const tokenFile = c.string(o, 'tokenFile', p);
      const preemption = c.oneOf(o, 'preemption', p, PREEMPTION_MODES) ?? 'throttle';
      let command: string[] = [];
      if (o.command !== undefined && o.command !== null) {
        if (
          !Array.isArray(o.command) ||
          o.command.length === 0 ||
          !o.command.every((x) => typeof x === 'string' && x.length > 0)
        ) {
          c.fail(`${p}.command`, 'must be a non-empty list of strings (argv)');
        } else command = o.command as string[];
      }
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
          libvirtName:
            c.string(o, 'libvirtName', p, {
              pattern: /^[A-Za-z0-9_.:+-]{1,200}$/,
              patternText: 'a libvirt domain name',
            }) ?? null,
        });
    });
  }

  domains.forEach((d, i) => {
    if (kind !== 'cgroup' && d.command.length > 0)
      c.fail(`domains.${i}.command`, 'is only for the cgroup driver (driver.kind is ' + kind + ')');
    if (kind !== 'libvirt' && d.libvirtName !== null)
      c.fail(`domains.${i}.libvirtName`, `is only for the libvirt driver (driver.kind is ${kind})`);
    if (kind !== 'qemu' && d.vm !== null)
      c.fail(`domains.${i}.vm`, `is only for the qemu driver (driver.kind is ${kind})`);
    const qmpSocket = path.join(qemu.runDir, `${d.name}.qmp`);
    if (kind === 'qemu' && Buffer.byteLength(qmpSocket) > 107)
      c.fail(
        'driver.qemu.runDir',
        `the QMP socket path ${qmpSocket} is longer than the 107 bytes a Unix socket allows`,
      );
    if (kind === 'qemu' && d.vm === null)
      c.fail(`domains.${i}.vm`, 'is required with the qemu driver (kernel, memoryMiB, ...)');
    if (kind === 'qemu' && d.preemption === 'throttle' && qemu.cgroup === null)
      c.fail(
        `domains.${i}.preemption`,
        'throttle needs driver.qemu.cgroup (the CPU weight of the VM); use pause or save, or configure the cgroup',
      );
  });
  if (kind === 'cgroup') {
    domains.forEach((d, i) => {
      if (d.command.length === 0)
        c.fail(`domains.${i}.command`, 'is required with the cgroup driver (the process tree of the domain)');
      if (d.preemption === 'save') {
        c.fail(
          `domains.${i}.preemption`,
          'save is not possible with the cgroup driver here (CRIU does not work on this kernel); use throttle or pause',
        );
      }
    });
  }
  const hook = c.object(top?.hookApi, 'hookApi', ['listen', 'allowNonLoopback', 'maxBodyBytes', 'requestTimeoutMs']);
  let hookApi: DaemonConfig['hookApi'] = null;
  if (hook) {
    const listenText = c.string(hook, 'listen', 'hookApi');
    if (listenText === undefined) c.fail('hookApi.listen', 'is required (HOST:PORT) when hookApi is configured');
    const allow = c.bool(hook, 'allowNonLoopback', 'hookApi') ?? false;
    const maxBodyBytes = c.int(hook, 'maxBodyBytes', 'hookApi', 256, 1024 * 1024) ?? 4096;
    const requestTimeoutMs = c.int(hook, 'requestTimeoutMs', 'hookApi', 100, 120_000) ?? 5000;
    if (listenText !== undefined) {
      try {
        const a = parseAddress(listenText);
        if (a.kind !== 'tcp') c.fail('hookApi.listen', 'must be HOST:PORT');
        else if (!isLoopbackHost(a.host) && !allow) {
          c.fail(
            'hookApi.listen',
            `${a.host} is not a loopback address; serving the hook API beyond loopback needs hookApi.allowNonLoopback: true`,
          );
        } else hookApi = { host: a.host, port: a.port, maxBodyBytes, requestTimeoutMs };
      } catch (err) {
        c.fail('hookApi.listen', (err as Error).message);
      }
    }
    if (domains.length > 0 && domains.every((d) => d.tokenFile === null)) {
      c.fail('domains', 'the hook API is enabled but no domain has a tokenFile; give each domain its own token');
    }
  }

  const cron = (key: string, def: string): string => {
    const v = c.string(top, key, '');
    if (v !== undefined && !validateCron(v)) c.fail(key, `"${v}" is not a valid cron expression`);
    return v ?? def;
  };
  const reconcileCron = cron('reconcileCron', '*/30 * * * * *');
  const metricsCron = cron('metricsCron', '*/15 * * * * *');
  const snapshotEvery = c.int(top, 'snapshotEvery', '', 1, 10_000_000) ?? 1000;
  const eventBacklog = c.int(top, 'eventBacklog', '', 16, 1_000_000) ?? 1024;
  const shutdownGraceMs = c.int(top, 'shutdownGraceMs', '', 0, 600_000) ?? 5000;
  const log = c.object(top?.log, 'log', ['level']);
  const logLevel = c.oneOf(log, 'level', 'log', LOG_LEVELS) ?? 'info';
  const lim = c.object(top?.limits, 'limits', ['maxStreamsPerClient', 'authFailuresPerMinute']);
  const fd = c.object(top?.flapDamping, 'flapDamping', ['maxFlaps', 'windowMs', 'holdMs']);
  const flapDamping = {
    maxFlaps: c.int(fd, 'maxFlaps', 'flapDamping', 1, 1000) ?? 3,
    windowMs: c.int(fd, 'windowMs', 'flapDamping', 1000, 86_400_000) ?? 600_000,
    holdMs: c.int(fd, 'holdMs', 'flapDamping', 0, 86_400_000) ?? 600_000,
  };
  const limits = {
    maxStreamsPerClient: c.int(lim, 'maxStreamsPerClient', 'limits', 1, 100_000) ?? 16,
    authFailuresPerMinute: c.int(lim, 'authFailuresPerMinute', 'limits', 1, 1_000_000) ?? 20,
  };

  if (c.problems.length > 0) throw new ConfigError(c.problems);
  return {
    nodeName,
    stateDir,
    listen: { tcp, unixSocket, allowNonLoopback, tls },
    limits,
    flapDamping,
    driver: { kind, simulated, cgroup, qemu, libvirt },
    domains,
    hookApi,
    reconcileCron,
    metricsCron,
    snapshotEvery,
    eventBacklog,
    shutdownGraceMs,
    logLevel,
  };
}

const SHARE_KEYS = ['activeShares', 'idleShares', 'preemptedShares'] as const;

/** cpu.shares of a running, idle and preempted domain (every real driver has them). */
function checkShares(c: ConfigChecker, o: Obj | null, at: string): Record<(typeof SHARE_KEYS)[number], number> {
  return {
    activeShares: c.int(o, 'activeShares', at, 2, 262144) ?? 1024,
    idleShares: c.int(o, 'idleShares', at, 2, 262144) ?? 64,
    preemptedShares: c.int(o, 'preemptedShares', at, 2, 262144) ?? 2,
  };
}

function checkQemu(c: ConfigChecker, v: unknown, stateDir: string, baseDir: string): DriverConfig['qemu'] {
  const at = 'driver.qemu';
  const q = c.object(v, at, [
    'binary',
    'accel',
    'runDir',
    'cgroup',
    ...SHARE_KEYS,
    'qmpTimeoutMs',
    'bootTimeoutMs',
    'powerdownTimeoutMs',
    'saveTimeoutMs',
    'balloonSettleMs',
    'balloonMarginMiB',
  ]);
  let cgroup: DriverConfig['qemu']['cgroup'] = { mount: '/sys/fs/cgroup', root: 'magrathea' };
  if (q && q.cgroup === false) cgroup = null;
  else if (q && q.cgroup !== undefined && q.cgroup !== null) {
    const cg = c.object(q.cgroup, `${at}.cgroup`, ['mount', 'root']);
    cgroup = {
      mount: c.string(cg, 'mount', `${at}.cgroup`) ?? '/sys/fs/cgroup',
      root:
        c.string(cg, 'root', `${at}.cgroup`, {
          pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/,
          patternText: 'a cgroup name',
        }) ?? 'magrathea',
    };
  }
  const runDirText = c.string(q, 'runDir', at);
  const runDir = runDirText ? path.resolve(baseDir, runDirText) : path.join(stateDir, 'qemu');
  return {
    binary: c.string(q, 'binary', at) ?? 'qemu-system-x86_64',
    accel: c.oneOf(q, 'accel', at, ['auto', 'kvm', 'tcg'] as const) ?? 'auto',
    runDir,
    cgroup,
    ...checkShares(c, q, at),
    qmpTimeoutMs: c.int(q, 'qmpTimeoutMs', at, 50, 600_000) ?? 5000,
    bootTimeoutMs: c.int(q, 'bootTimeoutMs', at, 100, 3_600_000) ?? 120_000,
    powerdownTimeoutMs: c.int(q, 'powerdownTimeoutMs', at, 0, 600_000) ?? 10_000,
    saveTimeoutMs: c.int(q, 'saveTimeoutMs', at, 100, 3_600_000) ?? 120_000,
    balloonSettleMs: c.int(q, 'balloonSettleMs', at, 0, 60_000) ?? 2000,
    balloonMarginMiB: c.int(q, 'balloonMarginMiB', at, 0, 1_048_576) ?? 32,
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
  const o = c.object(v, at, ['ca', 'cert', 'key', 'clients']);
  if (!o) return null;
  const file = (key: string): string | undefined => {
    const f = c.string(o, key, at);
    if (o[key] === undefined) c.fail(`${at}.${key}`, 'is required (a PEM file)');
    return f ? path.resolve(baseDir, f) : undefined;
  };
  const ca = file('ca');
  const cert = file('cert');
  const key = file('key');
  const clients: { identity: string; role: Role }[] = [];
  if (!Array.isArray(o.clients) || o.clients.length === 0)
    c.fail(`${at}.clients`, 'must list the client identities (certificate CN) and their roles');
  else
    o.clients.forEach((x, i) => {
      const p = `${at}.clients.${i}`;
      const co = c.object(x, p, ['identity', 'role']);
      const identity = c.string(co, 'identity', p);
      if (co && co.identity === undefined) c.fail(`${p}.identity`, 'is required (the certificate CN)');
      const role = c.oneOf(co, 'role', p, ROLES);
      if (co && co.role === undefined) c.fail(`${p}.role`, `is required (${ROLES.join(', ')})`);
      if (identity && clients.some((y) => y.identity === identity))
        c.fail(`${p}.identity`, `duplicate identity "${identity}"`);
      else if (identity && role) clients.push({ identity, role });
    });
  if (!ca || !cert || !key) return null;
  return { ca, cert, key, clients };
}

function checkLibvirt(c: ConfigChecker, v: unknown, stateDir: string, baseDir: string): DriverConfig['libvirt'] {
  const at = 'driver.libvirt';
  const o = c.object(v, at, [
    'virsh',
    'uri',
    'runDir',
    'weightParam',
    ...SHARE_KEYS,
    'preemptedMemoryMiB',
    'balloonMarginMiB',
    'commandTimeoutMs',
    'bootTimeoutMs',
    'shutdownTimeoutMs',
  ]);
  const runDir = c.string(o, 'runDir', at);
  return {
    virsh: c.string(o, 'virsh', at) ?? 'virsh',
    uri: c.string(o, 'uri', at, { pattern: /^[a-z+]+:\/\/[^\s']*$/, patternText: 'a libvirt URI' }) ?? 'qemu:///system',
    runDir: runDir ? path.resolve(baseDir, runDir) : path.join(stateDir, 'libvirt'),
    weightParam:
      c.string(o, 'weightParam', at, { pattern: /^[a-z_]+$/, patternText: 'a scheduler parameter name' }) ??
      'cpu_shares',
    ...checkShares(c, o, at),
    preemptedMemoryMiB: c.int(o, 'preemptedMemoryMiB', at, 0, 4_194_304) ?? 0,
    balloonMarginMiB: c.int(o, 'balloonMarginMiB', at, 0, 1_048_576) ?? 32,
    commandTimeoutMs: c.int(o, 'commandTimeoutMs', at, 50, 600_000) ?? 30_000,
    bootTimeoutMs: c.int(o, 'bootTimeoutMs', at, 100, 3_600_000) ?? 120_000,
    shutdownTimeoutMs: c.int(o, 'shutdownTimeoutMs', at, 0, 600_000) ?? 30_000,
  };
}

function checkVm(c: ConfigChecker, v: unknown, at: string, baseDir: string): QemuVmConfig | null {
  const o = c.object(v, at, [
    'kernel',
    'initrd',
    'append',
    'disk',
    'memoryMiB',
    'idleMemoryMiB',
    'preemptedMemoryMiB',
    'cpus',
    'readyLine',
    'extraArgs',
  ]);
  if (!o) return null;
  const kernel = c.string(o, 'kernel', at);
  if (o.kernel === undefined) c.fail(`${at}.kernel`, 'is required (path of the guest kernel)');
  const initrd = c.string(o, 'initrd', at);
  const disk = c.string(o, 'disk', at);
  const memoryMiB = c.int(o, 'memoryMiB', at, 96, 4_194_304) ?? 256;
  const idleMemoryMiB = c.int(o, 'idleMemoryMiB', at, 1, 4_194_304) ?? null;
  const preemptedMemoryMiB = c.int(o, 'preemptedMemoryMiB', at, 0, 4_194_304) ?? 0;
  if (idleMemoryMiB !== null && idleMemoryMiB > memoryMiB) c.fail(`${at}.idleMemoryMiB`, 'must not exceed memoryMiB');
  let extraArgs: string[] = [];
  if (o.extraArgs !== undefined && o.extraArgs !== null) {
    if (!Array.isArray(o.extraArgs) || !o.extraArgs.every((x) => typeof x === 'string'))
      c.fail(`${at}.extraArgs`, 'must be a list of strings');
    else extraArgs = o.extraArgs;
  }
  if (!kernel) return null;
  return {
    kernel: path.resolve(baseDir, kernel),
    initrd: initrd ? path.resolve(baseDir, initrd) : null,
    append: c.string(o, 'append', at) ?? 'console=ttyS0 quiet panic=-1',
    disk: disk ? path.resolve(baseDir, disk) : null,
    memoryMiB,
    idleMemoryMiB,
    preemptedMemoryMiB,
    cpus: c.int(o, 'cpus', at, 1, 256) ?? 1,
    readyLine: c.string(o, 'readyLine', at) ?? null,
    extraArgs,
  };
}

/** Parses YAML text; syntax errors and warnings become problems with line and column. */
export function parseConfigText(text: string, source: string): unknown {
  const r = parseYamlStrict(text, source);
  if (!r.ok) throw new ConfigError(r.problems);
  return r.value;
}

/** Loads a config file (or the embedded default when `file` is undefined). */
export function loadConfig(file: string | undefined, overrides: ConfigOverrides, cwd: string): DaemonConfig {
  if (file === undefined)
    return compileConfig(parseConfigText(DEFAULT_CONFIG_YAML, '(embedded default)'), cwd, overrides);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
  return compileConfig(parseConfigText(text, file), path.dirname(path.resolve(cwd, file)), overrides);
}
