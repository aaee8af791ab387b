// Original file: proto/magrathea/v1/node_service.proto

import type { Long } from '@grpc/proto-loader';

export interface Heartbeat {
  /**
   * The daemon's clock when it was sent, ms since the Unix epoch.
   */
  'at_ms'?: (number | string | Long);
  /**
   * How often heartbeats come (the watcher may call a daemon silent after a few missed ones).
   */
  'interval_ms'?: (number);
}

export interface Heartbeat__Output {
  /**
   * The daemon's clock when it was sent, ms since the Unix epoch.
   */
  'at_ms': (string);
  /**
   * How often heartbeats come (the watcher may call a daemon silent after a few missed ones).
   */
  'interval_ms': (number);
}
