/**
 * The scheduler's service loop as a library (`@shoal/scheduler/control`), for simulations and
 * benchmarks that run it in-process over a `ClusterState`. Importing it starts nothing; the service
 * itself is `dist/main.js`, and the placement core alone is `@shoal/scheduler/core`.
 */
export { systemClock, type Clock } from './clock.js';
export { SchedulingLoop, type SchedulingLoopOptions } from './scheduling-loop.js';
