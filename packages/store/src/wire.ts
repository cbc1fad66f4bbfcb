import { errors } from '@shoal/errors';
import {
  ChangeAction,
  fromStoreObject,
  ObjectKind,
  objectKindByName,
  objectKindName,
  toStoreObject,
  type Change as WireChange,
  type Precondition as WirePrecondition,
  type StoreTransaction,
} from '@shoal/proto';
import type { Change, Precondition, Transaction } from './transaction.js';

function toWireChange(change: Change): WireChange {
  if (change.action === 'delete') {
    const version = change.version === undefined ? undefined : { index: change.version };
    return {
      action: ChangeAction.DELETE,
      object: undefined,
      target: { kind: objectKindByName[change.kind], id: change.id, version },
    };
  }
  return {
    action: change.action === 'create' ? ChangeAction.CREATE : ChangeAction.UPDATE,
    object: toStoreObject(change.kind, change.object),
    target: undefined,
  };
}

function toWirePrecondition(precondition: Precondition): WirePrecondition {
  if ('version' in precondition) {
    return { kind: objectKindByName[precondition.kind], id: precondition.id, version: { index: precondition.version } };
  }
  return { kind: ObjectKind.LEASE, id: precondition.id, leaseEpoch: precondition.leaseEpoch };
}

/** The raft log entry for `transaction` (proto `StoreTransaction`), tagged with the proposer's `requestId`. */
export function toStoreTransaction(transaction: Transaction, requestId: bigint): StoreTransaction {
  return {
    requestId,
    changes: transaction.changes.map(toWireChange),
    preconditions: transaction.preconditions.map(toWirePrecondition),
    proposedAt: transaction.proposedAt,
  };
}

function fromWireChange(change: WireChange): Change {
  switch (change.action) {
    case ChangeAction.CREATE:
    case ChangeAction.UPDATE: {
      if (change.object === undefined) throw errors.invalidArgument('a create or update change carries no object');
      const { kind, object } = fromStoreObject(change.object);
      return { action: change.action === ChangeAction.CREATE ? 'create' : 'update', kind, object } as Change;
    }
    case ChangeAction.DELETE: {
      if (change.target === undefined) throw errors.invalidArgument('a delete change names no target');
      const { kind, id, version } = change.target;
      return { action: 'delete', kind: objectKindName(kind), id, version: version?.index };
    }
    default:
      throw errors.invalidArgument(`unknown change action ${change.action}`, { action: change.action });
  }
}

function fromWirePrecondition(precondition: WirePrecondition): Precondition {
  const kind = objectKindName(precondition.kind);
  const { id, version, leaseEpoch } = precondition;
  if (version !== undefined) return { kind, id, version: version.index };
  if (leaseEpoch === undefined) throw errors.invalidArgument(`precondition on ${kind} ${id} expects nothing`, { kind, id });
  if (kind !== 'lease') throw errors.invalidArgument(`lease epoch precondition on ${kind} ${id}, which is not a lease`, { kind, id });
  return { kind, id, leaseEpoch };
}

/**
 * The {@link Transaction} a raft log entry carries. Throws INVALID_ARGUMENT if the entry is
 * malformed (a change without its object, an unknown kind or action, no proposal time).
 */
export function fromStoreTransaction(entry: StoreTransaction): Transaction {
  if (entry.proposedAt === undefined) throw errors.invalidArgument('store transaction has no proposal time');
  return {
    changes: entry.changes.map(fromWireChange),
    preconditions: entry.preconditions.map(fromWirePrecondition),
    proposedAt: entry.proposedAt,
  };
}
