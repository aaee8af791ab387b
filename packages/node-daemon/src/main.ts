#!/usr/bin/env -S node --max-semi-space-size=1 --max-old-space-size=96 --interrupt-budget=4000000
/**
 * magrathead: the only file that touches `process` (argv, signals, exit codes).
 * The shebang's V8 flags keep the daemon small: every MB it holds is taken from the VMs
 * (BENCHMARKS.md, issue 15). Semi-spaces of 1 MB and old space ≤ 96 MB; --interrupt-budget 30×
 * V8's default, so that only code that runs a lot (the RPC and journal paths) is optimized by
 * TurboFan, not the start-up code run a few times (config and proto parsing), whose optimizing
 * cost about 5 MB. V8's memory reducer stays on: after a busy spell it collects and compacts
 * once the daemon is idle, giving back the heap grown by many jobs. The installed binary,
 * `npm run daemon` and the benches (bench/lib.js reads this line) run it with these flags; the
 * systemd unit runs this file.
 */
import { Command } from 'commander';
import {
  checkLogLevel,
  createLogger,
  isStartupError,
  packageVersion,
  routeGrpcLogs,
  startupExitCode,
  startupFailure,
  SYSEXITS as EXIT,
  watchParent,
} from '@magrathea/common';
import type { Logger } from 'pino';
import { Daemon } from './daemon';
import { loadConfig } from './config/load-config';
import { DaemonError, exitCodeOf } from './errors';

const VERSION = packageVersion(__dirname);

/** THE mapping from errors to exit codes (sysexits.h; the table is in docs/cli.md). */
function exitCodeFor(err: unknown): number {
  const shared = startupExitCode(err);
  if (shared !== null) return shared;
  if (err instanceof DaemonError) {
    switch (err.code) {
      case 'config':
        return EXIT.config;
      case 'state-dir':
        return EXIT.cantCreate;
      case 'journal-corrupt':
        return EXIT.dataErr;
      default:
        return exitCodeOf(err) ?? EXIT.software;
    }
  }
  return EXIT.software;
}

/** Errors whose message says it all (no stack trace in the log). */
const expected = (err: unknown): boolean => isStartupError(err) || err instanceof DaemonError;

/** Prints the reason on stderr (what `systemctl status` shows), logs it when there is a log, exits. */
function fail(err: unknown, logger: Logger | null): never {
  const code = exitCodeFor(err);
  const { line, fields } = startupFailure('magrathead', err, code, expected(err));
  logger?.fatal(fields, 'magrathead failed to start');
  process.stderr.write(line);
  process.exit(code);
}

async function main(): Promise<void> {
  const program = new Command('magrathead')
    .description('Magrathea node daemon: decides which domain of this physical node may run jobs.')
    .version(VERSION, '-V, --version', 'print the version and exit')
    .option('-c, --config <file>', 'YAML configuration (default: the embedded default)')
    .option('--state-dir <dir>', 'directory for the journal and snapshot (overrides stateDir)')
    .option('--listen <host:port>', 'gRPC TCP address (overrides listen.tcp)')
    .option('--socket <path>', 'gRPC Unix socket path (overrides listen.unixSocket)')
    .option('--log-level <level>', 'overrides log.level: fatal, error, warn, info, debug, trace or silent')
    .showHelpAfterError()
    .exitOverride((e) => process.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage));
  program.parse(process.argv);
  const opts = program.opts<{
    config?: string;
    stateDir?: string;
    listen?: string;
    socket?: string;
    logLevel?: string;
  }>();

  let config;
  let level;
  try {
    if (opts.logLevel !== undefined) level = checkLogLevel(opts.logLevel, '--log-level');
    config = loadConfig(
      opts.config,
      { stateDir: opts.stateDir, listen: opts.listen, socket: opts.socket },
      process.cwd(),
    );
  } catch (err) {
    fail(err, null);
  }
  const logger: Logger = createLogger({ service: 'magrathead', level: level ?? config.logLevel });
  routeGrpcLogs(logger);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(EXIT.software);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(EXIT.software);
  });
  logger.info(
    { version: VERSION, pid: process.pid, config: opts.config ?? '(embedded default)' },
    'magrathead starting',
  );

  let daemon: Daemon;
  try {
    daemon = new Daemon(config, { logger, signaller: (pid, sig) => process.kill(pid, sig), version: VERSION });
  } catch (err) {
    fail(err, logger);
  }
  let signals = 0;
  const stop = (why: Record<string, unknown>): void => {
    signals++;
    if (signals > 1) {
      logger.warn(why, 'second signal: exiting at once');
      process.exit(EXIT.secondSignal);
    }
    logger.info(why, 'shutting down');
    void daemon.stop().then((code) => process.exit(code));
  };
  process.on('SIGTERM', (signal) => stop({ signal }));
  process.on('SIGINT', (signal) => stop({ signal }));
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading hook API tokens');
    void daemon.reloadTokens();
  });
  // `magrathea box` sets this so that its daemons never outlive it, even when it is killed -9.
  if (process.env.MAGRATHEA_EXIT_WITH_PARENT === '1')
    watchParent(
      () => process.ppid,
      (parent) => stop({ parent, reason: 'the parent process exited' }),
    );

  try {
    await daemon.start();
  } catch (err) {
    fail(err, logger);
  }
}

void main();
