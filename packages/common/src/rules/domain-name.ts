/** Valid domain names: what PBS accepts as a vnode name part, and safe in paths (pure, no I/O). */
export const DOMAIN_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;

/** Most domains a node may have (the daemon's config refuses more; the filter ignores more). */
export const MAX_DOMAINS_PER_NODE = 64;

/** PBS job ids as the daemon accepts them: printable ASCII without spaces, at most 255 characters. */
export const JOB_ID_TEXT = /^[\x21-\x7e]{1,255}$/;
