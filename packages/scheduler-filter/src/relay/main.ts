#!/usr/bin/env -S node --max-semi-space-size=2
/** magrathea-relay (docs/filter.md, "Fan-in"): started like the filter (runService). */
import { runService } from '../service/main';
import { loadRelayConfig, RelayConfigError } from './config';
import { Relay } from './relay';

void runService({
  name: 'magrathea-relay',
  description: "Holds the watch streams of a rack's magrathead daemons and serves them to the filter on one stream.",
  load: loadRelayConfig,
  configError: RelayConfigError,
  logLevel: (cfg) => cfg.logLevel,
  create: (cfg, deps) => new Relay(cfg, deps),
});
