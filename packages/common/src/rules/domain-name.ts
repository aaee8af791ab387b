/** Valid domain names: what PBS accepts as a vnode name part, and safe in paths (pure, no I/O). */
export const DOMAIN_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;
