/**
 * Shoal's Raft consensus core: a pure state machine in the shape of etcd's raft library. The caller
 * owns the clock, the disk and the network; it drives a {@link RawNode} with ticks, peer messages and
 * proposals, and gets back Readies holding state to persist, messages to send and entries to apply.
 * Messages, entries and hard state are the `@shoal/proto` types, so a transport sends them unchanged.
 */
export { type RaftConfig, type RandomSource } from './config.js';
export { NO_MEMBER, type LogPosition, type RaftRole, type ReadState } from './raft.js';
export type { ReplicationState } from './progress.js';
export {
  RawNode,
  type MemberProgress,
  type RaftStatus,
  type Ready,
  type SnapshotOutcome,
  type SoftState,
} from './raw-node.js';
export { MemoryStorage, bootstrapState, type InitialState, type Storage } from './storage.js';
