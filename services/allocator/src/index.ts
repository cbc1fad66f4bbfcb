/**
 * The allocator as a library (`@shoal/allocator/control`), for simulations and benchmarks that run
 * it in-process over a `ClusterState`. Importing it starts nothing; the service itself is `dist/main.js`.
 */
export { Allocator, PENDING_MESSAGE, type AllocatorOptions } from './allocator.js';
