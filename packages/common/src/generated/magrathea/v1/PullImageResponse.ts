// Original file: proto/magrathea/v1/node_service.proto

import type { CachedImage as _magrathea_v1_CachedImage, CachedImage__Output as _magrathea_v1_CachedImage__Output } from '../../magrathea/v1/CachedImage';
import type { Long } from '@grpc/proto-loader';

export interface PullImageResponse {
  /**
   * Bytes transferred (0: it was cached already).
   */
  'downloaded_bytes'?: (number | string | Long);
  /**
   * The download resumed a partial file from this offset (0: from the start).
   */
  'resumed_from'?: (number | string | Long);
  'image'?: (_magrathea_v1_CachedImage | null);
}

export interface PullImageResponse__Output {
  /**
   * Bytes transferred (0: it was cached already).
   */
  'downloaded_bytes': (string);
  /**
   * The download resumed a partial file from this offset (0: from the start).
   */
  'resumed_from': (string);
  'image': (_magrathea_v1_CachedImage__Output | null);
}
