/**
 * Shoal's in-memory object store (swarmkit's `MemoryStore`): typed tables with indexes, consistent
 * read snapshots, conditional write transactions, and watches of committed changes. The raft-store
 * replicates it; every component test uses it directly.
 */
export type { WriteTx } from './draft.js';
export { MAX_CHANGES_PER_TRANSACTION, MAX_TRANSACTION_BYTES, MemoryStore, type Batch, type MemoryStoreOptions, type ViewAndWatch } from './memory-store.js';
export type { ReadTx } from './reader.js';
export {
  all,
  byDesiredState,
  byId,
  byIdPrefix,
  byLabel,
  byName,
  byNamePrefix,
  byNodeId,
  byReferencedConfigId,
  byReferencedNetworkId,
  byReferencedSecretId,
  byRole,
  bySlot,
  byServiceId,
  byTaskState,
  type Selector,
} from './selectors.js';
export { versionOf, type Change, type Precondition, type StoreAction, type Transaction } from './transaction.js';
export type { Commit, StoreEvent, Watch, WatchFilter, WatchOptions } from './watch.js';
export { changeBytes, splitIntoTransactions } from './split.js';
export { fromStoreTransaction, toStoreTransaction } from './wire.js';
