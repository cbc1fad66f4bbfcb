/**
 * The raft replica: consensus (raft-core driven by real time), durable encrypted storage, the peer
 * transport, membership and autolock, behind the Store API's `Consensus` interface, and the one gRPC
 * server a manager exposes.
 */
export { RaftReplica, type RaftReplicaOptions, type ReplicaState, type ReplicaStatus } from './replica.js';
export { ManagerServerComponent, type ManagerServerOptions } from './server.js';
export { NO_LEADER_MESSAGE } from './refusals.js';
export { MANAGER_UNLOCK_SUBSYSTEM } from '@shoal/raft-storage';
