// Original file: proto/magrathea/v1/domain.proto

import type { Long } from '@grpc/proto-loader';

/**
 * What the hypervisor driver last observed for a domain.
 */
export interface DriverObservation {
  /**
   * running | paused | throttled | saved | shut-off | unknown
   */
  'power'?: (string);
  /**
   * Memory the domain holds now, bytes (0 when unknown).
   */
  'memory_bytes'?: (number | string | Long);
  /**
   * CPU weight (cgroup v2 scale 1..10000; 0 when unknown).
   */
  'cpu_weight'?: (number);
  /**
   * Free text from the driver (e.g. why the domain is down).
   */
  'detail'?: (string);
  'observed_at_ms'?: (number | string | Long);
  /**
   * True when the observation disagrees with the recorded state (never rewritten silently).
   */
  'drift'?: (boolean);
  /**
   * CPU-counting mode: the CPU cap in force, CPUs (quota / period; 0 = none or unknown).
   */
  'cpu_cap'?: (number | string);
}

/**
 * What the hypervisor driver last observed for a domain.
 */
export interface DriverObservation__Output {
  /**
   * running | paused | throttled | saved | shut-off | unknown
   */
  'power': (string);
  /**
   * Memory the domain holds now, bytes (0 when unknown).
   */
  'memory_bytes': (string);
  /**
   * CPU weight (cgroup v2 scale 1..10000; 0 when unknown).
   */
  'cpu_weight': (number);
  /**
   * Free text from the driver (e.g. why the domain is down).
   */
  'detail': (string);
  'observed_at_ms': (string);
  /**
   * True when the observation disagrees with the recorded state (never rewritten silently).
   */
  'drift': (boolean);
  /**
   * CPU-counting mode: the CPU cap in force, CPUs (quota / period; 0 = none or unknown).
   */
  'cpu_cap': (number);
}
