export * from './domain';
export { Daemon } from './daemon';
export type { DaemonDeps, DaemonState, Listening } from './daemon';
export { DomainManager, systemClock } from './engine/domain-manager';
export type { Clock, ManagedDomain, Outcome, CommandInput } from './engine/domain-manager';
export { DomainCommands } from './engine/commands';
export type { CommandScope, JobStarted, JobEnded, ActionDone } from './engine/commands';
export { FileJournal } from './journal/file-journal';
export type { Journal, JournalRecord, Recovered } from './journal/journal';
export { SimulatedDriver } from './hypervisor/simulated/simulated-driver';
export type {
  HypervisorDriver,
  DriverCapabilities,
  Observation,
  ReleaseMeasurement,
} from './hypervisor/hypervisor-driver';
export { loadConfig, compileConfig, parseConfigText, DEFAULT_CONFIG_YAML } from './config/load-config';
export type { DaemonConfig } from './config/load-config';
export * from './errors';
