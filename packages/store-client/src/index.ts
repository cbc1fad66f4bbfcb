/**
 * The typed client of the Store API that services/raft serves, and the wire conversions client and
 * server share. Other manager services read, write and watch the replicated store through it.
 */
export {
  StoreApiClient,
  createStoreClient,
  type CommitInput,
  type LeaseHolding,
  type ReadConsistency,
  type ReadOptions,
  type RemoteWatchFilter,
  type RemoteWatchOptions,
  type StoreApiClientOptions,
} from './client.js';
export {
  actionMaskOf,
  actionsOfMask,
  durationOfMs,
  fromWatchMessage,
  joinSnapshotParts,
  msOfDuration,
  SNAPSHOT_PART_BYTES,
  snapshotParts,
  toWatchMessage,
} from './wire.js';
export { applyCommitInput, LocalClusterState, type ClusterState } from './cluster-state.js';
export { holdLease, type HoldLeaseOptions, type LeaseApi, type Leadership } from './lease.js';
export { ClusterStateLeases, isLeaseHeld } from './cluster-state-leases.js';
export { StoreMirror, type CacheState as MirrorState } from './mirror.js';
export { readPemSetting, resolveStoreAccess, storeAccessSettings, withStoreAccess, type StoreAccess, type WithStoreAccess } from './settings.js';
