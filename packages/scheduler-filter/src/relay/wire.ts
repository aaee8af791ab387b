/**
 * The relay's codecs: it keeps and forwards each daemon's NodeEvent as the bytes the daemon sent,
 * so it decodes a message only to check it (a malformed one is the node's failure here, not a
 * failed stream of every node at the filter) and to learn its kind and generation, and writes
 * its RelayEvents around those bytes (an embedded message is a length-delimited field).
 */
import * as protobuf from 'protobufjs';
import { asBuffer, loadProtoRoot } from '@magrathea/common';

/** What the relay needs of one NodeEvent. */
export interface EventInfo {
  readonly kind: 'snapshot' | 'change' | 'heartbeat';
  readonly generation: number;
  /** A heartbeat's announced interval, ms (0 when it names none); absent for other kinds. */
  readonly heartbeatMs?: number;
}

/**
 * One message to a reader: a node's event (encoded NodeEvent), its loss, or the end of the
 * stream's first catch-up. `shared`: what the node's log holds as the reader's stream starts (it
 * costs the reader no memory of its own).
 */
export type RelayOut =
  | {
      readonly node: string;
      readonly event: Uint8Array;
      readonly down?: undefined;
      readonly caughtUp?: undefined;
      readonly shared?: true;
    }
  | {
      readonly node: string;
      readonly down: { readonly error: string };
      readonly event?: undefined;
      readonly caughtUp?: undefined;
      readonly shared?: true;
    }
  | {
      readonly caughtUp: true;
      readonly node?: undefined;
      readonly event?: undefined;
      readonly down?: undefined;
      readonly shared: true;
    };

/** What a message holds beyond its framing, bytes (the reader's queue bound). */
export function payloadBytes(out: RelayOut): number {
  return out.event ? out.event.length : out.down ? out.down.error.length : 0;
}

export class NodeEventCodec {
  private readonly nodeEvent: protobuf.Type;
  private readonly watchRequest: protobuf.Type;

  constructor() {
    const root = loadProtoRoot('magrathea/v1/node_service.proto');
    this.nodeEvent = root.lookupType('magrathea.v1.NodeEvent');
    this.watchRequest = root.lookupType('magrathea.v1.WatchNodeRequest');
  }

  /** Kind and generation of an encoded NodeEvent, or why it is not one. */
  inspect(bytes: Uint8Array): EventInfo | { readonly problem: string } {
    // int64 fields decode as numbers: @magrathea/common configures protobufjs so (decodeInt64AsNumbers).
    let m: { generation?: number; snapshot?: unknown; change?: unknown; heartbeat?: { interval_ms?: number } };
    try {
      m = this.nodeEvent.decode(bytes) as typeof m;
    } catch (err) {
      return { problem: `malformed NodeEvent: ${(err as Error).message}` };
    }
    const generation = m.generation ?? 0;
    if (!Number.isSafeInteger(generation) || generation < 0)
      return { problem: `NodeEvent generation ${generation} is not a generation` };
    // A message of no kind counts as a heartbeat, as it did decoded.
    const kind = m.snapshot != null ? 'snapshot' : m.change != null ? 'change' : 'heartbeat';
    return kind === 'heartbeat'
      ? { kind, generation, heartbeatMs: m.heartbeat?.interval_ms ?? 0 }
      : { kind, generation };
  }

  /** A heartbeat at `generation` (the relay's own: "you missed nothing"). */
  heartbeat(generation: number, atMs: number): Uint8Array {
    return this.nodeEvent.encode({ generation, heartbeat: { at_ms: atMs, interval_ms: 0 } }).finish();
  }

  /** A WatchNodeRequest resuming after `since` (0: from a snapshot). */
  request(since: number): Uint8Array {
    return this.watchRequest.encode({ since_generation: since }).finish();
  }
}

/** RelayEvent: node = 1, event = 2 (NodeEvent), down = 3 (NodeDown: error = 1), caught_up = 4 (empty). */
export function encodeRelayEvent(out: RelayOut): Buffer {
  const w = protobuf.Writer.create();
  if (out.caughtUp)
    return asBuffer(
      w
        .uint32((4 << 3) | 2)
        .uint32(0)
        .finish(),
    );
  w.uint32((1 << 3) | 2).string(out.node);
  if (out.event) w.uint32((2 << 3) | 2).bytes(out.event);
  else
    w.uint32((3 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string(out.down.error)
      .ldelim();
  return asBuffer(w.finish());
}
