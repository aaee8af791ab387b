/** magrathea-filter configuration: YAML, validated with every problem reported at once. */
import * as path from 'node:path';
import {
  ConfigChecker,
  DOMAIN_NAME,
  FileReadError,
  InputFileError,
  LOG_LEVELS,
  describeFsError,
  formatAddress,
  isLoopbackHost,
  parseAddress,
  parseYamlStrict,
  readRegularFileSync,
} from '@magrathea/common';
import type { Address, ClientBinding, ConfigObject } from '@magrathea/common';

/** PBS vnode names the filter writes (anything else never reaches qmgr). */
export const VNODE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

export interface FilterNodeConfig {
  readonly name: string;
  /** The daemon's address, or the relay's for a node watched through one. */
  readonly address: Address;
  /** The relay the node is watched through (`relays[].name`), or null: watched directly. */
  readonly relay: string | null;
  /** Domain name → PBS vnode name. Domains not listed use `vnodeTemplate`. */
  readonly vnodes: Readonly<Record<string, string>>;
}

/** A relay the filter watches nodes through. */
export interface RelayRef {
  readonly name: string;
  readonly address: Address;
}

/** Where the filter reads a node: `HOST:PORT` or `unix:PATH`, and the relay it goes through. */
export function nodeAddressText(n: FilterNodeConfig): string {
  const a = formatAddress(n.address);
  return n.relay ? `${a} (relay ${n.relay})` : a;
}

export interface FilterConfig {
  /** gRPC ClusterService address (default 127.0.0.1:5680). */
  readonly grpc: { readonly host: string; readonly port: number };
  /** HTTP: /metrics and POST /v1/admit (default 127.0.0.1:5681). */
  readonly http: { readonly host: string; readonly port: number };
  readonly nodes: readonly FilterNodeConfig[];
  /** Relays (magrathea-relay) that forward the streams of the nodes naming them. */
  readonly relays: readonly RelayRef[];
  /** Vnode name for a domain not in a node's `vnodes` map: `{node}` and `{domain}` are replaced. Default `{node}-{domain}`. */
  readonly vnodeTemplate: string;
  /** A node not heard from for this long is published as accepting nothing, ms. Default 10000. */
  readonly graceMs: number;
  /** Reconnect back-off, ms. Defaults 250 and 10000. */
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  /** Publishing to PBS; null: view only. */
  readonly pbs: {
    readonly qmgr: string;
    readonly qsig: string;
    /** PBS server name passed to qmgr/qsig, or null for the default server. */
    readonly server: string | null;
    /** Wait this long to coalesce changes into one batch, ms. Default 20. */
    readonly batchDelayMs: number;
    readonly qmgrTimeoutMs: number;
    readonly retryInitialMs: number;
    readonly retryMaxMs: number;
    /** At most one scheduling-cycle kick per this interval, ms. Default 1000. */
    readonly kickMinIntervalMs: number;
    /** qsig -s admin-suspend / admin-resume the jobs of preempted domains. Default true. */
    readonly honestAccounting: boolean;
    /** qstat (job states for honest accounting) and pbsnodes (what PBS holds, for re-asserting). */
    readonly qstat: string;
    readonly pbsnodes: string;
    /** qdel (purges the history of once-suspended jobs, see purgeResumedJobHistory). */
    readonly qdel: string;
    /** Compare what PBS holds with what was published this often and write back what differs, ms (0: never). Default 30000. */
    readonly reassertIntervalMs: number;
    /**
     * Wake on demand: while some domain is down-bootable with domains[].wakeOnDemand, read the
     * queued jobs (qstat) this often and boot domains for the images they ask for, ms (0: never).
     * Default 5000.
     */
    readonly wakeIntervalMs: number;
    /** Re-check the PBS state of the jobs of preempted domains this often, ms. Default 10000. */
    readonly accountingRecheckMs: number;
    /**
     * Purge, once they have finished, the history of the jobs PBS's database still lists as a vnode's
     * maintenance_jobs. PBS 23.06 never saves an emptied maintenance_jobs: at the next pbs_server
     * restart a vnode whose listed job is still in the history comes back in `maintenance`. Default true.
     */
    readonly purgeResumedJobHistory: boolean;
    /**
     * Run the PBS commands from a small helper process started once (true, the default), or
     * fork each one from the filter itself (false: what earlier versions did; each fork then
     * blocks the filter for a time that grows with its size).
     */
    readonly commandHelper: boolean;
  } | null;
  readonly logLevel: string;
  /** Protection against misbehaving clients of the filter's own listeners. */
  readonly limits: {
    /** Open WatchCluster streams in all. Default 64. */
    readonly maxWatchStreams: number;
    /** Open WatchCluster streams per client address. Default 16. */
    readonly maxWatchStreamsPerClient: number;
    /** Open connections per listener (gRPC, HTTP). Default 256. */
    readonly maxConnections: number;
    /** Open connections per listener from one address. Default 64. */
    readonly maxConnectionsPerSource: number;
    /** A gRPC connection without calls this long is closed, ms; an HTTP connection gets 5 s for its first request. Default 120000. */
    readonly idleConnectionMs: number;
  };
  /** Client certificate for daemons that serve mTLS (role `filter`), or null for plaintext. */
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string } | null;
  /** The live status page (docs/status-page.md); null: not served (the default). */
  readonly web: WebConfig | null;
}

/** The status page's listener and feed (`web:` in the config). */
export interface WebConfig {
  /** Where the page is served (default 127.0.0.1:5682); beyond loopback only with `tls`. */
  readonly host: string;
  readonly port: number;
  /**
   * HTTPS with client certificates from the site CA (any role may read: reader, operator, filter),
   * or null for plain HTTP on loopback.
   */
  readonly tls: {
    readonly ca: string;
    readonly cert: string;
    readonly key: string;
    readonly clients: readonly ClientBinding[];
  } | null;
  /** Changes are sent to each page at most this often, ms (coalesced per node). Default 150. */
  readonly updateIntervalMs: number;
  /** Transitions kept per domain for its timeline. Default 32. */
  readonly historyPerDomain: number;
  /** Transitions kept in all (the oldest domain's go first). Default 200000. */
  readonly historyTotal: number;
  /** Pages connected at once; more get 503. Default 32. */
  readonly maxClients: number;
}

export class FilterConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid filter configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** A `HOST:PORT` field, or undefined when absent or bad (the problem is recorded). */
export function tcpAddress(
  c: ConfigChecker,
  o: ConfigObject | null,
  key: string,
  at: string,
): { host: string; port: number } | undefined {
  const t = c.string(o, key, at);
  if (t === undefined) return undefined;
  try {
    const a = parseAddress(t);
    if (a.kind !== 'tcp') throw new Error('must be HOST:PORT');
    return { host: a.host, port: a.port };
  } catch (err) {
    c.fail(`${at}.${key}`, (err as Error).message);
    return undefined;
  }
}

export function vnodeName(cfg: Pick<FilterConfig, 'vnodeTemplate'>, node: FilterNodeConfig, domain: string): string {
  return node.vnodes[domain] ?? cfg.vnodeTemplate.replace(/\{node\}/g, node.name).replace(/\{domain\}/g, domain);
}

/** An address field (`HOST:PORT` or `unix:PATH`), or null when absent or bad (the problem is recorded). */
function addressField(c: ConfigChecker, o: ConfigObject, key: string, at: string): Address | null {
  const text = c.string(o, key, at);
  if (!text) return null;
  try {
    return parseAddress(text);
  } catch (err) {
    c.fail(`${at}.${key}`, (err as Error).message);
    return null;
  }
}

/** `relays:` — named relay addresses (their names are what `nodes[].relay` refers to). */
function compileRelayRefs(c: ConfigChecker, v: unknown): RelayRef[] {
  const out: RelayRef[] = [];
  if (v === undefined || v === null) return out;
  if (!Array.isArray(v)) {
    c.fail('relays', 'must be a list of { name, address }');
    return out;
  }
  v.forEach((r, i) => {
    const p = `relays.${i}`;
    const o = c.object(r, p, ['name', 'address']);
    if (!o) return;
    const name = c.string(o, 'name', p, { pattern: VNODE, patternText: 'a relay name' });
    if (o.name === undefined) c.fail(`${p}.name`, 'is required');
    if (o.address === undefined) c.fail(`${p}.address`, 'is required (HOST:PORT or unix:PATH)');
    const address = addressField(c, o, 'address', p);
    if (name && out.some((x) => x.name === name)) c.fail(`${p}.name`, `duplicate relay "${name}"`);
    else if (name && address) out.push({ name, address });
  });
  return out;
}

/** One entry of a `nodes:` list, as compiled by compileNodeList. */
export interface NodeListEntry {
  readonly name: string;
  readonly address: Address;
  readonly relay: string | null;
  readonly vnodes: Readonly<Record<string, string>>;
}

/**
 * A `nodes:` list (the filter's, and the relay's): `{ name, address }`, with `vnodes` and
 * `relay` (instead of `address`) where allowed. Every problem is recorded with its place.
 */
export function compileNodeList(
  c: ConfigChecker,
  ns: unknown,
  opts: { readonly relays: readonly RelayRef[] | null; readonly vnodes: boolean },
): NodeListEntry[] {
  const nodes: NodeListEntry[] = [];
  if (!Array.isArray(ns) || ns.length === 0) {
    c.fail('nodes', 'must list at least one node daemon');
    return nodes;
  }
  const keys = ['name', 'address', ...(opts.vnodes ? ['vnodes'] : []), ...(opts.relays ? ['relay'] : [])];
  const seen = new Set<string>(); // names taken (a list of 100,000 nodes is checked in linear time)
  ns.forEach((n, i) => {
    const p = `nodes.${i}`;
    if (n === null || n === undefined) {
      c.fail(p, 'is empty (a "-" with nothing after it): give { name, address } or remove the line');
      return;
    }
    const o = c.object(n, p, keys);
    if (!o) return;
    const name = c.string(o, 'name', p, { pattern: VNODE, patternText: 'a node name' });
    if (o.name === undefined) c.fail(`${p}.name`, 'is required');
    let address: Address | null = null;
    let relay: string | null = null;
    if (o.relay !== undefined && opts.relays) {
      const r = c.string(o, 'relay', p);
      const ref = opts.relays.find((x) => x.name === r);
      if (o.address !== undefined) c.fail(`${p}`, 'give either address (watched directly) or relay, not both');
      else if (r && !ref) c.fail(`${p}.relay`, `no relay "${r}" in relays`);
      else if (ref) [address, relay] = [ref.address, ref.name];
    } else {
      if (o.address === undefined)
        c.fail(`${p}.address`, `is required (HOST:PORT or unix:PATH${opts.relays ? ', or relay: NAME' : ''})`);
      address = addressField(c, o, 'address', p);
    }
    const vm = opts.vnodes
      ? c.object(o.vnodes, `${p}.vnodes`, Object.keys((o.vnodes as object | undefined) ?? {}))
      : null;
    const vnodes: Record<string, string> = {};
    for (const [dom, v] of Object.entries(vm ?? {})) {
      if (!DOMAIN_NAME.test(dom)) c.fail(`${p}.vnodes.${dom}`, 'is not a domain name');
      else if (typeof v !== 'string' || !VNODE.test(v)) c.fail(`${p}.vnodes.${dom}`, 'must be a PBS vnode name');
      else vnodes[dom] = v;
    }
    if (name && seen.has(name)) c.fail(`${p}.name`, `duplicate node "${name}"`);
    else if (name && address) {
      seen.add(name);
      nodes.push({ name, address, relay, vnodes });
    }
  });
  return nodes;
}

/** `baseDir` resolves relative paths (the config file's directory). */
export function compileFilterConfig(doc: unknown, baseDir = '.'): FilterConfig {
  const c = new ConfigChecker();
  const top = c.object(doc ?? {}, '', [
    'listen',
    'nodes',
    'relays',
    'vnodeTemplate',
    'graceMs',
    'reconnect',
    'pbs',
    'log',
    'tls',
    'web',
    'limits',
  ]);
  const listen = c.object(top?.listen, 'listen', ['grpc', 'http', 'allowNonLoopback']);
  const allow = c.bool(listen, 'allowNonLoopback', 'listen') ?? false;
  const tcp = (key: string, def: { host: string; port: number }): { host: string; port: number } => {
    const a = tcpAddress(c, listen, key, 'listen');
    if (!a) return def;
    if (!isLoopbackHost(a.host) && !allow)
      c.fail(`listen.${key}`, `${a.host} is not a loopback address; needs listen.allowNonLoopback: true`);
    return a;
  };
  const grpc = tcp('grpc', { host: '127.0.0.1', port: 5680 });
  const http = tcp('http', { host: '127.0.0.1', port: 5681 });
  const vnodeTemplate = c.string(top, 'vnodeTemplate', '') ?? '{node}-{domain}';
  if (!vnodeTemplate.includes('{domain}')) c.fail('vnodeTemplate', 'must contain {domain}');
  else if (!VNODE.test(vnodeTemplate.replace(/\{node\}/g, 'n').replace(/\{domain\}/g, 'd')))
    c.fail('vnodeTemplate', 'must make PBS vnode names: letters, digits, ._- around {node} and {domain}');
  const graceMs = c.int(top, 'graceMs', '', 100, 3_600_000) ?? 10_000;
  const { initialMs: reconnectInitialMs, maxMs: reconnectMaxMs } = c.backoff(top?.reconnect, 'reconnect', {
    initialMs: 250,
    maxMs: 10_000,
  });

  const relays = compileRelayRefs(c, top?.relays);
  const nodes = compileNodeList(c, top?.nodes, { relays, vnodes: true }).map((n): FilterNodeConfig => ({
    name: n.name,
    address: n.address,
    relay: n.relay,
    vnodes: n.vnodes,
  }));
  for (const r of relays) {
    const i = (top?.relays as { name?: unknown }[]).findIndex((x) => x?.name === r.name);
    if (!nodes.some((n) => n.relay === r.name)) c.fail(`relays.${i}`, `no node is watched through relay "${r.name}"`);
  }
  const seen = new Map<string, string>();
  for (const n of nodes) {
    for (const v of Object.values(n.vnodes)) {
      const other = seen.get(v);
      if (other) c.fail('nodes', `vnode ${v} is listed for both ${other} and ${n.name}`);
      seen.set(v, n.name);
    }
  }
  const pb = c.object(top?.pbs, 'pbs', [
    'qmgr',
    'qsig',
    'server',
    'batchDelayMs',
    'qmgrTimeoutMs',
    'retry',
    'kickMinIntervalMs',
    'honestAccounting',
    'qstat',
    'pbsnodes',
    'qdel',
    'reassertIntervalMs',
    'wakeIntervalMs',
    'accountingRecheckMs',
    'purgeResumedJobHistory',
    'commandHelper',
  ]);
  let pbs: FilterConfig['pbs'] = null;
  if (pb) {
    const retry = c.backoff(pb.retry, 'pbs.retry', {
      initialMs: 500,
      maxMs: 10_000,
    });
    const qmgr = c.string(pb, 'qmgr', 'pbs') ?? 'qmgr';
    // The other PBS commands default to qmgr's directory when qmgr is given as a path (/opt/pbs/bin/qmgr).
    const pbsTool = (name: string): string =>
      c.string(pb, name, 'pbs') ?? (qmgr.includes('/') ? path.join(path.dirname(qmgr), name) : name);
    pbs = {
      qmgr,
      qsig: pbsTool('qsig'),
      server:
        c.string(pb, 'server', 'pbs', { pattern: /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, patternText: 'a PBS server name' }) ??
        null,
      batchDelayMs: c.int(pb, 'batchDelayMs', 'pbs', 0, 60_000) ?? 20,
      qmgrTimeoutMs: c.int(pb, 'qmgrTimeoutMs', 'pbs', 100, 600_000) ?? 10_000,
      retryInitialMs: retry.initialMs,
      retryMaxMs: retry.maxMs,
      kickMinIntervalMs: c.int(pb, 'kickMinIntervalMs', 'pbs', 0, 3_600_000) ?? 1000,
      honestAccounting: c.bool(pb, 'honestAccounting', 'pbs') ?? true,
      qstat: pbsTool('qstat'),
      pbsnodes: pbsTool('pbsnodes'),
      qdel: pbsTool('qdel'),
      reassertIntervalMs: c.int(pb, 'reassertIntervalMs', 'pbs', 0, 86_400_000) ?? 30_000,
      wakeIntervalMs: c.int(pb, 'wakeIntervalMs', 'pbs', 0, 86_400_000) ?? 5000,
      accountingRecheckMs: c.int(pb, 'accountingRecheckMs', 'pbs', 100, 3_600_000) ?? 10_000,
      purgeResumedJobHistory: c.bool(pb, 'purgeResumedJobHistory', 'pbs') ?? true,
      commandHelper: c.bool(pb, 'commandHelper', 'pbs') ?? true,
    };
    if (pbs.wakeIntervalMs > 0 && pbs.wakeIntervalMs < 500)
      c.fail('pbs.wakeIntervalMs', 'must be 0 (never) or at least 500 ms (each pass runs qstat)');
    if (pbs.reassertIntervalMs > 0 && pbs.reassertIntervalMs < 500)
      c.fail('pbs.reassertIntervalMs', 'must be 0 (never) or at least 500 ms (each pass runs pbsnodes)');
  }
  const log = c.object(top?.log, 'log', ['level']);
  const logLevel = c.oneOf(log, 'level', 'log', LOG_LEVELS) ?? 'info';
  const tls: FilterConfig['tls'] = c.pemFiles(top?.tls, 'tls', baseDir, [])?.files ?? null;
  const web = compileWebConfig(c, top?.web, baseDir);
  const lim = c.object(top?.limits, 'limits', [
    'maxWatchStreams',
    'maxWatchStreamsPerClient',
    'maxConnections',
    'maxConnectionsPerSource',
    'idleConnectionMs',
  ]);
  const limits = {
    maxWatchStreams: c.int(lim, 'maxWatchStreams', 'limits', 1, 100_000) ?? 64,
    maxWatchStreamsPerClient: c.int(lim, 'maxWatchStreamsPerClient', 'limits', 1, 100_000) ?? 16,
    maxConnections: c.int(lim, 'maxConnections', 'limits', 1, 100_000) ?? 256,
    maxConnectionsPerSource: c.int(lim, 'maxConnectionsPerSource', 'limits', 1, 100_000) ?? 64,
    idleConnectionMs: c.int(lim, 'idleConnectionMs', 'limits', 100, 86_400_000) ?? 120_000,
  };
  if (c.problems.length > 0) throw new FilterConfigError(c.problems);
  const cfg: FilterConfig = {
    web,
    limits,
    tls,
    grpc,
    http,
    nodes,
    relays,
    vnodeTemplate,
    graceMs,
    reconnectInitialMs,
    reconnectMaxMs,
    pbs,
    logLevel,
  };
  return cfg;
}

/** `web:` — off unless `enabled: true`; loopback HTTP, or HTTPS with client certificates beyond it. */
function compileWebConfig(c: ConfigChecker, v: unknown, baseDir: string): WebConfig | null {
  const at = 'web';
  const o = c.object(v, at, [
    'enabled',
    'listen',
    'tls',
    'updateIntervalMs',
    'historyPerDomain',
    'historyTotal',
    'maxClients',
  ]);
  if (!o) return null;
  const enabled = c.bool(o, 'enabled', at) ?? false;
  const { host, port } = tcpAddress(c, o, 'listen', at) ?? { host: '127.0.0.1', port: 5682 };
  const t = c.pemFiles(o.tls, `${at}.tls`, baseDir, ['clients']);
  const clients = t
    ? c.clientBindings(
        t.o.clients,
        `${at}.tls.clients`,
        'the identities (certificate CN) allowed to read the page, with their roles',
      )
    : [];
  const tls: WebConfig['tls'] = t?.files ? { ...t.files, clients } : null;
  if (!isLoopbackHost(host) && o.tls === undefined)
    c.fail(`${at}.listen`, `${host} is not a loopback address; serving the page beyond loopback needs web.tls`);
  const updateIntervalMs = c.int(o, 'updateIntervalMs', at, 20, 10_000) ?? 150;
  const historyPerDomain = c.int(o, 'historyPerDomain', at, 1, 1000) ?? 32;
  const historyTotal = c.int(o, 'historyTotal', at, 100, 10_000_000) ?? 200_000;
  const maxClients = c.int(o, 'maxClients', at, 1, 10_000) ?? 32;
  if (!enabled) return null;
  return { host, port, tls, updateIntervalMs, historyPerDomain, historyTotal, maxClients };
}

/**
 * The YAML document of a configuration file (the filter's, the relay's); a file that is not a
 * regular file, too large or bad YAML is `toError`'s problem list, an unreadable one an InputFileError.
 */
export function readYamlConfig(file: string, toError: (problems: string[]) => Error): unknown {
  let text: string;
  try {
    text = readRegularFileSync(file, { maxBytes: 16 * 1024 * 1024, what: 'config file' }).data.toString('utf8');
  } catch (err) {
    if (err instanceof FileReadError && (err.problem === 'not-regular' || err.problem === 'too-large'))
      throw toError([err.message]);
    throw new InputFileError([`cannot read the configuration file ${path.resolve(file)} (${describeFsError(err)})`]);
  }
  const r = parseYamlStrict(text, file);
  if (!r.ok) throw toError([...r.problems]);
  return r.value;
}

export function loadFilterConfig(file: string): FilterConfig {
  const doc = readYamlConfig(file, (problems) => new FilterConfigError(problems));
  return compileFilterConfig(doc, path.dirname(path.resolve(file)));
}
