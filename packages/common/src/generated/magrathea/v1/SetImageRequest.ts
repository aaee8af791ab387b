// Original file: proto/magrathea/v1/node_service.proto


export interface SetImageRequest {
  'domain'?: (string);
  /**
   * A catalogue image (images[].name).
   */
  'image'?: (string);
  /**
   * End the domain's running jobs now (they are reported lost) instead of waiting for them.
   */
  'now'?: (boolean);
}

export interface SetImageRequest__Output {
  'domain': (string);
  /**
   * A catalogue image (images[].name).
   */
  'image': (string);
  /**
   * End the domain's running jobs now (they are reported lost) instead of waiting for them.
   */
  'now': (boolean);
}
