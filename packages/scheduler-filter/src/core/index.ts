export { eligibility } from './eligibility';
export type { DomainFacts, Eligibility, JobClass, MagratheaToken } from './eligibility';
