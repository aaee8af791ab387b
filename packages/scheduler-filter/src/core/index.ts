/** The eligibility rule lives in @magrathea/common (the node daemon's hook API applies it too). */
export { eligibility } from '@magrathea/common/rules';
export type { DomainFacts, Eligibility, JobClass, MagratheaToken } from '@magrathea/common/rules';
export { KNOWN_STATES, domainEligibility, vnodeValues, opensCapacity, admit, candidates } from './publication';
export type { DomainSnapshot, NodeSnapshot, VnodeValues, Placed, Candidate } from './publication';
export { planWakes, wakeable } from './wake';
export type { QueuedJob, Wake, WakeDomain } from './wake';
