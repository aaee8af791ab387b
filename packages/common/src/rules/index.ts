/**
 * Pure rules both sides of the system apply (`@magrathea/common/rules`): the node daemon's
 * hook API and the filter's core. No I/O here (lint-enforced): the pure cores import this
 * subpath instead of the package root, which loads the gRPC contract.
 */
export { eligibility } from './eligibility';
export type { DomainFacts, Eligibility, JobClass, MagratheaToken } from './eligibility';
export { DOMAIN_NAME, JOB_ID_TEXT, MAX_DOMAINS_PER_NODE } from './domain-name';
