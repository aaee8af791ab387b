// Original file: proto/magrathea/v1/node_service.proto

import type { Long } from '@grpc/proto-loader';

export interface CachedImage {
  'name'?: (string);
  'sha256'?: (string);
  /**
   * qcow2 | raw
   */
  'format'?: (string);
  'url'?: (string);
  /**
   * cached | downloading | partial | absent
   */
  'state'?: (string);
  /**
   * Size of the complete image, or the bytes of the partial one.
   */
  'bytes'?: (number | string | Long);
  /**
   * Last leased or released, ms since the Unix epoch (0 when absent).
   */
  'last_used_ms'?: (number | string | Long);
  /**
   * Domains using it now.
   */
  'users'?: (number);
}

export interface CachedImage__Output {
  'name': (string);
  'sha256': (string);
  /**
   * qcow2 | raw
   */
  'format': (string);
  'url': (string);
  /**
   * cached | downloading | partial | absent
   */
  'state': (string);
  /**
   * Size of the complete image, or the bytes of the partial one.
   */
  'bytes': (string);
  /**
   * Last leased or released, ms since the Unix epoch (0 when absent).
   */
  'last_used_ms': (string);
  /**
   * Domains using it now.
   */
  'users': (number);
}
