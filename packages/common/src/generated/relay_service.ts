import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { CachedImage as _magrathea_v1_CachedImage, CachedImage__Output as _magrathea_v1_CachedImage__Output } from './magrathea/v1/CachedImage';
import type { CaughtUp as _magrathea_v1_CaughtUp, CaughtUp__Output as _magrathea_v1_CaughtUp__Output } from './magrathea/v1/CaughtUp';
import type { Change as _magrathea_v1_Change, Change__Output as _magrathea_v1_Change__Output } from './magrathea/v1/Change';
import type { Domain as _magrathea_v1_Domain, Domain__Output as _magrathea_v1_Domain__Output } from './magrathea/v1/Domain';
import type { DomainActionRequest as _magrathea_v1_DomainActionRequest, DomainActionRequest__Output as _magrathea_v1_DomainActionRequest__Output } from './magrathea/v1/DomainActionRequest';
import type { DomainActionResponse as _magrathea_v1_DomainActionResponse, DomainActionResponse__Output as _magrathea_v1_DomainActionResponse__Output } from './magrathea/v1/DomainActionResponse';
import type { DriverObservation as _magrathea_v1_DriverObservation, DriverObservation__Output as _magrathea_v1_DriverObservation__Output } from './magrathea/v1/DriverObservation';
import type { EndJobRequest as _magrathea_v1_EndJobRequest, EndJobRequest__Output as _magrathea_v1_EndJobRequest__Output } from './magrathea/v1/EndJobRequest';
import type { EndJobResponse as _magrathea_v1_EndJobResponse, EndJobResponse__Output as _magrathea_v1_EndJobResponse__Output } from './magrathea/v1/EndJobResponse';
import type { GetNodeRequest as _magrathea_v1_GetNodeRequest, GetNodeRequest__Output as _magrathea_v1_GetNodeRequest__Output } from './magrathea/v1/GetNodeRequest';
import type { Heartbeat as _magrathea_v1_Heartbeat, Heartbeat__Output as _magrathea_v1_Heartbeat__Output } from './magrathea/v1/Heartbeat';
import type { HostMetrics as _magrathea_v1_HostMetrics, HostMetrics__Output as _magrathea_v1_HostMetrics__Output } from './magrathea/v1/HostMetrics';
import type { Job as _magrathea_v1_Job, Job__Output as _magrathea_v1_Job__Output } from './magrathea/v1/Job';
import type { JobChange as _magrathea_v1_JobChange, JobChange__Output as _magrathea_v1_JobChange__Output } from './magrathea/v1/JobChange';
import type { JobRef as _magrathea_v1_JobRef, JobRef__Output as _magrathea_v1_JobRef__Output } from './magrathea/v1/JobRef';
import type { KeptOverlay as _magrathea_v1_KeptOverlay, KeptOverlay__Output as _magrathea_v1_KeptOverlay__Output } from './magrathea/v1/KeptOverlay';
import type { ListImagesRequest as _magrathea_v1_ListImagesRequest, ListImagesRequest__Output as _magrathea_v1_ListImagesRequest__Output } from './magrathea/v1/ListImagesRequest';
import type { ListImagesResponse as _magrathea_v1_ListImagesResponse, ListImagesResponse__Output as _magrathea_v1_ListImagesResponse__Output } from './magrathea/v1/ListImagesResponse';
import type { Node as _magrathea_v1_Node, Node__Output as _magrathea_v1_Node__Output } from './magrathea/v1/Node';
import type { NodeDown as _magrathea_v1_NodeDown, NodeDown__Output as _magrathea_v1_NodeDown__Output } from './magrathea/v1/NodeDown';
import type { NodeEvent as _magrathea_v1_NodeEvent, NodeEvent__Output as _magrathea_v1_NodeEvent__Output } from './magrathea/v1/NodeEvent';
import type { NodePosition as _magrathea_v1_NodePosition, NodePosition__Output as _magrathea_v1_NodePosition__Output } from './magrathea/v1/NodePosition';
import type { NodeServiceClient as _magrathea_v1_NodeServiceClient, NodeServiceDefinition as _magrathea_v1_NodeServiceDefinition } from './magrathea/v1/NodeService';
import type { Phase as _magrathea_v1_Phase, Phase__Output as _magrathea_v1_Phase__Output } from './magrathea/v1/Phase';
import type { PullImageRequest as _magrathea_v1_PullImageRequest, PullImageRequest__Output as _magrathea_v1_PullImageRequest__Output } from './magrathea/v1/PullImageRequest';
import type { PullImageResponse as _magrathea_v1_PullImageResponse, PullImageResponse__Output as _magrathea_v1_PullImageResponse__Output } from './magrathea/v1/PullImageResponse';
import type { RelayEvent as _magrathea_v1_RelayEvent, RelayEvent__Output as _magrathea_v1_RelayEvent__Output } from './magrathea/v1/RelayEvent';
import type { RelayServiceClient as _magrathea_v1_RelayServiceClient, RelayServiceDefinition as _magrathea_v1_RelayServiceDefinition } from './magrathea/v1/RelayService';
import type { Release as _magrathea_v1_Release, Release__Output as _magrathea_v1_Release__Output } from './magrathea/v1/Release';
import type { RemoveImageRequest as _magrathea_v1_RemoveImageRequest, RemoveImageRequest__Output as _magrathea_v1_RemoveImageRequest__Output } from './magrathea/v1/RemoveImageRequest';
import type { RemoveImageResponse as _magrathea_v1_RemoveImageResponse, RemoveImageResponse__Output as _magrathea_v1_RemoveImageResponse__Output } from './magrathea/v1/RemoveImageResponse';
import type { Reset as _magrathea_v1_Reset, Reset__Output as _magrathea_v1_Reset__Output } from './magrathea/v1/Reset';
import type { SetImageRequest as _magrathea_v1_SetImageRequest, SetImageRequest__Output as _magrathea_v1_SetImageRequest__Output } from './magrathea/v1/SetImageRequest';
import type { SetImageResponse as _magrathea_v1_SetImageResponse, SetImageResponse__Output as _magrathea_v1_SetImageResponse__Output } from './magrathea/v1/SetImageResponse';
import type { StartJobRequest as _magrathea_v1_StartJobRequest, StartJobRequest__Output as _magrathea_v1_StartJobRequest__Output } from './magrathea/v1/StartJobRequest';
import type { StartJobResponse as _magrathea_v1_StartJobResponse, StartJobResponse__Output as _magrathea_v1_StartJobResponse__Output } from './magrathea/v1/StartJobResponse';
import type { WatchNodeRequest as _magrathea_v1_WatchNodeRequest, WatchNodeRequest__Output as _magrathea_v1_WatchNodeRequest__Output } from './magrathea/v1/WatchNodeRequest';
import type { WatchNodesRequest as _magrathea_v1_WatchNodesRequest, WatchNodesRequest__Output as _magrathea_v1_WatchNodesRequest__Output } from './magrathea/v1/WatchNodesRequest';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  magrathea: {
    v1: {
      CachedImage: MessageTypeDefinition<_magrathea_v1_CachedImage, _magrathea_v1_CachedImage__Output>
      CaughtUp: MessageTypeDefinition<_magrathea_v1_CaughtUp, _magrathea_v1_CaughtUp__Output>
      Change: MessageTypeDefinition<_magrathea_v1_Change, _magrathea_v1_Change__Output>
      Domain: MessageTypeDefinition<_magrathea_v1_Domain, _magrathea_v1_Domain__Output>
      DomainActionRequest: MessageTypeDefinition<_magrathea_v1_DomainActionRequest, _magrathea_v1_DomainActionRequest__Output>
      DomainActionResponse: MessageTypeDefinition<_magrathea_v1_DomainActionResponse, _magrathea_v1_DomainActionResponse__Output>
      DriverObservation: MessageTypeDefinition<_magrathea_v1_DriverObservation, _magrathea_v1_DriverObservation__Output>
      EndJobRequest: MessageTypeDefinition<_magrathea_v1_EndJobRequest, _magrathea_v1_EndJobRequest__Output>
      EndJobResponse: MessageTypeDefinition<_magrathea_v1_EndJobResponse, _magrathea_v1_EndJobResponse__Output>
      GetNodeRequest: MessageTypeDefinition<_magrathea_v1_GetNodeRequest, _magrathea_v1_GetNodeRequest__Output>
      Heartbeat: MessageTypeDefinition<_magrathea_v1_Heartbeat, _magrathea_v1_Heartbeat__Output>
      HostMetrics: MessageTypeDefinition<_magrathea_v1_HostMetrics, _magrathea_v1_HostMetrics__Output>
      Job: MessageTypeDefinition<_magrathea_v1_Job, _magrathea_v1_Job__Output>
      JobChange: MessageTypeDefinition<_magrathea_v1_JobChange, _magrathea_v1_JobChange__Output>
      JobRef: MessageTypeDefinition<_magrathea_v1_JobRef, _magrathea_v1_JobRef__Output>
      KeptOverlay: MessageTypeDefinition<_magrathea_v1_KeptOverlay, _magrathea_v1_KeptOverlay__Output>
      ListImagesRequest: MessageTypeDefinition<_magrathea_v1_ListImagesRequest, _magrathea_v1_ListImagesRequest__Output>
      ListImagesResponse: MessageTypeDefinition<_magrathea_v1_ListImagesResponse, _magrathea_v1_ListImagesResponse__Output>
      Node: MessageTypeDefinition<_magrathea_v1_Node, _magrathea_v1_Node__Output>
      NodeDown: MessageTypeDefinition<_magrathea_v1_NodeDown, _magrathea_v1_NodeDown__Output>
      NodeEvent: MessageTypeDefinition<_magrathea_v1_NodeEvent, _magrathea_v1_NodeEvent__Output>
      NodePosition: MessageTypeDefinition<_magrathea_v1_NodePosition, _magrathea_v1_NodePosition__Output>
      /**
       * The per-physical-node daemon (magrathead).
       */
      NodeService: SubtypeConstructor<typeof grpc.Client, _magrathea_v1_NodeServiceClient> & { service: _magrathea_v1_NodeServiceDefinition }
      Phase: MessageTypeDefinition<_magrathea_v1_Phase, _magrathea_v1_Phase__Output>
      PullImageRequest: MessageTypeDefinition<_magrathea_v1_PullImageRequest, _magrathea_v1_PullImageRequest__Output>
      PullImageResponse: MessageTypeDefinition<_magrathea_v1_PullImageResponse, _magrathea_v1_PullImageResponse__Output>
      RelayEvent: MessageTypeDefinition<_magrathea_v1_RelayEvent, _magrathea_v1_RelayEvent__Output>
      /**
       * magrathea-relay: holds the WatchNode streams of a rack's daemons and forwards them to the
       * filter on one stream (fan-in), so the filter holds one connection per relay, not per node.
       */
      RelayService: SubtypeConstructor<typeof grpc.Client, _magrathea_v1_RelayServiceClient> & { service: _magrathea_v1_RelayServiceDefinition }
      Release: MessageTypeDefinition<_magrathea_v1_Release, _magrathea_v1_Release__Output>
      RemoveImageRequest: MessageTypeDefinition<_magrathea_v1_RemoveImageRequest, _magrathea_v1_RemoveImageRequest__Output>
      RemoveImageResponse: MessageTypeDefinition<_magrathea_v1_RemoveImageResponse, _magrathea_v1_RemoveImageResponse__Output>
      Reset: MessageTypeDefinition<_magrathea_v1_Reset, _magrathea_v1_Reset__Output>
      SetImageRequest: MessageTypeDefinition<_magrathea_v1_SetImageRequest, _magrathea_v1_SetImageRequest__Output>
      SetImageResponse: MessageTypeDefinition<_magrathea_v1_SetImageResponse, _magrathea_v1_SetImageResponse__Output>
      StartJobRequest: MessageTypeDefinition<_magrathea_v1_StartJobRequest, _magrathea_v1_StartJobRequest__Output>
      StartJobResponse: MessageTypeDefinition<_magrathea_v1_StartJobResponse, _magrathea_v1_StartJobResponse__Output>
      WatchNodeRequest: MessageTypeDefinition<_magrathea_v1_WatchNodeRequest, _magrathea_v1_WatchNodeRequest__Output>
      WatchNodesRequest: MessageTypeDefinition<_magrathea_v1_WatchNodesRequest, _magrathea_v1_WatchNodesRequest__Output>
    }
  }
}

