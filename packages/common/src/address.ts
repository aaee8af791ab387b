/** Parses the `ADDR` forms the CLI and configs accept: `HOST:PORT`, `[V6]:PORT` or `unix:PATH`. */

export type Address = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export class AddressError extends Error {
  override readonly name = 'AddressError';
}

export function parseAddress(text: string): Address {
  const s = text.trim();
  if (s.startsWith('unix:')) {
    const p = s.slice('unix:'.length);
    if (p.length === 0) throw new AddressError(`empty socket path in "${text}"`);
    return { kind: 'unix', path: p };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(s);
  if (!m) throw new AddressError(`"${text}" is not HOST:PORT, [IPv6]:PORT or unix:PATH`);
  const host = (m[1] ?? m[2]) as string;
  const port = Number(m[3]);
  if (port > 65535) throw new AddressError(`port ${port} out of range in "${text}"`);
  return { kind: 'tcp', host, port };
}

/** The target string grpc-js expects for an address. */
export function grpcTarget(a: Address): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export function formatAddress(a: Address): string {
  return grpcTarget(a);
}

/** True for loopback hosts (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The address part of a gRPC peer string: "10.0.0.5:53211" → "10.0.0.5", "::1:5000" → "::1". */
export function sourceOf(peer: string): string {
  const i = peer.lastIndexOf(':');
  return i > 0 && /^\d+$/.test(peer.slice(i + 1)) ? peer.slice(0, i) : peer;
}
