/**
 * The Store API: the gRPC service through which every other manager service reads, writes and
 * watches the replicated store and takes leases, and its supervisor component. The typed client is
 * `@shoal/store-client`.
 * It talks to the replica only through {@link Consensus}.
 */
export type { Consensus } from './consensus.js';
export { LocalConsensus } from './local-consensus.js';
export {
  createStoreService,
  defaultStoreApiLimits,
  type NudgePublisher,
  type StoreApiLimits,
  type StoreServiceDeps,
} from './service.js';
export { StoreApiComponent, storeApiComponent, type StoreApiComponentOptions } from './component.js';
