/** magrathea-filter configuration: YAML, validated with every problem reported at once. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ConfigChecker,
  DOMAIN_NAME,
  InputFileError,
  LOG_LEVELS,
  describeFsError,
  isLoopbackHost,
  parseAddress,
  parseYamlStrict,
} from '@magrathea/common';
import type { Address } from '@magrathea/common';

const VNODE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

export interface FilterNodeConfig {
  readonly name: string;
  readonly address: Address;
  /** Domain name → PBS vnode name. Domains not listed use `vnodeTemplate`. */
  readonly vnodes: Readonly<Record<string, string>>;
}

export interface FilterConfig {
  /** gRPC ClusterService address (default 127.0.0.1:5680). */
  readonly grpc: { readonly host: string; readonly port: number };
  /** HTTP: /metrics and POST /v1/admit (default 127.0.0.1:5681). */
  readonly http: { readonly host: string; readonly port: number };
  readonly nodes: readonly FilterNodeConfig[];
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
    /** Re-check the PBS state of the jobs of preempted domains this often, ms. Default 10000. */
    readonly accountingRecheckMs: number;
    /**
     * Purge, once they have finished, the history of the jobs PBS's database still lists as a vnode's
     * maintenance_jobs. PBS 23.06 never saves an emptied maintenance_jobs: at the next pbs_server
     * restart a vnode whose listed job is still in the history comes back in `maintenance`. Default true.
     */
    readonly purgeResumedJobHistory: boolean;
  } | null;
  readonly logLevel: string;
  /** Client certificate for daemons that serve mTLS (role `filter`), or null for plaintext. */
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string } | null;
}

export class FilterConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid filter configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

export function vnodeName(cfg: Pick<FilterConfig, 'vnodeTemplate'>, node: FilterNodeConfig, domain: string): string {
  return node.vnodes[domain] ?? cfg.vnodeTemplate.replace(/\{node\}/g, node.name).replace(/\{domain\}/g, domain);
}

/** `baseDir` resolves relative paths (the config file's directory). */
export function compileFilterConfig(doc: unknown, baseDir = '.'): FilterConfig {
  const c = new ConfigChecker();
  const top = c.object(doc ?? {}, '', [
    'listen',
    'nodes',
    'vnodeTemplate',
    'graceMs',
    'reconnect',
    'pbs',
    'log',
    'tls',
  ]);
  const listen = c.object(top?.listen, 'listen', ['grpc', 'http', 'allowNonLoopback']);
  const allow = c.bool(listen, 'allowNonLoopback', 'listen') ?? false;
  const tcp = (key: string, def: { host: string; port: number }): { host: string; port: number } => {
    const t = c.string(listen, key, 'listen');
    if (t === undefined) return def;
    try {
      const a = parseAddress(t);
      if (a.kind !== 'tcp') throw new Error('must be HOST:PORT');
      if (!isLoopbackHost(a.host) && !allow)
        c.fail(`listen.${key}`, `${a.host} is not a loopback address; needs listen.allowNonLoopback: true`);
      return { host: a.host, port: a.port };
    } catch (err) {
      c.fail(`listen.${key}`, (err as Error).message);
      return def;
    }
  };
  const grpc = tcp('grpc', { host: '127.0.0.1', port: 5680 });
  const http = tcp('http', { host: '127.0.0.1', port: 5681 });
  const vnodeTemplate = c.string(top, 'vnodeTemplate', '') ?? '{node}-{domain}';
  if (!vnodeTemplate.includes('{domain}')) c.fail('vnodeTemplate', 'must contain {domain}');
  const graceMs = c.int(top, 'graceMs', '', 100, 3_600_000) ?? 10_000;
  const rc = c.object(top?.reconnect, 'reconnect', ['initialMs', 'maxMs']);
  const reconnectInitialMs = c.int(rc, 'initialMs', 'reconnect', 10, 600_000) ?? 250;
  const reconnectMaxMs = c.int(rc, 'maxMs', 'reconnect', 10, 3_600_000) ?? 10_000;

  const nodes: FilterNodeConfig[] = [];
  const ns = top?.nodes;
  if (!Array.isArray(ns) || ns.length === 0) c.fail('nodes', 'must list at least one node daemon');
  else {
    ns.forEach((n, i) => {
      const p = `nodes.${i}`;
      const o = c.object(n, p, ['name', 'address', 'vnodes']);
      if (!o) return;
      const name = c.string(o, 'name', p, { pattern: VNODE, patternText: 'a node name' });
      if (o.name === undefined) c.fail(`${p}.name`, 'is required');
      const addrText = c.string(o, 'address', p);
      if (o.address === undefined) c.fail(`${p}.address`, 'is required (HOST:PORT or unix:PATH)');
      let address: Address | null = null;
      if (addrText) {
        try {
          address = parseAddress(addrText);
        } catch (err) {
          c.fail(`${p}.address`, (err as Error).message);
        }
      }
      const vm = c.object(o.vnodes, `${p}.vnodes`, Object.keys((o.vnodes as object | undefined) ?? {}));
      const vnodes: Record<string, string> = {};
      for (const [dom, v] of Object.entries(vm ?? {})) {
        if (!DOMAIN_NAME.test(dom)) c.fail(`${p}.vnodes.${dom}`, 'is not a domain name');
        else if (typeof v !== 'string' || !VNODE.test(v)) c.fail(`${p}.vnodes.${dom}`, 'must be a PBS vnode name');
        else vnodes[dom] = v;
      }
      if (name && nodes.some((x) => x.name === name)) c.fail(`${p}.name`, `duplicate node "${name}"`);
      else if (name && address) nodes.push({ name, address, vnodes });
    });
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
    'accountingRecheckMs',
    'purgeResumedJobHistory',
  ]);
  let pbs: FilterConfig['pbs'] = null;
  if (pb) {
    const retry = c.object(pb.retry, 'pbs.retry', ['initialMs', 'maxMs']);
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
      retryInitialMs: c.int(retry, 'initialMs', 'pbs.retry', 10, 600_000) ?? 500,
      retryMaxMs: c.int(retry, 'maxMs', 'pbs.retry', 10, 3_600_000) ?? 10_000,
      kickMinIntervalMs: c.int(pb, 'kickMinIntervalMs', 'pbs', 0, 3_600_000) ?? 1000,
      honestAccounting: c.bool(pb, 'honestAccounting', 'pbs') ?? true,
      qstat: pbsTool('qstat'),
      pbsnodes: pbsTool('pbsnodes'),
      qdel: pbsTool('qdel'),
      reassertIntervalMs: c.int(pb, 'reassertIntervalMs', 'pbs', 0, 86_400_000) ?? 30_000,
      accountingRecheckMs: c.int(pb, 'accountingRecheckMs', 'pbs', 100, 3_600_000) ?? 10_000,
      purgeResumedJobHistory: c.bool(pb, 'purgeResumedJobHistory', 'pbs') ?? true,
    };
    if (pbs.reassertIntervalMs > 0 && pbs.reassertIntervalMs < 500)
      c.fail('pbs.reassertIntervalMs', 'must be 0 (never) or at least 500 ms (each pass runs pbsnodes)');
  }
  const log = c.object(top?.log, 'log', ['level']);
  const logLevel = c.oneOf(log, 'level', 'log', LOG_LEVELS) ?? 'info';
  const t = c.object(top?.tls, 'tls', ['ca', 'cert', 'key']);
  let tls: FilterConfig['tls'] = null;
  if (t) {
    const f = (k: string): string | undefined => {
      if (t[k] === undefined) c.fail(`tls.${k}`, 'is required (a PEM file)');
      const v = c.string(t, k, 'tls');
      return v ? path.resolve(baseDir, v) : undefined;
    };
    const ca = f('ca');
    const cert = f('cert');
    const key = f('key');
    if (ca && cert && key) tls = { ca, cert, key };
  }
  if (c.problems.length > 0) throw new FilterConfigError(c.problems);
  const cfg: FilterConfig = {
    tls,
    grpc,
    http,
    nodes,
    vnodeTemplate,
    graceMs,
    reconnectInitialMs,
    reconnectMaxMs,
    pbs,
    logLevel,
  };
  return cfg;
}

export function loadFilterConfig(file: string): FilterConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InputFileError([`cannot read the configuration file ${path.resolve(file)} (${describeFsError(err)})`]);
  }
  const r = parseYamlStrict(text, file);
  if (!r.ok) throw new FilterConfigError(r.problems);
  const doc = r.value;
  return compileFilterConfig(doc, path.dirname(path.resolve(file)));
}
