export { compileSiteConfig, loadSiteConfig, SiteConfigError, HOOK_SCRIPT } from './site-config';
export type { SiteConfig } from './site-config';
export {
  installCommands,
  uninstallCommands,
  schedConfigLines,
  editSchedConfig,
  hookConfigJson,
  HOOKS,
} from './installer';
