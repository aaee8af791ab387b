// Original file: proto/magrathea/v1/node_service.proto


export interface DomainActionRequest {
  'domain'?: (string);
  /**
   * boot | down | reboot | freeze | defrost | offline | online | remove
   */
  'action'?: (string);
  'reason'?: (string);
}

export interface DomainActionRequest__Output {
  'domain': (string);
  /**
   * boot | down | reboot | freeze | defrost | offline | online | remove
   */
  'action': (string);
  'reason': (string);
}
