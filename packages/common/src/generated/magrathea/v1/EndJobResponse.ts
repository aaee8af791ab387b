// Original file: proto/magrathea/v1/node_service.proto

import type { Phase as _magrathea_v1_Phase, Phase__Output as _magrathea_v1_Phase__Output } from '../../magrathea/v1/Phase';
import type { JobRef as _magrathea_v1_JobRef, JobRef__Output as _magrathea_v1_JobRef__Output } from '../../magrathea/v1/JobRef';
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
  /**
   * Jobs resumed because CPUs became free.
   */
  'resumed_jobs'?: (_magrathea_v1_JobRef)[];
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
  /**
   * Jobs resumed because CPUs became free.
   */
  'resumed_jobs': (_magrathea_v1_JobRef__Output)[];
}
