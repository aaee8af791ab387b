export {
  LOAD_OPTIONS,
  PROTO_ROOT,
  PROTO_FILES,
  asBuffer,
  decodeInt64AsNumbers,
  loadPackageDefinition,
  loadMagratheaApi,
  loadProtoRoot,
} from './proto';
export {
  STORED_STATES,
  REPORTED_ONLY_STATES,
  REPORTED_STATES,
  DOMAIN_CLASSES,
  DOMAIN_ACTIONS,
  REFUSAL_REASONS,
  REASON_METADATA_KEY,
  isReportedState,
  isDomainAction,
} from './states';
export type {
  StoredState,
  ReportedOnlyState,
  ReportedState,
  DomainClass,
  DomainActionName,
  RefusalReason,
} from './states';
export { parseAddress, grpcTarget, formatAddress, isLoopbackHost, sourceOf, AddressError } from './address';
export type { Address } from './address';
export type { NodeServiceClient } from './generated/magrathea/v1/NodeService';
export type { Node__Output as NodeMessage, Node as NodeInput } from './generated/magrathea/v1/Node';
export type { Domain__Output as DomainMessage, Domain as DomainInput } from './generated/magrathea/v1/Domain';
export type { Job as JobInput } from './generated/magrathea/v1/Job';
export type { JobRef as JobRefInput, JobRef__Output as JobRefMessage } from './generated/magrathea/v1/JobRef';
export type {
  NodeEvent__Output as NodeEventMessage,
  NodeEvent as NodeEventInput,
} from './generated/magrathea/v1/NodeEvent';
export type { Phase as PhaseInput } from './generated/magrathea/v1/Phase';
export type { Reset as ResetInput, Reset__Output as ResetMessage } from './generated/magrathea/v1/Reset';
export type {
  KeptOverlay as KeptOverlayInput,
  KeptOverlay__Output as KeptOverlayMessage,
} from './generated/magrathea/v1/KeptOverlay';
export type {
  StartJobResponse as StartJobResponseInput,
  StartJobResponse__Output as StartJobResponseMessage,
} from './generated/magrathea/v1/StartJobResponse';
export type {
  EndJobResponse as EndJobResponseInput,
  EndJobResponse__Output as EndJobResponseMessage,
} from './generated/magrathea/v1/EndJobResponse';
export type {
  DomainActionResponse as DomainActionResponseInput,
  DomainActionResponse__Output as DomainActionResponseMessage,
} from './generated/magrathea/v1/DomainActionResponse';
export type { NodeServiceHandlers } from './generated/magrathea/v1/NodeService';
export type { StartJobRequest__Output as StartJobRequestMessage } from './generated/magrathea/v1/StartJobRequest';
export type { EndJobRequest__Output as EndJobRequestMessage } from './generated/magrathea/v1/EndJobRequest';
export type { DomainActionRequest__Output as DomainActionRequestMessage } from './generated/magrathea/v1/DomainActionRequest';
export type { WatchNodeRequest__Output as WatchNodeRequestMessage } from './generated/magrathea/v1/WatchNodeRequest';
export { ConfigChecker } from './config-checker';
export type { ConfigObject } from './config-checker';
export type { ClusterServiceClient, ClusterServiceHandlers } from './generated/magrathea/v1/ClusterService';
export type { NodeView as NodeViewInput, NodeView__Output as NodeViewMessage } from './generated/magrathea/v1/NodeView';
export type {
  VnodeView as VnodeViewInput,
  VnodeView__Output as VnodeViewMessage,
} from './generated/magrathea/v1/VnodeView';
export type {
  ClusterEvent as ClusterEventInput,
  ClusterEvent__Output as ClusterEventMessage,
} from './generated/magrathea/v1/ClusterEvent';
export type {
  ListNodesResponse as ListNodesResponseInput,
  ListNodesResponse__Output as ListNodesResponseMessage,
} from './generated/magrathea/v1/ListNodesResponse';
export type {
  AdmitResponse as AdmitResponseInput,
  AdmitResponse__Output as AdmitResponseMessage,
} from './generated/magrathea/v1/AdmitResponse';
export type {
  CandidatesResponse as CandidatesResponseInput,
  CandidatesResponse__Output as CandidatesResponseMessage,
} from './generated/magrathea/v1/CandidatesResponse';
export type { RelayServiceClient, RelayServiceHandlers } from './generated/magrathea/v1/RelayService';
export type {
  RelayEvent as RelayEventInput,
  RelayEvent__Output as RelayEventMessage,
} from './generated/magrathea/v1/RelayEvent';
export type { WatchNodesRequest__Output as WatchNodesRequestMessage } from './generated/magrathea/v1/WatchNodesRequest';
export { parseYamlStrict } from './yaml';
export { StreamRegistry, StreamPump } from './streams';
export { ROLES, ROLE_METHODS, LOCAL_PRINCIPAL, PeerAuthenticator, FailureLimiter, commonName } from './peer-auth';
export type { FailureDelayOptions } from './peer-auth';
export type { Role, Principal, AuthResult, ClientBinding } from './peer-auth';
export {
  serverTlsCredentials,
  ClientChannels,
  clientChannel,
  verifiedPeerCertificate,
  readPem,
  readTlsFiles,
  readPemAsync,
  MAX_PEM_BYTES,
} from './tls';
export type { ClientChannel, TlsFiles } from './tls';
export { eligibility, DOMAIN_NAME, JOB_ID_TEXT, MAX_DOMAINS_PER_NODE } from './rules';
export type { DomainFacts, Eligibility, JobClass, MagratheaToken } from './rules';
export { closeWithGrace, closeHttpServer, shutdownGrpcServer, settleWithin, stopInOrder } from './shutdown';
export type { StopStep, StopLogger } from './shutdown';
export { createLogger, routeGrpcLogs, REDACTED_PATHS } from './logger';
export type { LoggerOptions } from './logger';
export { listenHttp, parseJsonObject, readLimitedBody, closeAfter, guardedHttpServer } from './http-edge';
export type { MetricsExposition, BodyErrors, GuardedHttpServer } from './http-edge';
export { waitForLogLine } from './log-lines';
export type { LogWaitOptions } from './log-lines';
export {
  LOG_LEVELS,
  UsageError,
  checkLogLevel,
  InputFileError,
  unreadableFiles,
  describeFsError,
  ListenError,
  toListenError,
  bound,
  listenAddress,
  packageVersion,
  SYSEXITS,
  startupExitCode,
  startupFailure,
  isStartupError,
  watchParent,
} from './startup';
export type { LogLevel, ListenProblem } from './startup';
export { readRegularFile, readRegularFileSync, FileReadError } from './file-read';
export type { FileContents, FileReadProblem, ReadFileOptions } from './file-read';
export { applyJobChange, jobListChange, JobLists } from './job-changes';
export type { JobListChange } from './job-changes';
export type {
  JobChange as JobChangeInput,
  JobChange__Output as JobChangeMessage,
} from './generated/magrathea/v1/JobChange';
export type { Job__Output as JobMessage } from './generated/magrathea/v1/Job';
export { ConnectionGuard } from './connection-guard';
export type { ConnectionLimits, GuardLogger } from './connection-guard';
export { FIRST_BYTES_MS, listenGrpcTcp, listenGrpcUnix, SocketInUseError, unixSocketAnswers } from './grpc-listen';
export type { GrpcListener } from './grpc-listen';
export type {
  CachedImage as CachedImageInput,
  CachedImage__Output as CachedImageMessage,
} from './generated/magrathea/v1/CachedImage';
export type {
  ListImagesResponse as ListImagesResponseInput,
  ListImagesResponse__Output as ListImagesResponseMessage,
} from './generated/magrathea/v1/ListImagesResponse';
export type {
  PullImageResponse as PullImageResponseInput,
  PullImageResponse__Output as PullImageResponseMessage,
} from './generated/magrathea/v1/PullImageResponse';
export type {
  RemoveImageResponse as RemoveImageResponseInput,
  RemoveImageResponse__Output as RemoveImageResponseMessage,
} from './generated/magrathea/v1/RemoveImageResponse';
export type {
  SetImageResponse as SetImageResponseInput,
  SetImageResponse__Output as SetImageResponseMessage,
} from './generated/magrathea/v1/SetImageResponse';
