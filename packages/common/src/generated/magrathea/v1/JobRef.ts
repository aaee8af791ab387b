// Original file: proto/magrathea/v1/domain.proto


/**
 * A job named with its domain.
 */
export interface JobRef {
  'domain'?: (string);
  'job_id'?: (string);
}

/**
 * A job named with its domain.
 */
export interface JobRef__Output {
  'domain': (string);
  'job_id': (string);
}
