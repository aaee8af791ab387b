// Original file: proto/magrathea/v1/node_service.proto


export interface EndJobRequest {
  'domain'?: (string);
  'job_id'?: (string);
  /**
   * The job's exit status (PBS Exit_status), valid when has_exit_status is true. Non-zero: the
   * job failed, and a domain with keepFailed keeps its overlay.
   */
  'exit_status'?: (number);
  'has_exit_status'?: (boolean);
}

export interface EndJobRequest__Output {
  'domain': (string);
  'job_id': (string);
  /**
   * The job's exit status (PBS Exit_status), valid when has_exit_status is true. Non-zero: the
   * job failed, and a domain with keepFailed keeps its overlay.
   */
  'exit_status': (number);
  'has_exit_status': (boolean);
}
