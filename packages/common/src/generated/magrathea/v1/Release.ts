// Original file: proto/magrathea/v1/domain.proto

import type { Phase as _magrathea_v1_Phase, Phase__Output as _magrathea_v1_Phase__Output } from '../../magrathea/v1/Phase';
import type { Long } from '@grpc/proto-loader';

/**
 * Measured effect of the last preemption of this domain (truthful release reporting).
 */
export interface Release {
  'at_ms'?: (number | string | Long);
  /**
   * Preemption mode used: throttle | pause | save | reclaim | simulated
   */
  'mode'?: (string);
  /**
   * Bytes of memory the victim actually gave back, as measured by the driver.
   */
  'memory_released_bytes'?: (number | string | Long);
  /**
   * CPU weight before and after.
   */
  'cpu_weight_before'?: (number);
  'cpu_weight_after'?: (number);
  'phases'?: (_magrathea_v1_Phase)[];
  /**
   * reclaim only (empty otherwise; numbers from 30 on, kept clear of other additions):
   * reached (the balloon got to its target) | kept (short of it, kept what was reached) |
   * saved (short of it, escalated to saving the domain)
   */
  'outcome'?: (string);
  /**
   * Why a reclaim fell short or fell back (e.g. the guest agent did not answer), empty when it did not.
   */
  'reason'?: (string);
  /**
   * The driver's own steps and their durations: stop-jobs, drop-caches, swap-on, balloon, save.
   */
  'steps'?: (_magrathea_v1_Phase)[];
  /**
   * Balloon target the reclaim aimed at, and where the balloon got to, bytes.
   */
  'target_bytes'?: (number | string | Long);
  'balloon_bytes'?: (number | string | Long);
}

/**
 * Measured effect of the last preemption of this domain (truthful release reporting).
 */
export interface Release__Output {
  'at_ms': (string);
  /**
   * Preemption mode used: throttle | pause | save | reclaim | simulated
   */
  'mode': (string);
  /**
   * Bytes of memory the victim actually gave back, as measured by the driver.
   */
  'memory_released_bytes': (string);
  /**
   * CPU weight before and after.
   */
  'cpu_weight_before': (number);
  'cpu_weight_after': (number);
  'phases': (_magrathea_v1_Phase__Output)[];
  /**
   * reclaim only (empty otherwise; numbers from 30 on, kept clear of other additions):
   * reached (the balloon got to its target) | kept (short of it, kept what was reached) |
   * saved (short of it, escalated to saving the domain)
   */
  'outcome': (string);
  /**
   * Why a reclaim fell short or fell back (e.g. the guest agent did not answer), empty when it did not.
   */
  'reason': (string);
  /**
   * The driver's own steps and their durations: stop-jobs, drop-caches, swap-on, balloon, save.
   */
  'steps': (_magrathea_v1_Phase__Output)[];
  /**
   * Balloon target the reclaim aimed at, and where the balloon got to, bytes.
   */
  'target_bytes': (string);
  'balloon_bytes': (string);
}
