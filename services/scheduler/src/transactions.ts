import { encodeObject, type Node, type Task } from '@shoal/proto';
import { MAX_CHANGES_PER_TRANSACTION, MAX_TRANSACTION_BYTES, type Change } from '@shoal/store';

/** A task the scheduler writes back: placed on a node, or given a new reason why it cannot be. */
export interface TaskWrite {
  /** The task as it is to be stored; its `meta.version` is the version it was read at. */
  readonly task: Task;
  /** Set for a placement: the node whose placement generation the same transaction bumps. */
  readonly nodeId?: string;
}

/** One transaction's worth of task writes, with the node bumps they need. */
export interface PlacementTransaction {
  readonly writes: readonly TaskWrite[];
  readonly changes: readonly Change[];
  /** The nodes as this transaction writes them (generation bumped, `meta.version` as read). */
  readonly bumpedNodes: readonly Node[];
}

/**
 * Takes as many of `writes`, from `start` on, as one transaction can carry within the store's limits
 * on changes and bytes, adding one bump of `placementGeneration` for each node they place tasks on.
 * `nodeAsKnown` gives the node as the caller last knew it, so that call it after the previous
 * transaction landed: each bump must expect the version the previous one left.
 *
 * The bump is what keeps concurrent schedulers from over-committing a node: each decides from its
 * own view of the node's tasks, and the node's version check makes the later of two transactions
 * that place tasks on the same node fail.
 */
export function nextTransaction(writes: readonly TaskWrite[], start: number, nodeAsKnown: (nodeId: string) => Node): PlacementTransaction {
  const taken: TaskWrite[] = [];
  const bumps = new Map<string, Node>();
  let changeCount = 0;
  let byteCount = 0;
  for (const write of writes.slice(start)) {
    const { nodeId } = write;
    const bump = nodeId === undefined || bumps.has(nodeId) ? undefined : bumped(nodeAsKnown(nodeId));
    const changes = bump === undefined ? 1 : 2;
    const bytes = encodeObject({ kind: 'task', object: write.task }).length + (bump === undefined ? 0 : encodeObject({ kind: 'node', object: bump }).length);
    const full = changeCount + changes > MAX_CHANGES_PER_TRANSACTION || byteCount + bytes > MAX_TRANSACTION_BYTES;
    // A write too large for any transaction still goes alone, for the store to refuse with its reason.
    if (full && taken.length > 0) break;
    taken.push(write);
    if (bump !== undefined) bumps.set(bump.id, bump);
    changeCount += changes;
    byteCount += bytes;
  }
  const bumpedNodes = [...bumps.values()];
  return {
    writes: taken,
    changes: [
      ...taken.map((write): Change => ({ action: 'update', kind: 'task', object: write.task })),
      ...bumpedNodes.map((node): Change => ({ action: 'update', kind: 'node', object: node })),
    ],
    bumpedNodes,
  };
}

function bumped(node: Node): Node {
  return { ...node, placementGeneration: node.placementGeneration + 1n };
}
