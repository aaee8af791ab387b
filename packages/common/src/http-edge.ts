/** Small pieces both HTTP edges use (the daemon's hook API, the filter's admission and metrics server). */
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a `GET /metrics` route serves: the Prometheus exposition and its content type. */
export interface MetricsExposition {
  text(): Promise<string>;
  readonly contentType: string;
}

/** Binds `server` to `host:port` (port 0 picks one); resolves with the bound port. */
export function listenHttp(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Parses a request body that must be a JSON object (a JSON array too with `allowArrays`).
 * `invalid` makes the edge's own 400 error from the message.
 */
export function parseJsonObject(
  text: string,
  invalid: (message: string) => Error,
  opts: { readonly allowArrays?: boolean } = {},
): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw invalid('the body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || (Array.isArray(v) && opts.allowArrays !== true))
    throw invalid('the body must be a JSON object');
  return v as Record<string, unknown>;
}
