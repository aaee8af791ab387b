export { transition, initialNodeState, recomputed, holdsMachine, isIdle, isDown } from './transition';
export { reportedState, preemptedCpuSeconds, preemptedCpuSecondsTotal, jobPreemptedMs } from './report';
export { checkInvariants } from './invariants';
export { planDriverOps, postureOf, inverseOf } from './postures';
export type { Posture, DriverOp, DriverOpKind } from './postures';
export type * from './types';
export * from './flaps';
