// Original file: proto/magrathea/v1/node_service.proto

import type { Domain as _magrathea_v1_Domain, Domain__Output as _magrathea_v1_Domain__Output } from '../../magrathea/v1/Domain';
import type { Long } from '@grpc/proto-loader';

export interface Change {
  /**
   * What caused it: start-job | end-job | action:<name> | boot-complete | boot-failed | observed-down | ...
   */
  'cause'?: (string);
  /**
   * The domain the command named.
   */
  'domain'?: (string);
  'job_id'?: (string);
  /**
   * Every domain whose reported record changed, as it is after the change.
   */
  'domains'?: (_magrathea_v1_Domain)[];
  'at_ms'?: (number | string | Long);
}

export interface Change__Output {
  /**
   * What caused it: start-job | end-job | action:<name> | boot-complete | boot-failed | observed-down | ...
   */
  'cause': (string);
  /**
   * The domain the command named.
   */
  'domain': (string);
  'job_id': (string);
  /**
   * Every domain whose reported record changed, as it is after the change.
   */
  'domains': (_magrathea_v1_Domain__Output)[];
  'at_ms': (string);
}
