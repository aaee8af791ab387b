// Original file: proto/magrathea/v1/domain.proto

import type { Long } from '@grpc/proto-loader';

export interface HostMetrics {
  'memory_total_bytes'?: (number | string | Long);
  'memory_available_bytes'?: (number | string | Long);
  'load1'?: (number | string);
  'cpus'?: (number);
  'sampled_at_ms'?: (number | string | Long);
}

export interface HostMetrics__Output {
  'memory_total_bytes': (string);
  'memory_available_bytes': (string);
  'load1': (number);
  'cpus': (number);
  'sampled_at_ms': (string);
}
