/**
 * Start-up problems both binaries (magrathead, magrathea-filter) report the same way: a log level
 * that is not one, a file the configuration names that cannot be read, a listener that cannot be
 * bound. Each becomes a typed error with a message an admin can act on; each binary's `main.ts`
 * maps them to its documented exit codes in one function.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** pino's levels, in the order of severity (`silent` logs nothing). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A command-line value that is not valid (exit code 64, EX_USAGE). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** `level` as a log level, or a UsageError naming the valid ones (`what`: the option, e.g. `--log-level`). */
export function checkLogLevel(level: string, what: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  throw new UsageError(`${what}: "${level}" is not a log level (one of ${LOG_LEVELS.join(', ')})`);
}

/** A file the configuration names (or the configuration itself) is missing or unreadable (exit 66, EX_NOINPUT). */
export class InputFileError extends Error {
  override readonly name = 'InputFileError';
  constructor(readonly problems: readonly string[]) {
    super(problems.length === 1 ? (problems[0] ?? '') : `files cannot be read:\n  - ${problems.join('\n  - ')}`);
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'a directory, not a file',
  ENOTDIR: 'a path component is not a directory',
  ELOOP: 'too many symbolic links',
};

/** "ENOENT: no such file" from an fs error. */
export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (!code) return (err as Error).message;
  return ERRNO_TEXT[code] ? `${code}: ${ERRNO_TEXT[code]}` : code;
}

/**
 * Checks that every named file can be opened for reading; returns one problem line per file that
 * cannot (`what` says which setting names it, e.g. `domains.0.tokenFile`). Never blocks: a FIFO,
 * a device or a socket is left to the reader, which refuses anything but a regular file with its
 * own message (opening a FIFO for reading would wait for a writer).
 */
export function unreadableFiles(files: readonly { readonly what: string; readonly file: string }[]): string[] {
  const problems: string[] = [];
  for (const { what, file } of files) {
    try {
      const st = fs.statSync(file);
      if (st.isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
      if (!st.isFile()) continue;
      fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
    } catch (err) {
      problems.push(`${what}: cannot read ${path.resolve(file)} (${describeFsError(err)})`);
    }
  }
  return problems;
}

/** Why a listener could not be bound. */
export type ListenProblem = 'in-use' | 'not-present' | 'denied' | 'other';

/**
 * A listener could not be bound. `problem` decides the exit code: `in-use` 69 (EX_UNAVAILABLE),
 * `not-present` 75 (EX_TEMPFAIL: the address is not on this host yet, e.g. a bridge not up at boot;
 * systemd restarts the service), `denied` 77 (EX_NOPERM), `other` 70.
 */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(
    /** Which listener: `gRPC`, `gRPC socket`, `hook API`, `HTTP`. */
    readonly listener: string,
    /** HOST:PORT or unix:PATH. */
    readonly address: string,
    readonly problem: ListenProblem,
    /** The system error code (EADDRINUSE, …) or ''. */
    readonly errno: string,
    message: string,
  ) {
    super(message);
  }
}

const PROBLEM_OF: Record<string, ListenProblem> = {
  EADDRINUSE: 'in-use',
  EADDRNOTAVAIL: 'not-present',
  EACCES: 'denied',
  EPERM: 'denied',
};

/**
 * Turns a bind failure (Node's `listen` error, or grpc-js's "No address added … errors: [listen
 * EADDRINUSE: …]") into a ListenError with a message that says what to do.
 */
export function toListenError(err: unknown, listener: string, address: string): ListenError {
  if (err instanceof ListenError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const text = (err as Error).message ?? String(err);
  const errno = typeof code === 'string' && code.startsWith('E') ? code : (/\b(E[A-Z]{3,})\b/.exec(text)?.[1] ?? '');
  const problem = PROBLEM_OF[errno] ?? 'other';
  const unix = address.startsWith('unix:');
  const host = unix ? '' : address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const port = unix ? '' : (/:(\d+)$/.exec(address)?.[1] ?? '');
  const reason: Record<ListenProblem, string> = {
    'in-use': unix
      ? 'the socket is in use by a running process (another magrathead with the same state directory?)'
      : `the address is already in use; another process listens on port ${port} (see: ss -ltnp 'sport = :${port}')`,
    'not-present':
      `no network interface of this host has the address ${host} (yet): is its interface or bridge up? ` +
      'Started too early at boot, the service exits with 75 and systemd starts it again',
    denied: unix
      ? "permission denied (the socket's directory must be writable by the service's user)"
      : 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
    other: errno || text.replace(/^No address added out of total \d+ resolved errors: /, ''),
  };
  return new ListenError(
    listener,
    address,
    problem,
    errno,
    `cannot listen on ${address} (${listener}): ${reason[problem]}`,
  );
}

/** Awaits a listener's bind; a failure becomes a ListenError that says what to do. */
export async function bound<T>(listener: string, address: string, listening: Promise<T>): Promise<T> {
  try {
    return await listening;
  } catch (err) {
    throw toListenError(err, listener, address);
  }
}

/** HOST:PORT for a listener (IPv6 hosts in brackets), for messages. */
export function listenAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The version of the package that holds `dir` (the nearest package.json above it): what
 * `--version` prints and what GetNode and the metrics report.
 */
export function packageVersion(dir: string): string {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const f = path.join(d, 'package.json');
    if (fs.existsSync(f)) {
      const v = (JSON.parse(fs.readFileSync(f, 'utf8')) as { version?: unknown }).version;
      return typeof v === 'string' ? v : '0.0.0';
    }
    if (path.dirname(d) === d) return '0.0.0';
  }
}

/** The sysexits.h codes both binaries exit with (docs/cli.md lists them per binary). */
export const SYSEXITS = {
  ok: 0,
  /** A component failed to stop cleanly (see the log). */
  stopFailed: 1,
  usage: 64,
  dataErr: 65,
  noInput: 66,
  unavailable: 69,
  software: 70,
  cantCreate: 73,
  tempFail: 75,
  noPerm: 77,
  config: 78,
  /** A second SIGTERM/SIGINT: exit at once. */
  secondSignal: 130,
} as const;

const LISTEN_EXIT: Record<ListenProblem, number> = {
  'in-use': SYSEXITS.unavailable,
  'not-present': SYSEXITS.tempFail,
  denied: SYSEXITS.noPerm,
  other: SYSEXITS.software,
};

/** A typed start-up problem both binaries share (its message says it all). */
export function isStartupError(err: unknown): err is UsageError | InputFileError | ListenError {
  return err instanceof UsageError || err instanceof InputFileError || err instanceof ListenError;
}

/** The exit code of a start-up problem both binaries share, or null for any other error. */
export function startupExitCode(err: unknown): number | null {
  if (err instanceof UsageError) return SYSEXITS.usage;
  if (err instanceof InputFileError) return SYSEXITS.noInput;
  if (err instanceof ListenError) return LISTEN_EXIT[err.problem];
  return null;
}

/**
 * What a binary says when it cannot start: the stderr line (what `systemctl status` shows) and
 * the fields of its `fatal` log line. An `expected` error (a typed start-up problem) is its own
 * message; anything else is an internal error whose stack goes to the log.
 */
export function startupFailure(
  service: string,
  err: unknown,
  exitCode: number,
  expected: boolean,
): { readonly line: string; readonly fields: Record<string, unknown> } {
  const message = err instanceof Error ? err.message : String(err);
  return {
    line: `${service}: ${expected ? '' : 'internal error: '}${message}\n`,
    fields: expected ? { exitCode, error: message } : { exitCode, err },
  };
}

/**
 * Calls `onGone` once when the parent process changes (it exited and the process was re-parented),
 * checked every `everyMs`; `ppid` reads the current parent pid. The timer does not keep the
 * process alive.
 */
export function watchParent(ppid: () => number, onGone: (parent: number) => void, everyMs = 500): void {
  const parent = ppid();
  const timer = setInterval(() => {
    if (ppid() === parent) return;
    clearInterval(timer);
    onGone(parent);
  }, everyMs);
  timer.unref();
}
