export { eligibility } from './eligibility';
export type { DomainFacts, Eligibility, JobClass, MagratheaToken } from './eligibility';
export { KNOWN_STATES, domainEligibility, vnodeValues, opensCapacity, admit, candidates } from './publication';
export type { DomainSnapshot, NodeSnapshot, VnodeValues, Placed, Candidate } from './publication';
