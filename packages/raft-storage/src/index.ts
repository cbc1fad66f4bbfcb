/**
 * The durable, encrypted storage under a raft member: a write-ahead log and chunk-streamed snapshots,
 * sealed with AES-256-GCM under data keys that a key-encryption key wraps, which with autolock is
 * derived from an unlock key never written to disk.
 */
export { RaftStorage, type OpenedRaftStorage, type RaftStorageOptions } from './raft-storage.js';
export type { RaftUpdate, RecoveredState, RecoveryNote } from './types.js';
export { MAX_SNAPSHOT_CHUNK_BYTES, type SnapshotReader } from './snapshot-store.js';
export { clusterUnlockKey, generateUnlockKey, MANAGER_UNLOCK_SUBSYSTEM, managerUnlockKeys, parseUnlockKey, UNLOCK_KEY_PREFIX } from './unlock-key.js';
export { INVALID_UNLOCK_KEY_MESSAGE, LOCKED_MESSAGE } from './key-ring.js';
