/**
 * gRPC listeners owned by us rather than by grpc-js: a net.Server accepts each connection, the
 * ConnectionGuard caps them, and the connection is handed to the grpc.Server (connection
 * injector). A Unix socket is created safely: never over a socket another process still answers
 * on, and with mode 0600 from the moment its name exists (bound inside a private directory,
 * then renamed into place).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { ConnectionGuard } from './connection-guard';

/** A listener serving one grpc.Server. */
export interface GrpcListener {
  /** The bound TCP port (0 for a Unix socket). */
  readonly port: number;
  /** Stops accepting connections (open ones are left to the grpc.Server's shutdown). */
  close(): Promise<void>;
}

/** A Unix socket path that is taken: another process answers on it, or it is not a socket. */
export class SocketInUseError extends Error {
  override readonly name = 'SocketInUseError';
}

/** How long a new connection may stay silent before its first bytes (the HTTP/2 preface or TLS hello), ms. */
export const FIRST_BYTES_MS = 10_000;

/**
 * Each connection is admitted by the guard and handed to the grpc.Server once it has sent its
 * first bytes (put back in front of the stream): a connection that says nothing is closed after
 * `firstBytesMs` (grpc-js itself would keep a silent peer that does not read forever).
 */
function serve(
  server: grpc.Server,
  creds: grpc.ServerCredentials,
  guard: ConnectionGuard,
  firstBytesMs: number,
): net.Server {
  const injector = server.createConnectionInjector(creds);
  return net.createServer((socket) => {
    if (!guard.admit(socket)) return;
    const timer = setTimeout(() => socket.destroy(), firstBytesMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.once('data', (first: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      socket.unshift(first);
      injector.injectConnection(socket);
    });
  });
}

function listening(ns: net.Server, port: number): GrpcListener {
  return {
    port,
    close: () => new Promise<void>((resolve) => ns.close(() => resolve())),
  };
}

/** Serves `server` on `host:port` (port 0 picks one). */
export async function listenGrpcTcp(
  server: grpc.Server,
  creds: grpc.ServerCredentials,
  guard: ConnectionGuard,
  host: string,
  port: number,
  firstBytesMs = FIRST_BYTES_MS,
): Promise<GrpcListener> {
  const ns = serve(server, creds, guard, firstBytesMs);
  await new Promise<void>((resolve, reject) => {
    ns.once('error', reject);
    ns.listen(port, host, () => {
      ns.off('error', reject);
      resolve();
    });
  });
  return listening(ns, (ns.address() as net.AddressInfo).port);
}

/** Does a process accept connections on this Unix socket? */
export function unixSocketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socketPath);
    const timer = setTimeout(() => {
      c.destroy();
      resolve(true); // accepted but silent: someone is there
    }, 1000);
    c.once('connect', () => {
      clearTimeout(timer);
      c.destroy();
      resolve(true);
    });
    c.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * Serves `server` on a Unix socket with mode 0600. A stale socket (nobody answers) is replaced;
 * a live one, or a path that is not a socket, is refused with SocketInUseError.
 */
export async function listenGrpcUnix(
  server: grpc.Server,
  creds: grpc.ServerCredentials,
  guard: ConnectionGuard,
  socketPath: string,
  firstBytesMs = FIRST_BYTES_MS,
): Promise<GrpcListener> {
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    st = null;
  }
  if (st && !st.isSocket())
    throw new SocketInUseError(`${socketPath} exists and is not a socket; it is not replaced (move it away)`);
  if (st && (await unixSocketAnswers(socketPath)))
    throw new SocketInUseError(
      `another process answers on ${socketPath} (another magrathead?); the socket is not taken over — stop that process first`,
    );
  // Bound in a directory only we can enter, made 0600, then moved into place: nobody can connect
  // while the socket still has the default mode.
  const dir = path.dirname(socketPath);
  const priv = fs.mkdtempSync(path.join(dir, `.${path.basename(socketPath)}-`));
  const tmp = path.join(priv, randomBytes(4).toString('hex'));
  const ns = serve(server, creds, guard, firstBytesMs);
  try {
    fs.chmodSync(priv, 0o700);
    await new Promise<void>((resolve, reject) => {
      ns.once('error', reject);
      ns.listen(tmp, () => {
        ns.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, socketPath);
  } catch (err) {
    ns.close();
    throw err;
  } finally {
    fs.rmSync(priv, { recursive: true, force: true });
  }
  const ino = fs.lstatSync(socketPath).ino;
  return {
    port: 0,
    close: () => {
      // Our socket's name goes first (only if it is still ours), so nobody connects any more.
      try {
        if (fs.lstatSync(socketPath).ino === ino) fs.unlinkSync(socketPath);
      } catch {
        // already gone
      }
      return new Promise<void>((resolve) => ns.close(() => resolve()));
    },
  };
}
