#!/usr/bin/env node
/**
 * magrathea-filter, and the start-up every binary of this package shares (runService: argv,
 * signals, exit codes). The main.ts files are the only ones of the package that touch `process`.
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
import { FilterConfigError, loadFilterConfig } from './config';
import { Filter } from './filter';

const VERSION = packageVersion(__dirname);

/** What runService needs of a binary. */
export interface ServiceSpec<C> {
  readonly name: string;
  readonly description: string;
  /** Reads and checks the configuration file (throws a config error with every problem). */
  load(file: string): C;
  /** The binary's configuration error (exit 78, no stack trace). */
  readonly configError: abstract new (...args: never[]) => Error;
  logLevel(cfg: C): string;
  /** Builds the service (throws a start-up error when something it needs is missing). */
  create(
    cfg: C,
    deps: { logger: Logger; version: string },
  ): {
    start(): Promise<unknown>;
    /** Graceful stop; resolves with the exit code. */
    stop(): Promise<number>;
  };
}

/** Parses argv, loads the config, starts the service, and stops it on SIGTERM/SIGINT (SIGHUP is logged, not fatal). */
export async function runService<C>(spec: ServiceSpec<C>): Promise<void> {
  const { name } = spec;
  const isConfigError = (err: unknown): boolean => err instanceof spec.configError;
  /** THE mapping from errors to exit codes (sysexits.h; the table is in docs/cli.md). */
  const exitCodeFor = (err: unknown): number =>
    startupExitCode(err) ?? (isConfigError(err) ? EXIT.config : EXIT.software);
  /** Prints the reason on stderr (what `systemctl status` shows), logs it when there is a log, exits. */
  const fail: (err: unknown, logger: Logger | null) => never = (err, logger) => {
    const code = exitCodeFor(err);
    // Errors whose message says it all get no stack trace.
    const { line, fields } = startupFailure(name, err, code, isStartupError(err) || isConfigError(err));
    logger?.fatal(fields, `${name} failed to start`);
    process.stderr.write(line);
    process.exit(code);
  };
  const program = new Command(name)
    .description(spec.description)
    .version(VERSION, '-V, --version', 'print the version and exit')
    .requiredOption('-c, --config <file>', 'YAML configuration')
    .option('--log-level <level>', 'overrides log.level: fatal, error, warn, info, debug, trace or silent')
    .showHelpAfterError()
    .exitOverride((e) => process.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage));
  program.parse(process.argv);
  const opts = program.opts<{ config: string; logLevel?: string }>();
  let cfg: C;
  let level;
  try {
    if (opts.logLevel !== undefined) level = checkLogLevel(opts.logLevel, '--log-level');
    cfg = spec.load(opts.config);
  } catch (err) {
    fail(err, null);
  }
  const logger = createLogger({ service: name, level: level ?? spec.logLevel(cfg) });
  routeGrpcLogs(logger);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(EXIT.software);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(EXIT.software);
  });
  logger.info({ version: VERSION, pid: process.pid, config: opts.config }, `${name} starting`);
  let service: ReturnType<ServiceSpec<C>['create']>;
  try {
    service = spec.create(cfg, { logger, version: VERSION });
  } catch (err) {
    fail(err, logger);
  }
  let signals = 0;
  const stop = (why: Record<string, unknown>): void => {
    if (++signals > 1) {
      logger.warn(why, 'second signal: exiting at once');
      process.exit(EXIT.secondSignal);
    }
    logger.info(why, 'shutting down');
    void service.stop().then((code) => process.exit(code));
  };
  process.on('SIGTERM', (signal) => stop({ signal }));
  process.on('SIGINT', (signal) => stop({ signal }));
  // Node's default for SIGHUP is to die (and systemd then counts it a clean exit: no restart).
  // magrathead reloads on it; here there is nothing to reload without a restart.
  process.on('SIGHUP', (signal) => logger.info({ signal }, 'SIGHUP ignored: restart to read the configuration again'));
  // `magrathea box` sets this so that its filter never outlives it, even when it is killed -9.
  if (process.env.MAGRATHEA_EXIT_WITH_PARENT === '1')
    watchParent(
      () => process.ppid,
      (parent) => stop({ parent, reason: 'the parent process exited' }),
    );
  try {
    await service.start();
  } catch (err) {
    fail(err, logger);
  }
}

if (require.main === module)
  void runService({
    name: 'magrathea-filter',
    description: 'Watches every magrathead, publishes the domains to PBS, serves admission and ranking.',
    load: loadFilterConfig,
    configError: FilterConfigError,
    logLevel: (cfg) => cfg.logLevel,
    create: (cfg, deps) => new Filter(cfg, deps),
  });
