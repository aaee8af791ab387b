import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Domain as _magrathea_v1_Domain, Domain__Output as _magrathea_v1_Domain__Output } from './magrathea/v1/Domain';
import type { DriverObservation as _magrathea_v1_DriverObservation, DriverObservation__Output as _magrathea_v1_DriverObservation__Output } from './magrathea/v1/DriverObservation';
import type { HostMetrics as _magrathea_v1_HostMetrics, HostMetrics__Output as _magrathea_v1_HostMetrics__Output } from './magrathea/v1/HostMetrics';
import type { Job as _magrathea_v1_Job, Job__Output as _magrathea_v1_Job__Output } from './magrathea/v1/Job';
import type { JobRef as _magrathea_v1_JobRef, JobRef__Output as _magrathea_v1_JobRef__Output } from './magrathea/v1/JobRef';
import type { KeptOverlay as _magrathea_v1_KeptOverlay, KeptOverlay__Output as _magrathea_v1_KeptOverlay__Output } from './magrathea/v1/KeptOverlay';
import type { Node as _magrathea_v1_Node, Node__Output as _magrathea_v1_Node__Output } from './magrathea/v1/Node';
import type { Phase as _magrathea_v1_Phase, Phase__Output as _magrathea_v1_Phase__Output } from './magrathea/v1/Phase';
import type { Release as _magrathea_v1_Release, Release__Output as _magrathea_v1_Release__Output } from './magrathea/v1/Release';
import type { Reset as _magrathea_v1_Reset, Reset__Output as _magrathea_v1_Reset__Output } from './magrathea/v1/Reset';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  magrathea: {
    v1: {
      Domain: MessageTypeDefinition<_magrathea_v1_Domain, _magrathea_v1_Domain__Output>
      DriverObservation: MessageTypeDefinition<_magrathea_v1_DriverObservation, _magrathea_v1_DriverObservation__Output>
      HostMetrics: MessageTypeDefinition<_magrathea_v1_HostMetrics, _magrathea_v1_HostMetrics__Output>
      Job: MessageTypeDefinition<_magrathea_v1_Job, _magrathea_v1_Job__Output>
      JobRef: MessageTypeDefinition<_magrathea_v1_JobRef, _magrathea_v1_JobRef__Output>
      KeptOverlay: MessageTypeDefinition<_magrathea_v1_KeptOverlay, _magrathea_v1_KeptOverlay__Output>
      Node: MessageTypeDefinition<_magrathea_v1_Node, _magrathea_v1_Node__Output>
      Phase: MessageTypeDefinition<_magrathea_v1_Phase, _magrathea_v1_Phase__Output>
      Release: MessageTypeDefinition<_magrathea_v1_Release, _magrathea_v1_Release__Output>
      Reset: MessageTypeDefinition<_magrathea_v1_Reset, _magrathea_v1_Reset__Output>
    }
  }
}

