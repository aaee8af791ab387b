/** Loads the gRPC contract from `proto/`, with the same options the generated types were made with. */
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import type { ProtoGrpcType as NodeServiceProto } from './generated/node_service';
import type { ProtoGrpcType as ClusterServiceProto } from './generated/cluster_service';
import type { ProtoGrpcType as RelayServiceProto } from './generated/relay_service';

/** Options shared by `loadSync` and `scripts/gen-types.sh` (keep them identical). */
export const LOAD_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

function findProtoRoot(): string {
  // In a checkout, src/ and dist/ both sit two levels below the repository root's proto/ (the one
  // source). Installed (the release): the package's own proto/, copied in when it is packed.
  const candidates = [path.resolve(__dirname, '../../../proto'), path.resolve(__dirname, '../proto')];
  for (const c of candidates) {
    if (fs.existsSync(path.join(c, 'magrathea/v1/node_service.proto'))) return c;
  }
  throw new Error(`proto directory not found (looked in ${candidates.join(', ')})`);
}

/** Directory holding `magrathea/v1/*.proto`. */
export const PROTO_ROOT = findProtoRoot();

/** Every .proto file of the contract, relative to PROTO_ROOT. */
export const PROTO_FILES = [
  'magrathea/v1/domain.proto',
  'magrathea/v1/node_service.proto',
  'magrathea/v1/cluster_service.proto',
  'magrathea/v1/relay_service.proto',
];

/**
 * int64 fields are decoded as plain numbers instead of long.js objects: decoding a watch message
 * costs much less (bench/codec.js, BENCHMARKS.md). The API still shows them as decimal strings
 * (`longs: String`). Exact up to 2^53: every int64 of the contract is a generation, a count, a
 * byte size or a time in ms, and the code that reads one refuses a value that is not a safe
 * integer (a larger value on the wire decodes to a number above 2^53, so it is still refused).
 * Encoding keeps long.js (a decimal string is converted exactly, so a client's 2^64-1 still
 * reaches the server as 2^64-1). protobufjs is configured once per process; every codec of the
 * process (gRPC, reflection, the relay's own codec) shares it; `false` brings back long.js
 * readers (the codec bench's before).
 */
export function decodeInt64AsNumbers(numbers = true): void {
  const long = protobuf.util.Long;
  // configure() picks the readers from util.Long (toNumber without it); fromObject and the writer
  // read util.Long at each call, so restoring it keeps encoding exact.
  protobuf.util.Long = (numbers ? null : long) as typeof protobuf.util.Long;
  protobuf.configure();
  protobuf.util.Long = long;
}
decodeInt64AsNumbers();

/**
 * One file of the contract (with what it imports) as a protobufjs Root, field names as written:
 * for the codecs that write pre-encoded messages or read raw bytes (proto-loader does not hand
 * out its own Root).
 */
export function loadProtoRoot(file: string): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_ROOT, target));
  return root.loadSync(file, { keepCase: true });
}

/** A protobufjs writer's bytes as a Buffer (the same memory, no copy). */
export const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

let cached: protoLoader.PackageDefinition | null = null;

/**
 * The loaded package definition (for servers, reflection and clients). Parsed once per process:
 * it is read-only, and parsing costs ~30 ms of CPU (a process hosting many daemons, like the
 * trace replay, would pay it for each).
 */
export function loadPackageDefinition(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(PROTO_FILES, { ...LOAD_OPTIONS, includeDirs: [PROTO_ROOT] });
  return cached;
}

/** Typed gRPC object for `magrathea.v1`. */
export function loadMagratheaApi(
  definition = loadPackageDefinition(),
): NodeServiceProto & ClusterServiceProto & RelayServiceProto {
  return grpc.loadPackageDefinition(definition) as unknown as NodeServiceProto &
    ClusterServiceProto &
    RelayServiceProto;
}
