import { ConfChange, ConfChangeType, EntryType, RaftMember, type Entry, type RaftSnapshot } from '@shoal/proto';

/**
 * Who is in the raft cluster and where to reach them: raft IDs, node IDs and addresses, plus the IDs the
 * cluster removed, which are never reused and whose messages are refused. It is replicated state:
 * every replica applies the same conf changes in log order (each carries the member it adds as its
 * context) and snapshots carry it, so every replica agrees on it. Which members vote is raft-core's
 * business (its ConfState); this only knows who they are.
 */
export class Membership {
  readonly #members = new Map<bigint, RaftMember>();
  readonly #removed = new Set<bigint>();

  /** The membership a snapshot recorded. */
  static fromSnapshot(snapshot: Pick<RaftSnapshot, 'members' | 'removedMembers'>): Membership {
    const membership = new Membership();
    for (const member of snapshot.members) membership.#members.set(member.raftId, withoutStatus(member));
    for (const raftId of snapshot.removedMembers) membership.#removed.add(raftId);
    return membership;
  }

  /** Applies a committed conf change. Adding a member again (a learner promoted to voter) refreshes its record. */
  apply(change: ConfChange): void {
    if (change.type === ConfChangeType.REMOVE_NODE) {
      this.#members.delete(change.nodeId);
      this.#removed.add(change.nodeId);
      return;
    }
    const member = change.context.length > 0 ? RaftMember.decode(change.context) : this.#members.get(change.nodeId);
    if (member !== undefined) this.#members.set(change.nodeId, withoutStatus({ ...member, raftId: change.nodeId }));
  }

  get(raftId: bigint): RaftMember | undefined {
    return this.#members.get(raftId);
  }

  /** The current member with this node ID, if any (a node has at most one raft ID at a time). */
  byNodeId(nodeId: string): RaftMember | undefined {
    return [...this.#members.values()].find((member) => member.nodeId === nodeId);
  }

  isRemoved(raftId: bigint): boolean {
    return this.#removed.has(raftId);
  }

  /** True if `raftId` was ever given out here: a new member's ID must not be. */
  isTaken(raftId: bigint): boolean {
    return this.#members.has(raftId) || this.#removed.has(raftId);
  }

  list(): RaftMember[] {
    return [...this.#members.values()];
  }

  removedIds(): bigint[] {
    return [...this.#removed];
  }

  /** A copy that later changes to this one do not affect. */
  clone(): Membership {
    return Membership.fromSnapshot({ members: this.list(), removedMembers: this.removedIds() });
  }
}

/** The conf change that adds `member` (as a learner, or promoting it to voter) or updates its address; it carries the member as its context. */
export function memberChange(id: bigint, type: ConfChangeType, member: RaftMember): ConfChange {
  return { id, type, nodeId: member.raftId, context: Buffer.from(RaftMember.encode(withoutStatus(member)).finish()) };
}

/** The conf change that removes the member `raftId` for good. */
export function removalChange(id: bigint, raftId: bigint): ConfChange {
  return { id, type: ConfChangeType.REMOVE_NODE, nodeId: raftId, context: Buffer.alloc(0) };
}

/**
 * The raft ID this node has in the cluster, from the membership of its latest snapshot and the conf
 * changes its log holds after it (a joiner learns of its own addition from its log). Undefined if the
 * node is not a member: it was removed, or never finished joining.
 */
export function findOwnRaftId(snapshotMembership: Membership, entries: readonly Entry[], nodeId: string): bigint | undefined {
  const replayed = snapshotMembership.clone();
  for (const entry of entries) if (entry.type === EntryType.CONF_CHANGE) replayed.apply(ConfChange.decode(entry.data));
  return replayed.byNodeId(nodeId)?.raftId;
}

/** Status (leader, reachability) is computed when members are listed, never stored. */
function withoutStatus(member: RaftMember): RaftMember {
  return { raftId: member.raftId, nodeId: member.nodeId, addr: member.addr, status: undefined };
}
