/** Start-up problems in an admin's words, and their exit codes. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  checkLogLevel,
  InputFileError,
  ListenError,
  packageVersion,
  startupExitCode,
  toListenError,
  unreadableFiles,
  UsageError,
} from '../src/startup';

test('log levels: the valid ones pass, anything else is a usage error naming them (exit 64)', () => {
  expect(checkLogLevel('debug', '--log-level')).toBe('debug');
  expect(() => checkLogLevel('loud', '--log-level')).toThrow(
    '--log-level: "loud" is not a log level (one of fatal, error, warn, info, debug, trace, silent)',
  );
  expect(startupExitCode(new UsageError('x'))).toBe(64);
});

test("grpc-js's and Node's bind errors become ListenErrors with the exit code of their cause", () => {
  const grpcText = (errno: string, text: string, addr: string) =>
    new Error(`No address added out of total 1 resolved errors: [listen ${errno}: ${text} ${addr}]`);
  const inUse = toListenError(
    grpcText('EADDRINUSE', 'address already in use', '127.0.0.1:5678'),
    'gRPC',
    '127.0.0.1:5678',
  );
  expect(inUse).toBeInstanceOf(ListenError);
  expect(inUse.problem).toBe('in-use');
  expect(inUse.message).toBe(
    "cannot listen on 127.0.0.1:5678 (gRPC): the address is already in use; another process listens on port 5678 (see: ss -ltnp 'sport = :5678')",
  );
  expect(startupExitCode(inUse)).toBe(69);
  const absent = toListenError(
    Object.assign(new Error('listen EADDRNOTAVAIL'), { code: 'EADDRNOTAVAIL' }),
    'hook API',
    '[fd00::9]:5679',
  );
  expect(absent.message).toMatch(/no network interface of this host has the address fd00::9 \(yet\)/);
  expect(startupExitCode(absent)).toBe(75);
  const denied = toListenError(Object.assign(new Error('listen EACCES'), { code: 'EACCES' }), 'HTTP', '0.0.0.0:80');
  expect(denied.message).toMatch(/ports below 1024 need root/);
  expect(startupExitCode(denied)).toBe(77);
  const other = toListenError(new Error('something else'), 'gRPC', '127.0.0.1:1');
  expect([other.problem, startupExitCode(other)]).toEqual(['other', 70]);
  expect(startupExitCode(new Error('a bug'))).toBeNull();
});

test('unreadable files are listed with the setting that names them (exit 66)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mg-files-'));
  try {
    fs.writeFileSync(path.join(dir, 'ok'), 'x');
    expect(
      unreadableFiles([
        { what: 'a', file: path.join(dir, 'ok') },
        { what: 'b', file: path.join(dir, 'missing') },
        { what: 'c', file: dir },
      ]),
    ).toEqual([
      `b: cannot read ${dir}/missing (ENOENT: no such file)`,
      `c: cannot read ${dir} (EISDIR: a directory, not a file)`,
    ]);
    expect(startupExitCode(new InputFileError(['x']))).toBe(66);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('the version is the one of the package holding the code', () => {
  const own = (JSON.parse(fs.readFileSync(path.join(__dirname, '../package.json'), 'utf8')) as { version: string })
    .version;
  expect(packageVersion(__dirname)).toBe(own);
});
