// Original file: proto/magrathea/v1/cluster_service.proto


export interface CandidatesRequest {
  'job_class'?: (string);
  'limit'?: (number);
}

export interface CandidatesRequest__Output {
  'job_class': (string);
  'limit': (number);
}
