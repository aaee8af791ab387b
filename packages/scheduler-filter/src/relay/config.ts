/** magrathea-relay configuration: YAML, validated with every problem reported at once. */
import * as path from 'node:path';
import { ConfigChecker, LOG_LEVELS, isLoopbackHost } from '@magrathea/common';
import type { ClientBinding, TlsFiles } from '@magrathea/common';
import type { NodeListEntry } from '../service/config';
import { compileNodeList, readYamlConfig, tcpAddress } from '../service/config';
import { MAX_MESSAGE_BYTES } from '../service/node-watcher';

export interface RelayConfig {
  /** RelayService address (default 127.0.0.1:5690); beyond loopback only with `tls`. */
  readonly listen: { readonly host: string; readonly port: number };
  /** The daemons whose streams the relay holds (the filter's `nodes:` format: name, address). */
  readonly nodes: readonly NodeListEntry[];
  /** Keepalive pings a third of this apart detect a silent daemon, ms. Default 10000. */
  readonly graceMs: number;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  /** Changes kept per node after its last snapshot before a fresh snapshot is asked for. Default 1000. */
  readonly maxChangesPerNode: number;
  /** Bytes of those changes past which a fresh snapshot is asked for too. Default 16 MiB. */
  readonly maxChangeBytesPerNode: number;
  /** Messages queued for one reader that does not keep up before its stream is ended. Default 200000. */
  readonly maxQueuedPerReader: number;
  /** Bytes queued for one reader past which its stream is ended too. Default 64 MiB. */
  readonly maxQueuedBytesPerReader: number;
  /** Open WatchNodes streams in all (more: RESOURCE_EXHAUSTED). Default 64. */
  readonly maxStreams: number;
  /** Open WatchNodes streams of one client (certificate identity, or source address). Default 16. */
  readonly maxStreamsPerClient: number;
  /** A connection with no call open this long is closed, ms (a reader's stream keeps its own open). Default 120000. */
  readonly idleConnectionMs: number;
  /**
   * mTLS: the listener's certificate (`cert`, `key`; readers need a client certificate with a role
   * in `clients`) and the client certificate toward the daemons (`client`: clientCert and
   * clientKey, or cert and key again; role `filter` there). Null: plaintext.
   */
  readonly tls: {
    readonly ca: string;
    readonly cert: string;
    readonly key: string;
    readonly clients: readonly ClientBinding[];
    readonly client: TlsFiles;
  } | null;
  readonly logLevel: string;
  /** `GET /metrics` (Prometheus) on this address; null: no metrics listener (the default). */
  readonly metrics: { readonly host: string; readonly port: number } | null;
}

/** The least bound of a node's changes: one message of the largest size the relay takes (16 MiB). */
const MIN_CHANGE_BYTES = MAX_MESSAGE_BYTES;
/** The least bound of a reader's queue: such a message and its framing. */
const MIN_QUEUED_BYTES = 17 * 2 ** 20;

export class RelayConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid relay configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** `baseDir` resolves relative paths (the config file's directory). */
export function compileRelayConfig(doc: unknown, baseDir = '.'): RelayConfig {
  const c = new ConfigChecker();
  const top = c.object(doc ?? {}, '', [
    'listen',
    'allowNonLoopback',
    'nodes',
    'graceMs',
    'reconnect',
    'maxChangesPerNode',
    'maxChangeBytesPerNode',
    'maxQueuedPerReader',
    'maxQueuedBytesPerReader',
    'maxStreams',
    'maxStreamsPerClient',
    'idleConnectionMs',
    'tls',
    'log',
    'metrics',
  ]);
  const listen = tcpAddress(c, top, 'listen', '') ?? { host: '127.0.0.1', port: 5690 };
  const allow = c.bool(top, 'allowNonLoopback', '') ?? false;
  const nodes = compileNodeList(c, top?.nodes, { relays: null, vnodes: false });
  const graceMs = c.int(top, 'graceMs', '', 100, 3_600_000) ?? 10_000;
  const { initialMs: reconnectInitialMs, maxMs: reconnectMaxMs } = c.backoff(top?.reconnect, 'reconnect', {
    initialMs: 250,
    maxMs: 10_000,
  });
  const maxChangesPerNode = c.int(top, 'maxChangesPerNode', '', 1, 1_000_000) ?? 1000;
  const maxQueuedPerReader = c.int(top, 'maxQueuedPerReader', '', 100, 10_000_000) ?? 200_000;
  // At least one largest message (16 MiB) must fit, or a node could never be read whole.
  const maxChangeBytesPerNode = c.int(top, 'maxChangeBytesPerNode', '', MIN_CHANGE_BYTES, 2 ** 40) ?? 16 * 2 ** 20;
  const maxQueuedBytesPerReader = c.int(top, 'maxQueuedBytesPerReader', '', MIN_QUEUED_BYTES, 2 ** 40) ?? 64 * 2 ** 20;
  const maxStreams = c.int(top, 'maxStreams', '', 1, 100_000) ?? 64;
  const maxStreamsPerClient = c.int(top, 'maxStreamsPerClient', '', 1, 100_000) ?? 16;
  const idleConnectionMs = c.int(top, 'idleConnectionMs', '', 100, 86_400_000) ?? 120_000;
  const t = c.pemFiles(top?.tls, 'tls', baseDir, ['clients', 'clientCert', 'clientKey']);
  const clientFile = (k: string): string | undefined => {
    const f = c.path(t?.o ?? null, k, 'tls');
    return f ? path.resolve(baseDir, f) : undefined;
  };
  const clientCert = clientFile('clientCert');
  const clientKey = clientFile('clientKey');
  if (t && (t.o.clientCert === undefined) !== (t.o.clientKey === undefined))
    c.fail('tls', 'give clientCert and clientKey together (or neither: cert and key serve both ways)');
  // The filters allowed to read (role filter; reader and operator may read too).
  const clients = t
    ? c.clientBindings(t.o.clients, 'tls.clients', 'the identities (certificate CN) allowed to read, with their roles')
    : [];
  const tls: RelayConfig['tls'] = t?.files
    ? {
        ...t.files,
        clients,
        client: {
          ca: t.files.ca,
          cert: clientCert ?? t.files.cert,
          key: clientKey ?? t.files.key,
        },
      }
    : null;
  if (!isLoopbackHost(listen.host)) {
    if (!top?.tls) c.fail('listen', `${listen.host} is not a loopback address; serving beyond loopback needs tls`);
    else if (!allow) c.fail('listen', `${listen.host} is not a loopback address; needs allowNonLoopback: true`);
  }
  const m = c.object(top?.metrics, 'metrics', ['listen']);
  const metrics = m ? (tcpAddress(c, m, 'listen', 'metrics') ?? null) : null;
  if (top && 'metrics' in top && top.metrics === null)
    c.fail('metrics', 'give { listen: HOST:PORT }, or leave metrics out (no metrics listener)');
  if (m && (m.listen === undefined || m.listen === null))
    c.fail('metrics.listen', 'give the HOST:PORT to serve /metrics on');
  const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::';
  if (
    metrics &&
    metrics.port !== 0 &&
    metrics.port === listen.port &&
    (metrics.host === listen.host || wildcard(metrics.host) || wildcard(listen.host))
  )
    c.fail('metrics.listen', `port ${metrics.port} is the RelayService's own (listen); give the metrics another port`);
  // Plain HTTP, read-only: beyond loopback only when asked for, like the listener.
  if (metrics && !isLoopbackHost(metrics.host) && !allow)
    c.fail('metrics.listen', `${metrics.host} is not a loopback address; needs allowNonLoopback: true`);
  const log = c.object(top?.log, 'log', ['level']);
  const logLevel = c.oneOf(log, 'level', 'log', LOG_LEVELS) ?? 'info';
  if (c.problems.length > 0) throw new RelayConfigError(c.problems);
  return {
    listen,
    nodes,
    graceMs,
    reconnectInitialMs,
    reconnectMaxMs,
    maxChangesPerNode,
    maxChangeBytesPerNode,
    maxQueuedPerReader,
    maxQueuedBytesPerReader,
    maxStreams,
    maxStreamsPerClient,
    idleConnectionMs,
    tls,
    logLevel,
    metrics,
  };
}

export function loadRelayConfig(file: string): RelayConfig {
  const doc = readYamlConfig(file, (problems) => new RelayConfigError(problems));
  return compileRelayConfig(doc, path.dirname(path.resolve(file)));
}
