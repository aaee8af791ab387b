/** gRPC TLS credentials from PEM files: server side (mTLS, files watched for rotation) and client side. */
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { AuthContext } from '@grpc/grpc-js/build/src/auth-context';
import { readRegularFile, readRegularFileSync } from './file-read';
import { InputFileError } from './startup';

export interface TlsFiles {
  /** The site CA (PEM) that issues every certificate. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Largest PEM file read (a CA bundle), bytes. */
export const MAX_PEM_BYTES = 1024 * 1024;

function checkPem(b: Buffer, file: string, what: string): Buffer {
  if (!b.toString('latin1').includes('-----BEGIN ')) throw new Error(`${what} ${file}: not a PEM file`);
  return b;
}

/**
 * Reads a PEM file (a regular file of at most MAX_PEM_BYTES), with a clear error: an
 * InputFileError (exit 66 at start-up, which systemd does not retry in a loop), whatever is wrong.
 */
export function readPem(file: string, what: string): Buffer {
  try {
    return checkPem(readRegularFileSync(file, { maxBytes: MAX_PEM_BYTES, what }).data, file, what);
  } catch (err) {
    throw new InputFileError([(err as Error).message]);
  }
}

/**
 * Reads the three files of a TLS identity and checks that they make one (a certificate and key
 * that match, a CA that parses): an InputFileError otherwise.
 */
export function readTlsFiles(files: TlsFiles): { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer } {
  const pem = {
    ca: readPem(files.ca, 'CA certificate'),
    cert: readPem(files.cert, 'certificate'),
    key: readPem(files.key, 'private key'),
  };
  try {
    createSecureContext(pem);
  } catch (err) {
    throw new InputFileError([
      `TLS files (CA ${files.ca}, certificate ${files.cert}, key ${files.key}) do not make an identity: ${(err as Error).message}`,
    ]);
  }
  return pem;
}

/** readPem off the event loop (reloads while serving). */
export async function readPemAsync(file: string, what: string): Promise<Buffer> {
  return checkPem((await readRegularFile(file, { maxBytes: MAX_PEM_BYTES, what })).data, file, what);
}

/**
 * Server credentials: TLS with this node's certificate; client certificates are requested and
 * checked against the CA, but a handshake without a valid one is not broken off, so the call
 * can be answered UNAUTHENTICATED with a reason. The files are re-read every `refreshMs`, so
 * renewed certificates need no restart. Resolves once the files are loaded (a connection
 * before that would fail its handshake).
 */
export async function serverTlsCredentials(files: TlsFiles, refreshMs = 60_000): Promise<grpc.ServerCredentials> {
  readTlsFiles(files);
  const provider = new grpc.experimental.FileWatcherCertificateProvider({
    caCertificateFile: files.ca,
    certificateFile: files.cert,
    privateKeyFile: files.key,
    refreshIntervalMs: refreshMs,
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`TLS files not loaded within 10 s: ${files.cert}`)), 10_000);
    const onIdentity = (u: unknown): void => {
      if (!u) return;
      clearTimeout(timer);
      provider.removeIdentityCertificateListener(onIdentity);
      resolve();
    };
    provider.addIdentityCertificateListener(onIdentity);
  });
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/** The TLS server name (SNI) sent to a server addressed by IP; servers ignore it. */
const SNI_FOR_IP = 'magrathea';

/** Credentials and channel options for one server. */
export interface ClientChannel {
  readonly credentials: grpc.ChannelCredentials;
  readonly options: grpc.ChannelOptions;
}

/**
 * Client channels to any number of servers with one set of TLS files (mutual: our certificate
 * and key), or insecure. The files are read and parsed once (one secure context shared by every
 * channel). grpc-js would send an IP address as the TLS server name, which Node warns about on
 * every process (DEP0123, RFC 6066 forbids it): for a server addressed by IP the name is
 * overridden and the certificate is still checked against the IP (its subjectAltName must list
 * it, as `magrathea pki init` does); such a server gets light credentials of its own around the
 * shared context. Servers addressed by name, and Unix sockets, share one set.
 */
export class ClientChannels {
  private readonly context: SecureContext | null;
  private readonly shared: ClientChannel;

  constructor(files: TlsFiles | null) {
    this.context = files ? createSecureContext(readTlsFiles(files)) : null;
    this.shared = {
      credentials: this.context
        ? grpc.credentials.createFromSecureContext(this.context)
        : grpc.credentials.createInsecure(),
      options: {},
    };
  }

  /** The channel to a server on `host` (null: a Unix socket). */
  for(host: string | null): ClientChannel {
    if (!this.context || !host || !isIP(host)) return this.shared;
    return {
      credentials: grpc.credentials.createFromSecureContext(this.context, {
        checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert),
      }),
      options: { 'grpc.ssl_target_name_override': SNI_FOR_IP },
    };
  }
}

/** The channel to one server on `host` (null: a Unix socket); see ClientChannels. */
export function clientChannel(files: TlsFiles | null, host: string | null): ClientChannel {
  return new ClientChannels(files).for(host);
}

/**
 * The caller's verified certificate (DER), or null. grpc-js reports a TLS peer only when the
 * TLS layer verified its certificate against the CA (present, unexpired, issued by the CA);
 * anything else looks like "no certificate".
 */
export function verifiedPeerCertificate(ctx: AuthContext | null | undefined): Buffer | null {
  if (!ctx || ctx.transportSecurityType !== 'ssl') return null;
  const raw = ctx.sslPeerCertificate?.raw;
  return raw && raw.length > 0 ? raw : null;
}
