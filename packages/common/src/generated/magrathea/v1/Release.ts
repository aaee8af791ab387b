// Original file: proto/magrathea/v1/domain.proto

import type { Phase as _magrathea_v1_Phase, Phase__Output as _magrathea_v1_Phase__Output } from '../../magrathea/v1/Phase';
import type { Long } from '@grpc/proto-loader';

/**
 * Measured effect of the last preemption of this domain (truthful release reporting).
 */
export interface Release {
  'at_ms'?: (number | string | Long);
  /**
   * Preemption mode used: throttle | pause | save | simulated
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
}

/**
 * Measured effect of the last preemption of this domain (truthful release reporting).
 */
export interface Release__Output {
  'at_ms': (string);
  /**
   * Preemption mode used: throttle | pause | save | simulated
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
}
