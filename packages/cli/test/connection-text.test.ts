/** What the CLI shows of a failed connection: words, not grpc-js's internals (docs/cli.md). */
import * as grpc from '@grpc/grpc-js';
import { fromGrpcError, plainConnectionText } from '../src/client';
import { clusterTable } from '../src/commands/cluster';

const REFUSED = 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:5678. Resolution note: ';

test('the status name, "Last error", resolution notes and times are taken out, wherever they are', () => {
  expect(plainConnectionText(`UNAVAILABLE: ${REFUSED}`)).toBe('connect ECONNREFUSED 127.0.0.1:5678');
  expect(
    plainConnectionText(
      'relay rack1 (127.0.0.1:5690): UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1 (2026-12-04T21:00:00.000Z)',
    ),
  ).toBe('relay rack1 (127.0.0.1:5690): connect ECONNREFUSED 127.0.0.1:1');
  expect(plainConnectionText('no answer within 10000 ms')).toBe('no answer within 10000 ms');
});

test("magrathea cluster status: an unreachable node's note is in words", () => {
  const out = clusterTable(
    {
      nodes: [
        {
          name: 'nodea',
          reachable: false,
          since_ms: String(Date.now() - 5000),
          last_seen_ms: '0',
          generation: '3',
          error: `UNAVAILABLE: ${REFUSED}`,
          vnodes: [],
        },
      ],
    } as never,
    Date.now(),
  );
  expect(out).toMatch(/UNREACHABLE .*: connect ECONNREFUSED 127\.0\.0\.1:5678/);
  expect(out).not.toMatch(/Last error|Resolution note|UNAVAILABLE:/);
});

test('a certificate that does not name the address: said so, with how to re-issue it', () => {
  const e = fromGrpcError(
    {
      code: grpc.status.UNAVAILABLE,
      details:
        "No connection established. Last error: Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: IP: 10.199.0.1 is not in the cert's list: 127.0.0.1",
      metadata: new grpc.Metadata(),
    },
    { addr: '10.199.0.1:5688', component: 'magrathead', tls: { ca: 'c', cert: 'c', key: 'k' }, timeoutMs: 1000 },
  );
  expect(e.exitCode).toBe(7);
  expect(e.message).toMatch(/certificate does not name the address/);
  expect(e.hint).toMatch(/pki init --ip/);
});
