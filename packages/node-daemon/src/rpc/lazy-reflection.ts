/**
 * gRPC server reflection, built on its first call. @grpc/reflection (with protobufjs's
 * descriptor extension and the reflection protos it parses when it is set up) serves tools such
 * as grpcurl and nothing else, so at start the daemon only registers the two reflection methods'
 * paths; the real ReflectionService is made when a call comes in. Not holding it at idle is part
 * of the daemon's footprint (BENCHMARKS.md, issue 15).
 */
import type * as grpc from '@grpc/grpc-js';
import type * as ReflectionModule from '@grpc/reflection';
import type { PackageDefinition } from '@grpc/proto-loader';

const VERSIONS = ['v1', 'v1alpha'] as const;
const METHOD = 'ServerReflectionInfo';

type Method = grpc.MethodDefinition<unknown, unknown>;
type Handler = grpc.handleBidiStreamingCall<unknown, unknown>;

export interface LazyReflection {
  addToServer(server: grpc.Server): void;
  /** Whether @grpc/reflection has been loaded (a reflection call came in). */
  readonly loaded: boolean;
}

/** `definition` is called once, on the first reflection call: the package definition to describe. */
export function lazyReflection(definition: () => PackageDefinition): LazyReflection {
  let real: Map<string, { method: Method; handler: Handler }> | null = null;
  const load = (): Map<string, { method: Method; handler: Handler }> => {
    if (real) return real;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- on first use, see above
    const { ReflectionService } = require('@grpc/reflection') as typeof ReflectionModule;
    const service = new ReflectionService(definition());
    const found = new Map<string, { method: Method; handler: Handler }>();
    // Its own addToServer, into a recorder: the real method definitions and handlers.
    const recorder = {
      addService(def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void {
        const method = def[METHOD] as Method | undefined;
        const handler = impl[METHOD] as Handler | undefined;
        if (method && handler) found.set(method.path, { method, handler });
      },
    };
    service.addToServer(recorder);
    real = found;
    return found;
  };
  const get = (path: string): { method: Method; handler: Handler } => {
    const r = load().get(path);
    if (!r) throw new Error(`@grpc/reflection has no ${path}`);
    return r;
  };
  return {
    addToServer(server) {
      for (const v of VERSIONS) {
        const path = `/grpc.reflection.${v}.ServerReflection/${METHOD}`;
        const method: Method = {
          path,
          requestStream: true,
          responseStream: true,
          originalName: 'serverReflectionInfo',
          requestSerialize: (x) => get(path).method.requestSerialize(x),
          requestDeserialize: (b) => get(path).method.requestDeserialize(b),
          responseSerialize: (x) => get(path).method.responseSerialize(x),
          responseDeserialize: (b) => get(path).method.responseDeserialize(b),
        };
        const handler: Handler = (call) => get(path).handler(call);
        server.addService({ [METHOD]: method }, { [METHOD]: handler });
      }
    },
    get loaded() {
      return real !== null;
    },
  };
}
