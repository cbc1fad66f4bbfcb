import { RaftSnapshot, StoreSnapshot, type SnapshotMetadata } from '@shoal/proto';
import type { RaftStorage } from '@shoal/raft-storage';
import type { Membership } from './membership.js';

/** The data of a raft snapshot: the membership and the whole store, as one encoded RaftSnapshot. */
export function encodeRaftSnapshot(membership: Membership, store: StoreSnapshot): Buffer {
  return Buffer.from(RaftSnapshot.encode({ members: membership.list(), removedMembers: membership.removedIds(), store }).finish());
}

/**
 * Reads and decodes a stored snapshot. Its chunks are authenticated as they are read and the stream
 * throws if it is cut short, so nothing is decoded from a partial snapshot.
 */
export async function readRaftSnapshot(storage: RaftStorage, metadata: SnapshotMetadata): Promise<RaftSnapshot & { store: StoreSnapshot }> {
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.openSnapshot(metadata)) chunks.push(chunk);
  const snapshot = RaftSnapshot.decode(Buffer.concat(chunks));
  return { ...snapshot, store: snapshot.store ?? StoreSnapshot.create() };
}
