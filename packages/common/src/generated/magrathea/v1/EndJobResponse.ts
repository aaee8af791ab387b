// Original file: proto/magrathea/v1/node_service.proto

import type { Phase as _magrathea_v1_Phase, Phase__Output as _magrathea_v1_Phase__Output } from '../../magrathea/v1/Phase';
import type { Long } from '@grpc/proto-loader';

export interface EndJobResponse {
  'generation'?: (number | string | Long);
  /**
   * Domains resumed because of this end.
   */
  'resumed'?: (string)[];
  /**
   * Set when the job was not known (end hooks retry; this is not an error).
   */
  'warning'?: (string);
  'state'?: (string);
  'phases'?: (_magrathea_v1_Phase)[];
}

export interface EndJobResponse__Output {
  'generation': (string);
  /**
   * Domains resumed because of this end.
   */
  'resumed': (string)[];
  /**
   * Set when the job was not known (end hooks retry; this is not an error).
   */
  'warning': (string);
  'state': (string);
  'phases': (_magrathea_v1_Phase__Output)[];
}
