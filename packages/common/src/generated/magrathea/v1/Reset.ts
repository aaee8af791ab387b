// Original file: proto/magrathea/v1/domain.proto

import type { Phase as _magrathea_v1_Phase, Phase__Output as _magrathea_v1_Phase__Output } from '../../magrathea/v1/Phase';
import type { Long } from '@grpc/proto-loader';

/**
 * One per-job reset (or, as Domain.last_boot, one boot): what was done, and how long each step took.
 */
export interface Reset {
  /**
   * revert | reboot (a reset) | boot (Domain.last_boot)
   */
  'policy'?: (string);
  /**
   * The job whose end started it.
   */
  'after_job'?: (string);
  /**
   * When it ended, ms since the epoch.
   */
  'at_ms'?: (number | string | Long);
  /**
   * Whole reset, ms.
   */
  'millis'?: (number | string);
  /**
   * The driver's steps: stop, keep-overlay, new-overlay, restore (revert) or boot (reboot), golden.
   */
  'steps'?: (_magrathea_v1_Phase)[];
  /**
   * Empty when it succeeded; else why it failed (the domain is then down).
   */
  'error'?: (string);
  /**
   * The failed job whose overlay it kept ('' for none).
   */
  'kept_for'?: (string);
}

/**
 * One per-job reset (or, as Domain.last_boot, one boot): what was done, and how long each step took.
 */
export interface Reset__Output {
  /**
   * revert | reboot (a reset) | boot (Domain.last_boot)
   */
  'policy': (string);
  /**
   * The job whose end started it.
   */
  'after_job': (string);
  /**
   * When it ended, ms since the epoch.
   */
  'at_ms': (string);
  /**
   * Whole reset, ms.
   */
  'millis': (number);
  /**
   * The driver's steps: stop, keep-overlay, new-overlay, restore (revert) or boot (reboot), golden.
   */
  'steps': (_magrathea_v1_Phase__Output)[];
  /**
   * Empty when it succeeded; else why it failed (the domain is then down).
   */
  'error': (string);
  /**
   * The failed job whose overlay it kept ('' for none).
   */
  'kept_for': (string);
}
