#!/usr/bin/env -S node --max-semi-space-size=2 --max-old-space-size=96
/**
 * magrathead: the only file that touches `process` (argv, signals, exit codes).
 * The shebang's V8 flags keep the heap small: every MB the daemon holds is taken from the VMs
 * (see BENCHMARKS.md; keep them in sync with DAEMON_NODE_FLAGS in bench/lib.js and `npm start`).
 */
import { Command } from 'commander';
import { createLogger } from '@magrathea/common';
import type { Logger } from 'pino';
import { Daemon } from './daemon';
import { loadConfig } from './config/load-config';
import { DaemonError } from './errors';

/** sysexits.h codes. */
const EXIT = { usage: 64, dataErr: 65, software: 70, cantCreate: 73, config: 78 } as const;

function exitCodeFor(err: unknown): number {
  if (err instanceof DaemonError) {
    switch (err.code) {
      case 'config':
        return EXIT.config;
      case 'state-dir':
        return EXIT.cantCreate;
      case 'journal-corrupt':
        return EXIT.dataErr;
      default:
        return EXIT.software;
    }
  }
  return EXIT.software;
}

async function main(): Promise<void> {
  const program = new Command('magrathead')
    .description('Magrathea node daemon: decides which domain of this physical node may run jobs.')
    .option('-c, --config <file>', 'YAML configuration (default: the embedded default)')
    .option('--state-dir <dir>', 'directory for the journal and snapshot (overrides stateDir)')
    .option('--listen <host:port>', 'gRPC TCP address (overrides listen.tcp)')
    .option('--socket <path>', 'gRPC Unix socket path (overrides listen.unixSocket)')
    .option('--log-level <level>', 'overrides log.level')
    .showHelpAfterError()
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : EXIT.usage));
  program.parse(process.argv);
  const opts = program.opts<{
    config?: string;
    stateDir?: string;
    listen?: string;
    socket?: string;
    logLevel?: string;
  }>();

  let config;
  try {
    config = loadConfig(
      opts.config,
      { stateDir: opts.stateDir, listen: opts.listen, socket: opts.socket },
      process.cwd(),
    );
  } catch (err) {
    process.stderr.write(`magrathead: ${(err as Error).message}\n`);
    process.exit(exitCodeFor(err));
  }
  const logger: Logger = createLogger({ service: 'magrathead', level: opts.logLevel ?? config.logLevel });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(EXIT.software);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(EXIT.software);
  });

  let daemon: Daemon;
  try {
    daemon = new Daemon(config, { logger, signaller: (pid, sig) => process.kill(pid, sig) });
  } catch (err) {
    process.stderr.write(`magrathead: ${(err as Error).message}\n`);
    process.exit(exitCodeFor(err));
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(130);
    }
    logger.info({ signal }, 'shutting down');
    void daemon.stop().then((code) => process.exit(code));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading hook API tokens');
    daemon.reloadTokens();
  });

  try {
    await daemon.start();
  } catch (err) {
    logger.fatal({ err }, 'magrathead failed to start');
    process.stderr.write(`magrathead: ${(err as Error).message}\n`);
    process.exit(exitCodeFor(err));
  }
}

void main();
