// Original file: proto/magrathea/v1/node_service.proto

import type { CachedImage as _magrathea_v1_CachedImage, CachedImage__Output as _magrathea_v1_CachedImage__Output } from '../../magrathea/v1/CachedImage';
import type { Long } from '@grpc/proto-loader';

export interface ListImagesResponse {
  'images'?: (_magrathea_v1_CachedImage)[];
  /**
   * Bytes the complete images take, and the cache's limit.
   */
  'used_bytes'?: (number | string | Long);
  'max_bytes'?: (number | string | Long);
}

export interface ListImagesResponse__Output {
  'images': (_magrathea_v1_CachedImage__Output)[];
  /**
   * Bytes the complete images take, and the cache's limit.
   */
  'used_bytes': (string);
  'max_bytes': (string);
}
