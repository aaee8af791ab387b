// Original file: proto/magrathea/v1/cluster_service.proto


export interface AdmitRequest {
  'job_id'?: (string);
  /**
   * normal | priority
   */
  'job_class'?: (string);
  'vnodes'?: (string)[];
}

export interface AdmitRequest__Output {
  'job_id': (string);
  /**
   * normal | priority
   */
  'job_class': (string);
  'vnodes': (string)[];
}
