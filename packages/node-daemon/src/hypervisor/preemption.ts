/**
 * How a domain is preempted: throttle (keeps running, minimal CPU and memory), pause, save, or
 * reclaim (jobs stopped, caches dropped, guest swap on, balloon inflated: the memory really
 * comes back to the host while the guest, and its PBS mom, keep running).
 */
export const PREEMPTION_MODES = ['throttle', 'pause', 'save', 'reclaim'] as const;
export type PreemptionMode = (typeof PREEMPTION_MODES)[number];
