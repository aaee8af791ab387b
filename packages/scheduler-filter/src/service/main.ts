#!/usr/bin/env node
/** magrathea-filter: the only file of the filter that touches `process` (argv, signals, exit codes). */
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

/** THE mapping from errors to exit codes (sysexits.h; the table is in docs/cli.md). */
function exitCodeFor(err: unknown): number {
  const shared = startupExitCode(err);
  if (shared !== null) return shared;
  if (err instanceof FilterConfigError) return EXIT.config;
  return EXIT.software;
}

/** Errors whose message says it all (no stack trace in the log). */
const expected = (err: unknown): boolean => isStartupError(err) || err instanceof FilterConfigError;

/** Prints the reason on stderr (what `systemctl status` shows), logs it when there is a log, exits. */
function fail(err: unknown, logger: Logger | null): never {
  const code = exitCodeFor(err);
  const { line, fields } = startupFailure('magrathea-filter', err, code, expected(err));
  logger?.fatal(fields, 'magrathea-filter failed to start');
  process.stderr.write(line);
  process.exit(code);
}

async function main(): Promise<void> {
  const program = new Command('magrathea-filter')
    .description('Watches every magrathead, publishes the domains to PBS, serves admission and ranking.')
    .version(VERSION, '-V, --version', 'print the version and exit')
    .requiredOption('-c, --config <file>', 'YAML configuration')
    .option('--log-level <level>', 'overrides log.level: fatal, error, warn, info, debug, trace or silent')
    .showHelpAfterError()
    .exitOverride((e) => process.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage));
  program.parse(process.argv);
  const opts = program.opts<{ config: string; logLevel?: string }>();
  let cfg;
  let level;
  try {
    if (opts.logLevel !== undefined) level = checkLogLevel(opts.logLevel, '--log-level');
    cfg = loadFilterConfig(opts.config);
  } catch (err) {
    fail(err, null);
  }
  const logger = createLogger({ service: 'magrathea-filter', level: level ?? cfg.logLevel });
  routeGrpcLogs(logger);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(EXIT.software);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(EXIT.software);
  });
  logger.info({ version: VERSION, pid: process.pid, config: opts.config }, 'magrathea-filter starting');
  let filter: Filter;
  try {
    filter = new Filter(cfg, { logger, version: VERSION });
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
    void filter.stop().then((code) => process.exit(code));
  };
  process.on('SIGTERM', (signal) => stop({ signal }));
  process.on('SIGINT', (signal) => stop({ signal }));
  // `magrathea box` sets this so that its filter never outlives it, even when it is killed -9.
  if (process.env.MAGRATHEA_EXIT_WITH_PARENT === '1')
    watchParent(
      () => process.ppid,
      (parent) => stop({ parent, reason: 'the parent process exited' }),
    );
  try {
    await filter.start();
  } catch (err) {
    fail(err, logger);
  }
}

void main();
