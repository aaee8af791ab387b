/**
 * The encoder of ClusterService's node views (WatchCluster events, ListNodes answers). Each
 * vnode carries its domain's whole message as `detail`, and the view keeps one message object
 * per version of a domain (an entry is replaced, never changed): so the domain's encoding is
 * kept beside that object and written as what an embedded message is on the wire, its
 * length-delimited bytes. A node's change then encodes only the domain that changed, not every
 * domain of the node again. The bytes are exactly what proto-loader's serializer writes
 * (cluster-codec.test.ts compares them).
 */
import * as protobuf from 'protobufjs';
import { asBuffer, loadProtoRoot } from '@magrathea/common';

type Plain = Record<string, unknown>;
/** A grpc-js method definition (the part replaced here). */
interface MethodDefinition {
  responseSerialize: (value: never) => Buffer;
}

const VNODE_VIEW = 'magrathea.v1.VnodeView';

export class ClusterViewCodec {
  private readonly domain: protobuf.Type;
  /** ClusterEvent and ListNodesResponse of a twin schema whose VnodeView.detail is `bytes` (the same wire type as an embedded message). */
  private readonly event: protobuf.Type;
  private readonly list: protobuf.Type;
  private readonly encoded = new WeakMap<object, Uint8Array>();

  constructor() {
    const root = loadProtoRoot('magrathea/v1/cluster_service.proto');
    this.domain = root.lookupType('magrathea.v1.Domain');
    const detail = root.lookupType(VNODE_VIEW).fields.detail;
    if (!detail || detail.resolvedType !== this.domain)
      throw new Error(`${VNODE_VIEW}.detail is not a magrathea.v1.Domain: the node-view codec must be revised`);
    const twin = root.toJSON({ keepComments: false }) as {
      nested: Record<string, { nested?: Record<string, unknown> }>;
    };
    const v1 = (
      twin.nested.magrathea?.nested?.v1 as { nested: Record<string, { fields: Record<string, { type: string }> }> }
    ).nested;
    (v1.VnodeView as { fields: Record<string, { type: string }> }).fields.detail!.type = 'bytes';
    const twinRoot = protobuf.Root.fromJSON(twin as protobuf.INamespace);
    this.event = twinRoot.lookupType('magrathea.v1.ClusterEvent');
    this.list = twinRoot.lookupType('magrathea.v1.ListNodesResponse');
  }

  /** The encoding of one domain message, made once per message object. */
  private domainBytes(d: object): Uint8Array {
    let b = this.encoded.get(d);
    if (!b) {
      b = this.domain.encode(this.domain.fromObject(d)).finish();
      this.encoded.set(d, b);
    }
    return b;
  }

  /** A node view with each vnode's detail as its bytes. */
  private node(n: Plain): Plain {
    const vnodes = n.vnodes as Plain[] | undefined;
    if (!vnodes) return n;
    return {
      ...n,
      vnodes: vnodes.map((v) =>
        v.detail !== null && typeof v.detail === 'object' ? { ...v, detail: this.domainBytes(v.detail) } : v,
      ),
    };
  }

  private finish(type: protobuf.Type, m: Plain): Buffer {
    return asBuffer(type.encode(type.fromObject(m)).finish());
  }

  /** A ClusterEvent (snapshot of nodes, or one node). */
  clusterEvent(ev: Plain): Buffer {
    const snapshot = ev.snapshot as { nodes?: Plain[] } | null | undefined;
    if (snapshot && typeof snapshot === 'object')
      return this.finish(this.event, {
        ...ev,
        snapshot: { ...snapshot, nodes: (snapshot.nodes ?? []).map((n) => this.node(n)) },
      });
    if (ev.node && typeof ev.node === 'object')
      return this.finish(this.event, { ...ev, node: this.node(ev.node as Plain) });
    return this.finish(this.event, ev);
  }

  /** A ListNodesResponse. */
  listNodes(r: Plain): Buffer {
    return this.finish(this.list, { ...r, nodes: ((r.nodes as Plain[] | undefined) ?? []).map((n) => this.node(n)) });
  }

  /** The ClusterService definition with WatchCluster and ListNodes answered through this codec. */
  serviceDefinition<T extends object>(service: T): T {
    const methods = service as unknown as Record<string, MethodDefinition>;
    const replace = (name: string, serialize: (v: Plain) => Buffer): MethodDefinition => {
      const m = methods[name];
      if (!m) throw new Error(`ClusterService has no method ${name}`);
      return { ...m, responseSerialize: serialize };
    };
    return {
      ...service,
      WatchCluster: replace('WatchCluster', (v) => this.clusterEvent(v)),
      ListNodes: replace('ListNodes', (v) => this.listNodes(v)),
    };
  }
}
