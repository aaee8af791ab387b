#!/usr/bin/env node
/** magrathea-filter: the only file of the filter that touches `process`. */
import { Command } from 'commander';
import { createLogger } from '@magrathea/common';
import { loadFilterConfig } from './config';
import { Filter } from './filter';

async function main(): Promise<void> {
  const program = new Command('magrathea-filter')
    .description('Watches every magrathead, publishes the domains to PBS, serves admission and ranking.')
    .requiredOption('-c, --config <file>', 'YAML configuration')
    .option('--log-level <level>', 'overrides log.level')
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 64));
  program.parse(process.argv);
  const opts = program.opts<{ config: string; logLevel?: string }>();
  let cfg;
  try {
    cfg = loadFilterConfig(opts.config);
  } catch (err) {
    process.stderr.write(`magrathea-filter: ${(err as Error).message}\n`);
    process.exit(78);
  }
  const logger = createLogger({ service: 'magrathea-filter', level: opts.logLevel ?? cfg.logLevel });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    process.exit(70);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection');
    process.exit(70);
  });
  const filter = new Filter(cfg, { logger });
  let signals = 0;
  const onSignal = (): void => {
    if (++signals > 1) process.exit(130);
    void filter.stop().then((code) => process.exit(code));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await filter.start();
  } catch (err) {
    logger.fatal({ err }, 'magrathea-filter failed to start');
    process.exit(70);
  }
}

void main();
