// Original file: proto/magrathea/v1/cluster_service.proto

import type { Domain as _magrathea_v1_Domain, Domain__Output as _magrathea_v1_Domain__Output } from '../../magrathea/v1/Domain';

/**
 * One domain as PBS sees it: a vnode, with what was (or will be) published for it.
 */
export interface VnodeView {
  'vnode'?: (string);
  'domain'?: (string);
  /**
   * What resources_available.magrathea says: normal | priority | none.
   */
  'magrathea'?: (string);
  'rank'?: (number | string);
  'reason'?: (string);
  'detail'?: (_magrathea_v1_Domain | null);
}

/**
 * One domain as PBS sees it: a vnode, with what was (or will be) published for it.
 */
export interface VnodeView__Output {
  'vnode': (string);
  'domain': (string);
  /**
   * What resources_available.magrathea says: normal | priority | none.
   */
  'magrathea': (string);
  'rank': (number);
  'reason': (string);
  'detail': (_magrathea_v1_Domain__Output | null);
}
