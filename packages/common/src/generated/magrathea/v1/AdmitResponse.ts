// Original file: proto/magrathea/v1/cluster_service.proto


export interface AdmitResponse {
  'admit'?: (boolean);
  /**
   * Per refused vnode: why.
   */
  'reasons'?: (string)[];
}

export interface AdmitResponse__Output {
  'admit': (boolean);
  /**
   * Per refused vnode: why.
   */
  'reasons': (string)[];
}
