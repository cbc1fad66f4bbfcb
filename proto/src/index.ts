/**
 * Shoal's wire and domain types: the generated messages, enums, and gRPC service definitions of
 * package `shoal.v1` (see the .proto files under proto/shoal/v1), plus the helpers that belong with
 * them: engine-API task-state names, object IDs, task names and the table of object kinds.
 */
export * from './gen/shoal/v1/types.js';
export * from './gen/shoal/v1/specs.js';
export * from './gen/shoal/v1/objects.js';
export * from './gen/shoal/v1/store.js';
export * from './gen/shoal/v1/raft.js';
export * from './gen/shoal/v1/dispatcher.js';
export * from './gen/shoal/v1/ca.js';
export { Duration } from './gen/google/protobuf/duration.js';
export { Any } from './gen/google/protobuf/any.js';
export * from './task-state.js';
export * from './identity.js';
export * from './naming.js';
export * from './kinds.js';
export * from './service-revisions.js';
