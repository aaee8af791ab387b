// Original file: proto/magrathea/v1/cluster_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AdmitRequest as _magrathea_v1_AdmitRequest, AdmitRequest__Output as _magrathea_v1_AdmitRequest__Output } from '../../magrathea/v1/AdmitRequest';
import type { AdmitResponse as _magrathea_v1_AdmitResponse, AdmitResponse__Output as _magrathea_v1_AdmitResponse__Output } from '../../magrathea/v1/AdmitResponse';
import type { CandidatesRequest as _magrathea_v1_CandidatesRequest, CandidatesRequest__Output as _magrathea_v1_CandidatesRequest__Output } from '../../magrathea/v1/CandidatesRequest';
import type { CandidatesResponse as _magrathea_v1_CandidatesResponse, CandidatesResponse__Output as _magrathea_v1_CandidatesResponse__Output } from '../../magrathea/v1/CandidatesResponse';
import type { ClusterEvent as _magrathea_v1_ClusterEvent, ClusterEvent__Output as _magrathea_v1_ClusterEvent__Output } from '../../magrathea/v1/ClusterEvent';
import type { ListNodesRequest as _magrathea_v1_ListNodesRequest, ListNodesRequest__Output as _magrathea_v1_ListNodesRequest__Output } from '../../magrathea/v1/ListNodesRequest';
import type { ListNodesResponse as _magrathea_v1_ListNodesResponse, ListNodesResponse__Output as _magrathea_v1_ListNodesResponse__Output } from '../../magrathea/v1/ListNodesResponse';
import type { WatchClusterRequest as _magrathea_v1_WatchClusterRequest, WatchClusterRequest__Output as _magrathea_v1_WatchClusterRequest__Output } from '../../magrathea/v1/WatchClusterRequest';

/**
 * The scheduler filter (magrathea-filter): the cluster view, admission and ranking.
 */
export interface ClusterServiceClient extends grpc.Client {
  /**
   * Would the job's chunks be admitted on these vnodes right now (the runjob hook's check)?
   */
  Admit(argument: _magrathea_v1_AdmitRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_AdmitResponse__Output>): grpc.ClientUnaryCall;
  Admit(argument: _magrathea_v1_AdmitRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_AdmitResponse__Output>): grpc.ClientUnaryCall;
  Admit(argument: _magrathea_v1_AdmitRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_AdmitResponse__Output>): grpc.ClientUnaryCall;
  Admit(argument: _magrathea_v1_AdmitRequest, callback: grpc.requestCallback<_magrathea_v1_AdmitResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Would the job's chunks be admitted on these vnodes right now (the runjob hook's check)?
   */
  admit(argument: _magrathea_v1_AdmitRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_AdmitResponse__Output>): grpc.ClientUnaryCall;
  admit(argument: _magrathea_v1_AdmitRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_AdmitResponse__Output>): grpc.ClientUnaryCall;
  admit(argument: _magrathea_v1_AdmitRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_AdmitResponse__Output>): grpc.ClientUnaryCall;
  admit(argument: _magrathea_v1_AdmitRequest, callback: grpc.requestCallback<_magrathea_v1_AdmitResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Vnodes that accept a job class now, best first, with reasons.
   */
  Candidates(argument: _magrathea_v1_CandidatesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_CandidatesResponse__Output>): grpc.ClientUnaryCall;
  Candidates(argument: _magrathea_v1_CandidatesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_CandidatesResponse__Output>): grpc.ClientUnaryCall;
  Candidates(argument: _magrathea_v1_CandidatesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_CandidatesResponse__Output>): grpc.ClientUnaryCall;
  Candidates(argument: _magrathea_v1_CandidatesRequest, callback: grpc.requestCallback<_magrathea_v1_CandidatesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Vnodes that accept a job class now, best first, with reasons.
   */
  candidates(argument: _magrathea_v1_CandidatesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_CandidatesResponse__Output>): grpc.ClientUnaryCall;
  candidates(argument: _magrathea_v1_CandidatesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_CandidatesResponse__Output>): grpc.ClientUnaryCall;
  candidates(argument: _magrathea_v1_CandidatesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_CandidatesResponse__Output>): grpc.ClientUnaryCall;
  candidates(argument: _magrathea_v1_CandidatesRequest, callback: grpc.requestCallback<_magrathea_v1_CandidatesResponse__Output>): grpc.ClientUnaryCall;
  
  ListNodes(argument: _magrathea_v1_ListNodesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_ListNodesResponse__Output>): grpc.ClientUnaryCall;
  ListNodes(argument: _magrathea_v1_ListNodesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_ListNodesResponse__Output>): grpc.ClientUnaryCall;
  ListNodes(argument: _magrathea_v1_ListNodesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_ListNodesResponse__Output>): grpc.ClientUnaryCall;
  ListNodes(argument: _magrathea_v1_ListNodesRequest, callback: grpc.requestCallback<_magrathea_v1_ListNodesResponse__Output>): grpc.ClientUnaryCall;
  listNodes(argument: _magrathea_v1_ListNodesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_ListNodesResponse__Output>): grpc.ClientUnaryCall;
  listNodes(argument: _magrathea_v1_ListNodesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_magrathea_v1_ListNodesResponse__Output>): grpc.ClientUnaryCall;
  listNodes(argument: _magrathea_v1_ListNodesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_magrathea_v1_ListNodesResponse__Output>): grpc.ClientUnaryCall;
  listNodes(argument: _magrathea_v1_ListNodesRequest, callback: grpc.requestCallback<_magrathea_v1_ListNodesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * First message: a snapshot of every node; then one event per node change.
   */
  WatchCluster(argument: _magrathea_v1_WatchClusterRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_ClusterEvent__Output>;
  WatchCluster(argument: _magrathea_v1_WatchClusterRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_ClusterEvent__Output>;
  /**
   * First message: a snapshot of every node; then one event per node change.
   */
  watchCluster(argument: _magrathea_v1_WatchClusterRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_ClusterEvent__Output>;
  watchCluster(argument: _magrathea_v1_WatchClusterRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_ClusterEvent__Output>;
  
}

/**
 * The scheduler filter (magrathea-filter): the cluster view, admission and ranking.
 */
export interface ClusterServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Would the job's chunks be admitted on these vnodes right now (the runjob hook's check)?
   */
  Admit: grpc.handleUnaryCall<_magrathea_v1_AdmitRequest__Output, _magrathea_v1_AdmitResponse>;
  
  /**
   * Vnodes that accept a job class now, best first, with reasons.
   */
  Candidates: grpc.handleUnaryCall<_magrathea_v1_CandidatesRequest__Output, _magrathea_v1_CandidatesResponse>;
  
  ListNodes: grpc.handleUnaryCall<_magrathea_v1_ListNodesRequest__Output, _magrathea_v1_ListNodesResponse>;
  
  /**
   * First message: a snapshot of every node; then one event per node change.
   */
  WatchCluster: grpc.handleServerStreamingCall<_magrathea_v1_WatchClusterRequest__Output, _magrathea_v1_ClusterEvent>;
  
}

export interface ClusterServiceDefinition extends grpc.ServiceDefinition {
  Admit: MethodDefinition<_magrathea_v1_AdmitRequest, _magrathea_v1_AdmitResponse, _magrathea_v1_AdmitRequest__Output, _magrathea_v1_AdmitResponse__Output>
  Candidates: MethodDefinition<_magrathea_v1_CandidatesRequest, _magrathea_v1_CandidatesResponse, _magrathea_v1_CandidatesRequest__Output, _magrathea_v1_CandidatesResponse__Output>
  ListNodes: MethodDefinition<_magrathea_v1_ListNodesRequest, _magrathea_v1_ListNodesResponse, _magrathea_v1_ListNodesRequest__Output, _magrathea_v1_ListNodesResponse__Output>
  WatchCluster: MethodDefinition<_magrathea_v1_WatchClusterRequest, _magrathea_v1_ClusterEvent, _magrathea_v1_WatchClusterRequest__Output, _magrathea_v1_ClusterEvent__Output>
}
