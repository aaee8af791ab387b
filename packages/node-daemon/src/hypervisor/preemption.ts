/** How a domain is preempted: throttle (keeps running, minimal CPU and memory), pause, or save. */
export const PREEMPTION_MODES = ['throttle', 'pause', 'save'] as const;
export type PreemptionMode = (typeof PREEMPTION_MODES)[number];
