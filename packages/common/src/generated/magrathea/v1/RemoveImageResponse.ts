// Original file: proto/magrathea/v1/node_service.proto


export interface RemoveImageResponse {
  /**
   * False when the image was not in the cache.
   */
  'removed'?: (boolean);
}

export interface RemoveImageResponse__Output {
  /**
   * False when the image was not in the cache.
   */
  'removed': (boolean);
}
