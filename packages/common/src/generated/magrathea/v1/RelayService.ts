// Original file: proto/magrathea/v1/relay_service.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { RelayEvent as _magrathea_v1_RelayEvent, RelayEvent__Output as _magrathea_v1_RelayEvent__Output } from '../../magrathea/v1/RelayEvent';
import type { WatchNodesRequest as _magrathea_v1_WatchNodesRequest, WatchNodesRequest__Output as _magrathea_v1_WatchNodesRequest__Output } from '../../magrathea/v1/WatchNodesRequest';

/**
 * magrathea-relay: holds the WatchNode streams of a rack's daemons and forwards them to the
 * filter on one stream (fan-in), so the filter holds one connection per relay, not per node.
 */
export interface RelayServiceClient extends grpc.Client {
  /**
   * First, for each node asked for: the events after its since_generation (a snapshot first
   * when the relay no longer holds them all; a heartbeat at the node's generation when nothing
   * was missed), as soon as the relay has heard from the node; then every event of every node
   * as it arrives, each node's in generation order. Nodes the relay does not watch are answered
   * with a `down` naming the reason. One `caught_up` separates the two: everything before it is
   * the first catch-up of every node asked for, everything after it is live.
   */
  WatchNodes(argument: _magrathea_v1_WatchNodesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_RelayEvent__Output>;
  WatchNodes(argument: _magrathea_v1_WatchNodesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_RelayEvent__Output>;
  /**
   * First, for each node asked for: the events after its since_generation (a snapshot first
   * when the relay no longer holds them all; a heartbeat at the node's generation when nothing
   * was missed), as soon as the relay has heard from the node; then every event of every node
   * as it arrives, each node's in generation order. Nodes the relay does not watch are answered
   * with a `down` naming the reason. One `caught_up` separates the two: everything before it is
   * the first catch-up of every node asked for, everything after it is live.
   */
  watchNodes(argument: _magrathea_v1_WatchNodesRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_RelayEvent__Output>;
  watchNodes(argument: _magrathea_v1_WatchNodesRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_magrathea_v1_RelayEvent__Output>;
  
}

/**
 * magrathea-relay: holds the WatchNode streams of a rack's daemons and forwards them to the
 * filter on one stream (fan-in), so the filter holds one connection per relay, not per node.
 */
export interface RelayServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * First, for each node asked for: the events after its since_generation (a snapshot first
   * when the relay no longer holds them all; a heartbeat at the node's generation when nothing
   * was missed), as soon as the relay has heard from the node; then every event of every node
   * as it arrives, each node's in generation order. Nodes the relay does not watch are answered
   * with a `down` naming the reason. One `caught_up` separates the two: everything before it is
   * the first catch-up of every node asked for, everything after it is live.
   */
  WatchNodes: grpc.handleServerStreamingCall<_magrathea_v1_WatchNodesRequest__Output, _magrathea_v1_RelayEvent>;
  
}

export interface RelayServiceDefinition extends grpc.ServiceDefinition {
  WatchNodes: MethodDefinition<_magrathea_v1_WatchNodesRequest, _magrathea_v1_RelayEvent, _magrathea_v1_WatchNodesRequest__Output, _magrathea_v1_RelayEvent__Output>
}
