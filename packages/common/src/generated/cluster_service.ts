import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { AdmitRequest as _magrathea_v1_AdmitRequest, AdmitRequest__Output as _magrathea_v1_AdmitRequest__Output } from './magrathea/v1/AdmitRequest';
import type { AdmitResponse as _magrathea_v1_AdmitResponse, AdmitResponse__Output as _magrathea_v1_AdmitResponse__Output } from './magrathea/v1/AdmitResponse';
import type { CandidatesRequest as _magrathea_v1_CandidatesRequest, CandidatesRequest__Output as _magrathea_v1_CandidatesRequest__Output } from './magrathea/v1/CandidatesRequest';
import type { CandidatesResponse as _magrathea_v1_CandidatesResponse, CandidatesResponse__Output as _magrathea_v1_CandidatesResponse__Output } from './magrathea/v1/CandidatesResponse';
import type { ClusterEvent as _magrathea_v1_ClusterEvent, ClusterEvent__Output as _magrathea_v1_ClusterEvent__Output } from './magrathea/v1/ClusterEvent';
import type { ClusterServiceClient as _magrathea_v1_ClusterServiceClient, ClusterServiceDefinition as _magrathea_v1_ClusterServiceDefinition } from './magrathea/v1/ClusterService';
import type { Domain as _magrathea_v1_Domain, Domain__Output as _magrathea_v1_Domain__Output } from './magrathea/v1/Domain';
import type { DriverObservation as _magrathea_v1_DriverObservation, DriverObservation__Output as _magrathea_v1_DriverObservation__Output } from './magrathea/v1/DriverObservation';
import type { HostMetrics as _magrathea_v1_HostMetrics, HostMetrics__Output as _magrathea_v1_HostMetrics__Output } from './magrathea/v1/HostMetrics';
import type { Job as _magrathea_v1_Job, Job__Output as _magrathea_v1_Job__Output } from './magrathea/v1/Job';
import type { JobRef as _magrathea_v1_JobRef, JobRef__Output as _magrathea_v1_JobRef__Output } from './magrathea/v1/JobRef';
import type { KeptOverlay as _magrathea_v1_KeptOverlay, KeptOverlay__Output as _magrathea_v1_KeptOverlay__Output } from './magrathea/v1/KeptOverlay';
import type { ListNodesRequest as _magrathea_v1_ListNodesRequest, ListNodesRequest__Output as _magrathea_v1_ListNodesRequest__Output } from './magrathea/v1/ListNodesRequest';
import type { ListNodesResponse as _magrathea_v1_ListNodesResponse, ListNodesResponse__Output as _magrathea_v1_ListNodesResponse__Output } from './magrathea/v1/ListNodesResponse';
import type { Node as _magrathea_v1_Node, Node__Output as _magrathea_v1_Node__Output } from './magrathea/v1/Node';
import type { NodeView as _magrathea_v1_NodeView, NodeView__Output as _magrathea_v1_NodeView__Output } from './magrathea/v1/NodeView';
import type { Phase as _magrathea_v1_Phase, Phase__Output as _magrathea_v1_Phase__Output } from './magrathea/v1/Phase';
import type { Release as _magrathea_v1_Release, Release__Output as _magrathea_v1_Release__Output } from './magrathea/v1/Release';
import type { Reset as _magrathea_v1_Reset, Reset__Output as _magrathea_v1_Reset__Output } from './magrathea/v1/Reset';
import type { VnodeView as _magrathea_v1_VnodeView, VnodeView__Output as _magrathea_v1_VnodeView__Output } from './magrathea/v1/VnodeView';
import type { WatchClusterRequest as _magrathea_v1_WatchClusterRequest, WatchClusterRequest__Output as _magrathea_v1_WatchClusterRequest__Output } from './magrathea/v1/WatchClusterRequest';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  magrathea: {
    v1: {
      AdmitRequest: MessageTypeDefinition<_magrathea_v1_AdmitRequest, _magrathea_v1_AdmitRequest__Output>
      AdmitResponse: MessageTypeDefinition<_magrathea_v1_AdmitResponse, _magrathea_v1_AdmitResponse__Output>
      CandidatesRequest: MessageTypeDefinition<_magrathea_v1_CandidatesRequest, _magrathea_v1_CandidatesRequest__Output>
      CandidatesResponse: MessageTypeDefinition<_magrathea_v1_CandidatesResponse, _magrathea_v1_CandidatesResponse__Output>
      ClusterEvent: MessageTypeDefinition<_magrathea_v1_ClusterEvent, _magrathea_v1_ClusterEvent__Output>
      /**
       * The scheduler filter (magrathea-filter): the cluster view, admission and ranking.
       */
      ClusterService: SubtypeConstructor<typeof grpc.Client, _magrathea_v1_ClusterServiceClient> & { service: _magrathea_v1_ClusterServiceDefinition }
      Domain: MessageTypeDefinition<_magrathea_v1_Domain, _magrathea_v1_Domain__Output>
      DriverObservation: MessageTypeDefinition<_magrathea_v1_DriverObservation, _magrathea_v1_DriverObservation__Output>
      HostMetrics: MessageTypeDefinition<_magrathea_v1_HostMetrics, _magrathea_v1_HostMetrics__Output>
      Job: MessageTypeDefinition<_magrathea_v1_Job, _magrathea_v1_Job__Output>
      JobRef: MessageTypeDefinition<_magrathea_v1_JobRef, _magrathea_v1_JobRef__Output>
      KeptOverlay: MessageTypeDefinition<_magrathea_v1_KeptOverlay, _magrathea_v1_KeptOverlay__Output>
      ListNodesRequest: MessageTypeDefinition<_magrathea_v1_ListNodesRequest, _magrathea_v1_ListNodesRequest__Output>
      ListNodesResponse: MessageTypeDefinition<_magrathea_v1_ListNodesResponse, _magrathea_v1_ListNodesResponse__Output>
      Node: MessageTypeDefinition<_magrathea_v1_Node, _magrathea_v1_Node__Output>
      NodeView: MessageTypeDefinition<_magrathea_v1_NodeView, _magrathea_v1_NodeView__Output>
      Phase: MessageTypeDefinition<_magrathea_v1_Phase, _magrathea_v1_Phase__Output>
      Release: MessageTypeDefinition<_magrathea_v1_Release, _magrathea_v1_Release__Output>
      Reset: MessageTypeDefinition<_magrathea_v1_Reset, _magrathea_v1_Reset__Output>
      VnodeView: MessageTypeDefinition<_magrathea_v1_VnodeView, _magrathea_v1_VnodeView__Output>
      WatchClusterRequest: MessageTypeDefinition<_magrathea_v1_WatchClusterRequest, _magrathea_v1_WatchClusterRequest__Output>
    }
  }
}

