/**
 * Start-up errors of magrathead and magrathea-filter as an admin meets them (real child
 * processes): one line on stderr that says what is wrong, the documented exit code (docs/cli.md),
 * log levels in words, nothing started, and `--version`.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { DAEMON_BIN, FILTER_BIN, ROOT, runToExit, tmpDir } from '../helpers/processes';

const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** An address no interface of a test machine has (TEST-NET-3, RFC 5737). */
const ABSENT = '203.0.113.77';
const hasAbsent = !Object.values(os.networkInterfaces())
  .flat()
  .some((i) => i?.address === ABSENT);

/** A TCP port held by this test for as long as the returned server is open. */
function holdPort(): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () =>
      resolve({
        port: (s.address() as net.AddressInfo).port,
        close: () => new Promise((r) => s.close(() => r())),
      }),
    );
  });
}

const jsonLines = (text: string): Record<string, unknown>[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('magrathead start-up errors', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('mg-start-');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const daemon = (config: string, ...args: string[]) => {
    fs.writeFileSync(path.join(dir, 'd.yaml'), config);
    return runToExit([DAEMON_BIN, '--config', path.join(dir, 'd.yaml'), ...args]);
  };
  const base = (listen: string) =>
    `stateDir: ${dir}/state\nlisten: { tcp: "${listen}", unixSocket: ${dir}/d.sock }\ndomains: [{ name: meta }, { name: priv, class: priority }]\n`;

  test('--version prints the version and exits 0', async () => {
    const r = await runToExit([DAEMON_BIN, '--version']);
    expect([r.code, r.stdout.trim()]).toEqual([0, VERSION]);
  });

  test('a bad --log-level: one line naming the valid levels, exit 64 (not a pino stack trace)', async () => {
    const r = await runToExit([DAEMON_BIN, '--log-level', 'loud', '--state-dir', `${dir}/state`]);
    expect(r.code).toBe(64);
    expect(r.stderr.trim()).toBe(
      'magrathead: --log-level: "loud" is not a log level (one of fatal, error, warn, info, debug, trace, silent)',
    );
    expect(fs.existsSync(`${dir}/state`)).toBe(false);
  });

  test('a missing token file: says which, exit 66, before anything starts (no "stopped" line)', async () => {
    const r = await daemon(
      `${base('127.0.0.1:0')}hookApi: { listen: "127.0.0.1:0" }\n`.replace(
        '{ name: meta }',
        `{ name: meta, tokenFile: ${dir}/meta.token }`,
      ),
    );
    expect(r.code).toBe(66);
    expect(r.stderr.trim()).toBe(
      `magrathead: domains.0.tokenFile (domain meta): cannot read ${dir}/meta.token (ENOENT: no such file)`,
    );
    const logs = jsonLines(r.stdout);
    expect(logs.map((l) => l.msg)).toEqual(['magrathead starting', 'magrathead failed to start']);
    expect(logs[1]).toMatchObject({ level: 'fatal', exitCode: 66 });
    expect(logs[1]!.err).toBeUndefined(); // no stack trace for an admin's mistake
    expect(fs.existsSync(`${dir}/state`)).toBe(false);
  });

  test('a missing configuration file: exit 66', async () => {
    const r = await runToExit([DAEMON_BIN, '--config', `${dir}/nope.yaml`]);
    expect(r.code).toBe(66);
    expect(r.stderr).toMatch(/cannot read the configuration file .*nope\.yaml \(ENOENT: no such file\)/);
  });

  test('the gRPC port in use: says so and how to find who, exit 69 (not 70 with grpc-js text)', async () => {
    const held = await holdPort();
    try {
      const r = await daemon(base(`127.0.0.1:${held.port}`));
      expect(r.code).toBe(69);
      expect(r.stderr.trim()).toBe(
        `magrathead: cannot listen on 127.0.0.1:${held.port} (gRPC): the address is already in use; another process listens on port ${held.port} (see: ss -ltnp 'sport = :${held.port}')`,
      );
      expect(r.stderr).not.toMatch(/No address added|resolved/);
      const logs = jsonLines(r.stdout);
      expect(logs.at(-1)).toMatchObject({ level: 'fatal', msg: 'magrathead failed to start', exitCode: 69 });
      expect(logs.some((l) => l.msg === 'magrathead stopped')).toBe(false);
      // Every level is a word.
      for (const l of logs) expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).toContain(l.level);
    } finally {
      await held.close();
    }
  });

  test('the hook API port in use: exit 69, naming the hook API', async () => {
    const held = await holdPort();
    try {
      const r = await daemon(
        `${base('127.0.0.1:0')}hookApi: { listen: "127.0.0.1:${held.port}" }\n`.replace(
          '{ name: meta }',
          `{ name: meta, tokenFile: ${dir}/meta.token }`,
        ),
        '--log-level',
        'warn',
      );
      expect(r.code).toBe(66); // the token file comes first…
      fs.writeFileSync(`${dir}/meta.token`, 'a-token-of-sufficient-length');
      const again = await runToExit([DAEMON_BIN, '--config', path.join(dir, 'd.yaml')]);
      expect(again.code).toBe(69);
      expect(again.stderr).toMatch(
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${held.port} \\(hook API\\): the address is already in use`),
      );
    } finally {
      await held.close();
    }
  });

  (hasAbsent ? test : test.skip)(
    'an address not (yet) on this host, like a bridge not up at boot: exit 75, which systemd retries',
    async () => {
      const r = await daemon(base(`${ABSENT}:5678`).replace('listen: {', 'listen: { allowNonLoopback: true,'));
      expect(r.code).toBe(75);
      expect(r.stderr).toMatch(
        new RegExp(
          `cannot listen on ${ABSENT.replace(/\./g, '\\.')}:5678 \\(gRPC\\): no network interface of this host has the address`,
        ),
      );
    },
  );
});

describe('magrathea-filter start-up errors', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmpDir('mg-fstart-');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const filter = (config: string, ...args: string[]) => {
    fs.writeFileSync(path.join(dir, 'f.yaml'), config);
    return runToExit([FILTER_BIN, '--config', path.join(dir, 'f.yaml'), ...args]);
  };
  const nodes = 'nodes: [{ name: n1, address: "127.0.0.1:1" }]\n';

  test('--version', async () => {
    const r = await runToExit([FILTER_BIN, '--version']);
    expect([r.code, r.stdout.trim()]).toEqual([0, VERSION]);
  });

  test('a bad --log-level: exit 64 with the valid levels', async () => {
    const r = await filter(nodes, '--log-level', 'chatty');
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/--log-level: "chatty" is not a log level \(one of fatal, error/);
  });

  test('the gRPC or HTTP port in use: exit 69, naming which', async () => {
    const held = await holdPort();
    try {
      let r = await filter(`listen: { grpc: "127.0.0.1:${held.port}", http: "127.0.0.1:0" }\n${nodes}`);
      expect(r.code).toBe(69);
      expect(r.stderr).toMatch(
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${held.port} \\(gRPC\\): the address is already in use`),
      );
      r = await filter(`listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:${held.port}" }\n${nodes}`);
      expect(r.code).toBe(69);
      expect(r.stderr).toMatch(new RegExp(`\\(HTTP\\): the address is already in use`));
    } finally {
      await held.close();
    }
  });

  test('missing TLS files: every one listed, exit 66', async () => {
    const r = await filter(
      `listen: { grpc: "127.0.0.1:0", http: "127.0.0.1:0" }\n${nodes}tls: { ca: ${dir}/ca.pem, cert: ${dir}/f.pem, key: ${dir}/f.key }\n`,
    );
    expect(r.code).toBe(66);
    for (const k of ['ca', 'cert', 'key']) expect(r.stderr).toMatch(new RegExp(`tls\\.${k}: cannot read`));
  });

  test('an invalid configuration stays exit 78', async () => {
    const r = await filter('nodes: []\n');
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/nodes: must list at least one node daemon/);
  });
});
