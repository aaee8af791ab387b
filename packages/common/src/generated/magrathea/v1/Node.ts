// Original file: proto/magrathea/v1/domain.proto

import type { HostMetrics as _magrathea_v1_HostMetrics, HostMetrics__Output as _magrathea_v1_HostMetrics__Output } from '../../magrathea/v1/HostMetrics';
import type { Domain as _magrathea_v1_Domain, Domain__Output as _magrathea_v1_Domain__Output } from '../../magrathea/v1/Domain';
import type { Long } from '@grpc/proto-loader';

export interface Node {
  'name'?: (string);
  /**
   * The node's current generation (bumped once per committed change).
   */
  'generation'?: (number | string | Long);
  'host'?: (_magrathea_v1_HostMetrics | null);
  'domains'?: (_magrathea_v1_Domain)[];
  /**
   * The hypervisor driver in use (simulated | cgroup | qemu | libvirt).
   */
  'driver'?: (string);
  'reported_at_ms'?: (number | string | Long);
  /**
   * The daemon's version (magrathead --version).
   */
  'version'?: (string);
  /**
   * True in CPU-counting mode (partial preemption); false: exclusive mode (the original's).
   */
  'cpu_counting'?: (boolean);
  /**
   * CPU-counting mode: the node's CPUs that jobs may hold in all (else 0).
   */
  'cpus'?: (number);
}

export interface Node__Output {
  'name': (string);
  /**
   * The node's current generation (bumped once per committed change).
   */
  'generation': (string);
  'host': (_magrathea_v1_HostMetrics__Output | null);
  'domains': (_magrathea_v1_Domain__Output)[];
  /**
   * The hypervisor driver in use (simulated | cgroup | qemu | libvirt).
   */
  'driver': (string);
  'reported_at_ms': (string);
  /**
   * The daemon's version (magrathead --version).
   */
  'version': (string);
  /**
   * True in CPU-counting mode (partial preemption); false: exclusive mode (the original's).
   */
  'cpu_counting': (boolean);
  /**
   * CPU-counting mode: the node's CPUs that jobs may hold in all (else 0).
   */
  'cpus': (number);
}
