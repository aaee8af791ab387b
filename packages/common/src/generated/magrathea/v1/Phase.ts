// Original file: proto/magrathea/v1/domain.proto


/**
 * Duration of one phase of a driver operation sequence (e.g. a preemption).
 */
export interface Phase {
  /**
   * e.g. "preempt:meta", "shrink:meta", "grow:priv", "resume:meta"
   */
  'name'?: (string);
  'millis'?: (number | string);
}

/**
 * Duration of one phase of a driver operation sequence (e.g. a preemption).
 */
export interface Phase__Output {
  /**
   * e.g. "preempt:meta", "shrink:meta", "grow:priv", "resume:meta"
   */
  'name': (string);
  'millis': (number);
}
