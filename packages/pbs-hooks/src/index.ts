export { compileSiteConfig, loadSiteConfig, SiteConfigError, HOOK_SCRIPT } from './site-config';
export type { SiteConfig, ImageSpec } from './site-config';
export {
  planInstall,
  planUninstall,
  hookSpecs,
  schedConfigLines,
  editSchedConfig,
  unEditSchedConfig,
  hookConfigJson,
  HOOKS,
  RESOURCES,
  NOTHING_OBSERVED,
} from './installer';
export type { Observed, Plan, Step, PlanProblem } from './installer';
export { createQmgr, listObjects, parseQmgrList, qmgrErrorText, QmgrUnavailableError } from './qmgr';
export type { QmgrResult, RunQmgr, QmgrOptions, QmgrObject } from './qmgr';
export { install, uninstall, observe } from './deploy';
export type { DeployDeps, DeployOptions, DeployReport, StepOutcome, StepStatus } from './deploy';
export { checkHooksPushed, checkSchedConfig, checkServer, checkVnodes, parsePbsnodesJson } from './verify';
export type { Check, CheckStatus, FilterVnode, PbsVnode } from './verify';
export { recreateCommands, recreateVnode, refuseRecreate } from './recreate';
export type { RecreateResult, VnodeFacts } from './recreate';
