// Original file: proto/magrathea/v1/node_service.proto


export interface EndJobRequest {
  'domain'?: (string);
  'job_id'?: (string);
}

export interface EndJobRequest__Output {
  'domain': (string);
  'job_id': (string);
}
