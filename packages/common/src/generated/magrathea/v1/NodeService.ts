// Original file: proto/magrathea/v1/node_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { DomainActionRequest as _magrathea_v1_DomainActionRequest, DomainActionRequest__Output as _magrathea_v1_DomainActionRequest__Output } from '../../magrathea/v1/DomainActionRequest';
import type { DomainActionResponse as _magrathea_v1_DomainActionResponse, DomainActionResponse__Output as _magrathea_v1_DomainActionResponse__Output } from '../../magrathea/v1/DomainActionResponse';
import type { EndJobRequest as _magrathea_v1_EndJobRequest, EndJobRequest__Output as _magrathea_v1_EndJobRequest__Output } from '../../magrathea/v1/EndJobRequest';
import type { EndJobResponse as _magrathea_v1_EndJobResponse, EndJobResponse__Output as _magrathea_v1_EndJobResponse__Output } from '../../magrathea/v1/EndJobResponse';
import type { GetNodeRequest as _magrathea_v1_GetNodeRequest, GetNodeRequest__Output as _magrathea_v1_GetNodeRequest__Output } from '../../magrathea/v1/GetNodeRequest';
import type { ListImagesRequest as _magrathea_v1_ListImagesRequest, ListImagesRequest__Output as _magrathea_v1_ListImagesRequest__Output } from '../../magrathea/v1/ListImagesRequest';
import type { ListImagesResponse as _magrathea_v1_ListImagesResponse, ListImagesResponse__Output as _magrathea_v1_ListImagesResponse__Output } from '../../magrathea/v1/ListImagesResponse';
import type { Node as _magrathea_v1_Node, Node__Output as _magrathea_v1_Node__Output } from '../../magrathea/v1/Node';
import type { NodeEvent as _magrathea_v1_NodeEvent, NodeEvent__Output as _magrathea_v1_NodeEvent__Output } from '../../magrathea/v1/NodeEvent';
import type { PullImageRequest as _magrathea_v1_PullImageRequest, PullImageRequest__Output as _magrathea_v1_PullImageRequest__Output } from '../../magrathea/v1/PullImageRequest';
import type { PullImageResponse as _magrathea_v1_PullImageResponse, PullImageResponse__Output as _magrathea_v1_PullImageResponse__Output } from '../../magrathea/v1/PullImageResponse';
import type { RemoveImageRequest as _magrathea_v1_RemoveImageRequest, RemoveImageRequest__Output as _magrathea_v1_RemoveImageRequest__Output } from '../../magrathea/v1/RemoveImageRequest';
import type { RemoveImageResponse as _magrathea_v1_RemoveImageResponse, RemoveImageResponse__Output as _magrathea_v1_RemoveImageResponse__Output } from '../../magrathea/v1/RemoveImageResponse';
import type { SetImageRequest as _magrathea_v1_SetImageRequest, SetImageRequest__Output as _magrathea_v1_SetImageRequest__Output } from '../../magrathea/v1/SetImageRequest';
import type { SetImageResponse as _magrathea_v1_SetImageResponse, SetImageResponse__Output as _magrathea_v1_SetImageResponse__Output } from '../../magrathea/v1/SetImageResponse';
import type { StartJobRequest as _magrathea_v1_StartJobRequest, StartJobRequest__Output as _magrathea_v1_StartJobRequest__Output } from '../../magrathea/v1/StartJobRequest';
import type { StartJobResponse as _magrathea_v1_StartJobResponse, StartJobResponse__Output as _magrathea_v1_StartJobResponse__Output } from '../../magrathea/v1/StartJobResponse';
import type { WatchNodeRequest as _magrathea_v1_WatchNodeRequest, WatchNodeRequest__Output as _magrathea_v1_WatchNodeRequest__Output } from '../../magrathea/v1/WatchNodeRequest';

/**
 * The per-physical-node daemon (magrathead).
 */
export interface NodeServiceClient extends grpc.Client {
  DomainAction(argument: _magrathea_v1_DomainActionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_DomainActionResponse__Output>): grpc.ClientUnaryCall;
  DomainAction(argument: _magrathea_v1_DomainActionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_DomainActionResponse__Output>): grpc.ClientUnaryCall;
  DomainAction(argument: _magrathea_v1_DomainActionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_DomainActionResponse__Output>): grpc.ClientUnaryCall;
  DomainAction(argument: _magrathea_v1_DomainActionRequest, callback: grpc.requestCallback<_magrathea_v1_DomainActionResponse__Output>): grpc.ClientUnaryCall;
  domainAction(argument: _magrathea_v1_DomainActionRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_DomainActionResponse__Output>): grpc.ClientUnaryCall;
  domainAction(argument: _magrathea_v1_DomainActionRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_DomainActionResponse__Output>): grpc.ClientUnaryCall;
  domainAction(argument: _magrathea_v1_DomainActionRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_DomainActionResponse__Output>): grpc.ClientUnaryCall;
  domainAction(argument: _magrathea_v1_DomainActionRequest, callback: grpc.requestCallback<_magrathea_v1_DomainActionResponse__Output>): grpc.ClientUnaryCall;
  
  EndJob(argument: _magrathea_v1_EndJobRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_EndJobResponse__Output>): grpc.ClientUnaryCall;
  EndJob(argument: _magrathea_v1_EndJobRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_EndJobResponse__Output>): grpc.ClientUnaryCall;
  EndJob(argument: _magrathea_v1_EndJobRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_EndJobResponse__Output>): grpc.ClientUnaryCall;
  EndJob(argument: _magrathea_v1_EndJobRequest, callback: grpc.requestCallback<_magrathea_v1_EndJobResponse__Output>): grpc.ClientUnaryCall;
  endJob(argument: _magrathea_v1_EndJobRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_EndJobResponse__Output>): grpc.ClientUnaryCall;
  endJob(argument: _magrathea_v1_EndJobRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_EndJobResponse__Output>): grpc.ClientUnaryCall;
  endJob(argument: _magrathea_v1_EndJobRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_EndJobResponse__Output>): grpc.ClientUnaryCall;
  endJob(argument: _magrathea_v1_EndJobRequest, callback: grpc.requestCallback<_magrathea_v1_EndJobResponse__Output>): grpc.ClientUnaryCall;
  
  GetNode(argument: _magrathea_v1_GetNodeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_Node__Output>): grpc.ClientUnaryCall;
  GetNode(argument: _magrathea_v1_GetNodeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_Node__Output>): grpc.ClientUnaryCall;
  GetNode(argument: _magrathea_v1_GetNodeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_Node__Output>): grpc.ClientUnaryCall;
  GetNode(argument: _magrathea_v1_GetNodeRequest, callback: grpc.requestCallback<_magrathea_v1_Node__Output>): grpc.ClientUnaryCall;
  getNode(argument: _magrathea_v1_GetNodeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_Node__Output>): grpc.ClientUnaryCall;
  getNode(argument: _magrathea_v1_GetNodeRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_Node__Output>): grpc.ClientUnaryCall;
  getNode(argument: _magrathea_v1_GetNodeRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_Node__Output>): grpc.ClientUnaryCall;
  getNode(argument: _magrathea_v1_GetNodeRequest, callback: grpc.requestCallback<_magrathea_v1_Node__Output>): grpc.ClientUnaryCall;
  
  /**
   * The node's image catalogue and what its cache holds (reads).
   */
  ListImages(argument: _magrathea_v1_ListImagesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_ListImagesResponse__Output>): grpc.ClientUnaryCall;
  ListImages(argument: _magrathea_v1_ListImagesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_ListImagesResponse__Output>): grpc.ClientUnaryCall;
  ListImages(argument: _magrathea_v1_ListImagesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_ListImagesResponse__Output>): grpc.ClientUnaryCall;
  ListImages(argument: _magrathea_v1_ListImagesRequest, callback: grpc.requestCallback<_magrathea_v1_ListImagesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * The node's image catalogue and what its cache holds (reads).
   */
  listImages(argument: _magrathea_v1_ListImagesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_ListImagesResponse__Output>): grpc.ClientUnaryCall;
  listImages(argument: _magrathea_v1_ListImagesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_ListImagesResponse__Output>): grpc.ClientUnaryCall;
  listImages(argument: _magrathea_v1_ListImagesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_ListImagesResponse__Output>): grpc.ClientUnaryCall;
  listImages(argument: _magrathea_v1_ListImagesRequest, callback: grpc.requestCallback<_magrathea_v1_ListImagesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Downloads a catalogue image into the cache now (operators).
   */
  PullImage(argument: _magrathea_v1_PullImageRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_PullImageResponse__Output>): grpc.ClientUnaryCall;
  PullImage(argument: _magrathea_v1_PullImageRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_PullImageResponse__Output>): grpc.ClientUnaryCall;
  PullImage(argument: _magrathea_v1_PullImageRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_PullImageResponse__Output>): grpc.ClientUnaryCall;
  PullImage(argument: _magrathea_v1_PullImageRequest, callback: grpc.requestCallback<_magrathea_v1_PullImageResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Downloads a catalogue image into the cache now (operators).
   */
  pullImage(argument: _magrathea_v1_PullImageRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_PullImageResponse__Output>): grpc.ClientUnaryCall;
  pullImage(argument: _magrathea_v1_PullImageRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_PullImageResponse__Output>): grpc.ClientUnaryCall;
  pullImage(argument: _magrathea_v1_PullImageRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_PullImageResponse__Output>): grpc.ClientUnaryCall;
  pullImage(argument: _magrathea_v1_PullImageRequest, callback: grpc.requestCallback<_magrathea_v1_PullImageResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Removes an image from the cache; refused while a domain uses it (operators).
   */
  RemoveImage(argument: _magrathea_v1_RemoveImageRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_RemoveImageResponse__Output>): grpc.ClientUnaryCall;
  RemoveImage(argument: _magrathea_v1_RemoveImageRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_RemoveImageResponse__Output>): grpc.ClientUnaryCall;
  RemoveImage(argument: _magrathea_v1_RemoveImageRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_RemoveImageResponse__Output>): grpc.ClientUnaryCall;
  RemoveImage(argument: _magrathea_v1_RemoveImageRequest, callback: grpc.requestCallback<_magrathea_v1_RemoveImageResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Removes an image from the cache; refused while a domain uses it (operators).
   */
  removeImage(argument: _magrathea_v1_RemoveImageRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_RemoveImageResponse__Output>): grpc.ClientUnaryCall;
  removeImage(argument: _magrathea_v1_RemoveImageRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_RemoveImageResponse__Output>): grpc.ClientUnaryCall;
  removeImage(argument: _magrathea_v1_RemoveImageRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_RemoveImageResponse__Output>): grpc.ClientUnaryCall;
  removeImage(argument: _magrathea_v1_RemoveImageRequest, callback: grpc.requestCallback<_magrathea_v1_RemoveImageResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Switches an image-backed domain to another catalogue image: drain, wait for its jobs (or,
   * with now, end them as lost), shut down, new overlay on the new base, boot (operators).
   */
  SetImage(argument: _magrathea_v1_SetImageRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_SetImageResponse__Output>): grpc.ClientUnaryCall;
  SetImage(argument: _magrathea_v1_SetImageRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_SetImageResponse__Output>): grpc.ClientUnaryCall;
  SetImage(argument: _magrathea_v1_SetImageRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_SetImageResponse__Output>): grpc.ClientUnaryCall;
  SetImage(argument: _magrathea_v1_SetImageRequest, callback: grpc.requestCallback<_magrathea_v1_SetImageResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Switches an image-backed domain to another catalogue image: drain, wait for its jobs (or,
   * with now, end them as lost), shut down, new overlay on the new base, boot (operators).
   */
  setImage(argument: _magrathea_v1_SetImageRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_SetImageResponse__Output>): grpc.ClientUnaryCall;
  setImage(argument: _magrathea_v1_SetImageRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_SetImageResponse__Output>): grpc.ClientUnaryCall;
  setImage(argument: _magrathea_v1_SetImageRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_SetImageResponse__Output>): grpc.ClientUnaryCall;
  setImage(argument: _magrathea_v1_SetImageRequest, callback: grpc.requestCallback<_magrathea_v1_SetImageResponse__Output>): grpc.ClientUnaryCall;
  
  StartJob(argument: _magrathea_v1_StartJobRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_StartJobResponse__Output>): grpc.ClientUnaryCall;
  StartJob(argument: _magrathea_v1_StartJobRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_StartJobResponse__Output>): grpc.ClientUnaryCall;
  StartJob(argument: _magrathea_v1_StartJobRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_StartJobResponse__Output>): grpc.ClientUnaryCall;
  StartJob(argument: _magrathea_v1_StartJobRequest, callback: grpc.requestCallback<_magrathea_v1_StartJobResponse__Output>): grpc.ClientUnaryCall;
  startJob(argument: _magrathea_v1_StartJobRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_StartJobResponse__Output>): grpc.ClientUnaryCall;
  startJob(argument: _magrathea_v1_StartJobRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_StartJobResponse__Output>): grpc.ClientUnaryCall;
  startJob(argument: _magrathea_v1_StartJobRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_StartJobResponse__Output>): grpc.ClientUnaryCall;
  startJob(argument: _magrathea_v1_StartJobRequest, callback: grpc.requestCallback<_magrathea_v1_StartJobResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * First message: a full snapshot (unless every event after since_generation can be
   * replayed, then those events); then one event per committed change, in generation order.
   */
  WatchNode(argument: _magrathea_v1_WatchNodeRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_NodeEvent__Output>;
  WatchNode(argument: _magrathea_v1_WatchNodeRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_NodeEvent__Output>;
  /**
   * First message: a full snapshot (unless every event after since_generation can be
   * replayed, then those events); then one event per committed change, in generation order.
   */
  watchNode(argument: _magrathea_v1_WatchNodeRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_NodeEvent__Output>;
  watchNode(argument: _magrathea_v1_WatchNodeRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_NodeEvent__Output>;
  
}

/**
 * The per-physical-node daemon (magrathead).
 */
export interface NodeServiceHandlers extends grpc.UntypedServiceImplementation {
  DomainAction: grpc.handleUnaryCall<_magrathea_v1_DomainActionRequest__Output, _magrathea_v1_DomainActionResponse>;
  
  EndJob: grpc.handleUnaryCall<_magrathea_v1_EndJobRequest__Output, _magrathea_v1_EndJobResponse>;
  
  GetNode: grpc.handleUnaryCall<_magrathea_v1_GetNodeRequest__Output, _magrathea_v1_Node>;
  
  /**
   * The node's image catalogue and what its cache holds (reads).
   */
  ListImages: grpc.handleUnaryCall<_magrathea_v1_ListImagesRequest__Output, _magrathea_v1_ListImagesResponse>;
  
  /**
   * Downloads a catalogue image into the cache now (operators).
   */
  PullImage: grpc.handleUnaryCall<_magrathea_v1_PullImageRequest__Output, _magrathea_v1_PullImageResponse>;
  
  /**
   * Removes an image from the cache; refused while a domain uses it (operators).
   */
  RemoveImage: grpc.handleUnaryCall<_magrathea_v1_RemoveImageRequest__Output, _magrathea_v1_RemoveImageResponse>;
  
  /**
   * Switches an image-backed domain to another catalogue image: drain, wait for its jobs (or,
   * with now, end them as lost), shut down, new overlay on the new base, boot (operators).
   */
  SetImage: grpc.handleUnaryCall<_magrathea_v1_SetImageRequest__Output, _magrathea_v1_SetImageResponse>;
  
  StartJob: grpc.handleUnaryCall<_magrathea_v1_StartJobRequest__Output, _magrathea_v1_StartJobResponse>;
  
  /**
   * First message: a full snapshot (unless every event after since_generation can be
   * replayed, then those events); then one event per committed change, in generation order.
   */
  WatchNode: grpc.handleServerStreamingCall<_magrathea_v1_WatchNodeRequest__Output, _magrathea_v1_NodeEvent>;
  
}

export interface NodeServiceDefinition extends grpc.ServiceDefinition {
  DomainAction: MethodDefinition<_magrathea_v1_DomainActionRequest, _magrathea_v1_DomainActionResponse, _magrathea_v1_DomainActionRequest__Output, _magrathea_v1_DomainActionResponse__Output>
  EndJob: MethodDefinition<_magrathea_v1_EndJobRequest, _magrathea_v1_EndJobResponse, _magrathea_v1_EndJobRequest__Output, _magrathea_v1_EndJobResponse__Output>
  GetNode: MethodDefinition<_magrathea_v1_GetNodeRequest, _magrathea_v1_Node, _magrathea_v1_GetNodeRequest__Output, _magrathea_v1_Node__Output>
  ListImages: MethodDefinition<_magrathea_v1_ListImagesRequest, _magrathea_v1_ListImagesResponse, _magrathea_v1_ListImagesRequest__Output, _magrathea_v1_ListImagesResponse__Output>
  PullImage: MethodDefinition<_magrathea_v1_PullImageRequest, _magrathea_v1_PullImageResponse, _magrathea_v1_PullImageRequest__Output, _magrathea_v1_PullImageResponse__Output>
  RemoveImage: MethodDefinition<_magrathea_v1_RemoveImageRequest, _magrathea_v1_RemoveImageResponse, _magrathea_v1_RemoveImageRequest__Output, _magrathea_v1_RemoveImageResponse__Output>
  SetImage: MethodDefinition<_magrathea_v1_SetImageRequest, _magrathea_v1_SetImageResponse, _magrathea_v1_SetImageRequest__Output, _magrathea_v1_SetImageResponse__Output>
  StartJob: MethodDefinition<_magrathea_v1_StartJobRequest, _magrathea_v1_StartJobResponse, _magrathea_v1_StartJobRequest__Output, _magrathea_v1_StartJobResponse__Output>
  WatchNode: MethodDefinition<_magrathea_v1_WatchNodeRequest, _magrathea_v1_NodeEvent, _magrathea_v1_WatchNodeRequest__Output, _magrathea_v1_NodeEvent__Output>
}
