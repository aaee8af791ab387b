/**
 * Fault suite, classes 2, 3 and 4: what a local user (any account on the node) can do to a
 * running magrathead: call it over plaintext TCP, plant files around its state directory, hand it
 * token files that are FIFOs, devices or huge.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DAEMON_BIN, getNode, nodeClient, runToExit, spawnDaemon, statesOf, tmpDir, unary } from '../helpers/processes';
import { healthOf, record, waitFor } from './helpers';

const CONFIG =
  'domains: [{ name: meta }, { name: priv, class: priority }]\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n';

const codeOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'OK',
    (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`,
  );

test('class 2: over plaintext TCP a local user reads but cannot write; writes go over the 0600 Unix socket', async () => {
  const dir = tmpDir('mg-fault-tcp-');
  // The shipped default config (no --config): TCP on 127.0.0.1 and the Unix socket.
  const d = await spawnDaemon({ stateDir: path.join(dir, 'state') });
  const tcp = nodeClient(d.addr);
  const sock = nodeClient(d.admin);
  try {
    await waitFor(async () => statesOf(await getNode(sock)).meta === 'free', 'booted');
    const before = (await getNode(tcp)).generation;
    const writes = [
      codeOf(unary(tcp, tcp.StartJob, { domain: 'priv', job_id: '1.evil', preemptible: false })),
      codeOf(unary(tcp, tcp.EndJob, { domain: 'meta', job_id: '1.evil' })),
      codeOf(unary(tcp, tcp.DomainAction, { domain: 'meta', action: 'offline', reason: 'mine now' })),
      codeOf(unary(tcp, tcp.DomainAction, { domain: 'meta', action: 'down' })),
    ];
    for (const w of await Promise.all(writes))
      expect(w).toMatch(
        /^PERMISSION_DENIED: \w+ is not served over plaintext TCP.*Unix socket \(unix:.*, mode 0600, owner root\).*listen\.tls/,
      );
    expect((await getNode(tcp)).generation).toBe(before);
    // Reads stay open on loopback: GetNode, WatchNode, health.
    const w = tcp.WatchNode({ since_generation: '0' });
    expect(
      await new Promise<string>((res) => (w.once('data', () => res('data')), w.once('error', (e) => res(String(e))))),
    ).toBe('data');
    w.cancel();
    expect(await healthOf(d.addr)).toBe('SERVING');
    // The socket is the write path.
    expect(fs.statSync(d.socket).mode & 0o777).toBe(0o600);
    expect(await codeOf(unary(sock, sock.StartJob, { domain: 'meta', job_id: '2.ok', preemptible: true }))).toBe('OK');
    record('2 plaintext TCP writes', { inputs: writes.length, faults: 0, acked: 1, lost: 0, crashes: 0 });
  } finally {
    tcp.close();
    sock.close();
    await d.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('class 3: a state directory others can change is refused; a link planted for the temp file is never written through', async () => {
  const dir = tmpDir('mg-fault-sdir-');
  const run = (stateDir: string) =>
    runToExit(
      [
        DAEMON_BIN,
        '--state-dir',
        stateDir,
        '--listen',
        '127.0.0.1:0',
        '--socket',
        path.join(dir, `${path.basename(stateDir)}.sock`),
      ],
      10_000,
    );
  try {
    const open = path.join(dir, 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    let r = await run(open);
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(/state directory .*open is writable by other users \(mode 0777\).*chmod 0700/);
    const parent = path.join(dir, 'parent');
    fs.mkdirSync(path.join(parent, 'state'), { recursive: true });
    fs.chmodSync(parent, 0o777);
    r = await run(path.join(parent, 'state'));
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(/its parent .*parent is writable by other users \(mode 0777\) and not sticky/);
    expect(fs.readdirSync(path.join(parent, 'state'))).toEqual([]);
    // A link to a precious file where the old daemon wrote its temp file, and one where it writes its snapshot.
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'precious');
    const state = path.join(dir, 'state');
    fs.mkdirSync(state, { mode: 0o700 });
    fs.symlinkSync(victim, path.join(state, 'snapshot.json.tmp'));
    fs.symlinkSync(victim, path.join(state, 'journal.jsonl.tmp'));
    const d = await spawnDaemon({ stateDir: state, config: `${CONFIG}snapshotEvery: 2\n` });
    const c = nodeClient(d.admin);
    try {
      await waitFor(async () => statesOf(await getNode(c)).meta === 'free', 'booted');
      for (let i = 0; i < 6; i++) await unary(c, c.StartJob, { domain: 'meta', job_id: `${i}.s`, preemptible: true });
    } finally {
      c.close();
      await d.stop();
    }
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    fs.rmSync(path.join(state, 'snapshot.json'));
    fs.symlinkSync(victim, path.join(state, 'snapshot.json'));
    r = await run(state);
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(/snapshot\.json is a symbolic link/);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    record('3 state directory and temp files', { inputs: 5, faults: 0, acked: 6, lost: 0, crashes: 0 });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);

test('class 4: a token file that is a FIFO, a device or huge never hangs start-up or SIGHUP; a world-readable one is warned about', async () => {
  const dir = tmpDir('mg-fault-tok-');
  const tok = path.join(dir, 'meta.token');
  const fifo = path.join(dir, 'fifo.token');
  execFileSync('mkfifo', [fifo]);
  const huge = path.join(dir, 'huge.token');
  fs.closeSync(fs.openSync(huge, 'w'));
  fs.truncateSync(huge, 1024 ** 3); // sparse: 1 GiB that costs nothing on disk
  const cfg = (file: string) =>
    `hookApi: { listen: "127.0.0.1:0" }\ndomains: [{ name: meta, tokenFile: ${file} }]\ndriver: { simulated: { latencyMs: { boot: 0 } } }\n`;
  const start = (file: string) => {
    const f = path.join(dir, `${path.basename(file)}.yaml`);
    fs.writeFileSync(f, cfg(file));
    return runToExit(
      [
        DAEMON_BIN,
        '--config',
        f,
        '--state-dir',
        path.join(dir, 's1'),
        '--listen',
        '127.0.0.1:0',
        '--socket',
        path.join(dir, 's1.sock'),
      ],
      8000,
    );
  };
  try {
    for (const [file, why] of [
      [fifo, /is a FIFO; only a regular file is read/],
      ['/dev/zero', /is a character device/],
      [huge, /is 1073741824 bytes; at most 65536/],
    ] as const) {
      const r = await start(file);
      expect([r.code, r.stderr]).toEqual([78, expect.stringMatching(why)]);
    }
    fs.writeFileSync(tok, 'meta-token-0123456789abcdef', { mode: 0o644 });
    fs.chmodSync(tok, 0o644);
    const d = await spawnDaemon({ stateDir: path.join(dir, 's2'), config: cfg(tok) });
    const c = nodeClient(d.admin);
    try {
      expect(
        d.logs.some((l) => l.msg === 'hook API token file readable by others' && /mode 0644/.test(String(l.warning))),
      ).toBe(true);
      // Rotated to a FIFO (nobody writes to it): the reload refuses it, the daemon keeps serving.
      fs.rmSync(tok);
      execFileSync('mkfifo', [tok]);
      d.proc.kill('SIGHUP');
      await waitFor(
        () => d.logs.some((l) => l.msg === 'token reload failed; the previous tokens stay in force'),
        'reload refused',
        5000,
      );
      expect(
        JSON.stringify(d.logs.filter((l) => l.msg === 'token reload failed; the previous tokens stay in force')),
      ).toMatch(/is a FIFO/);
      await getNode(c);
      const port = d.logs.find((l) => l.msg === 'magrathead ready')!.hookPort as number;
      const res = await fetch(`http://127.0.0.1:${port}/v1/domains/meta`, {
        headers: { authorization: 'Bearer meta-token-0123456789abcdef' },
      });
      expect(res.status).toBe(200);
    } finally {
      c.close();
      await d.stop();
    }
    record('4 token files', { inputs: 5, faults: 0, acked: 0, lost: 0, crashes: 0 });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 40_000);
