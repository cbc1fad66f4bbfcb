import { encodeObject } from '@shoal/proto';
import type { Change } from '@shoal/store';

/** The store's limits on one transaction (swarmkit's `MaxChangesPerTransaction` and `MaxTransactionBytes`). */
export const MAX_CHANGES_PER_COMMIT = 200;
export const MAX_COMMIT_BYTES = 1_572_864;

function sizeOf(change: Change): number {
  return change.action === 'delete' ? 0 : encodeObject(change).length;
}

/** Splits `changes`, in order, into transactions within the store's limits on changes and bytes per transaction. */
export function batches(changes: readonly Change[]): Change[][] {
  const result: Change[][] = [];
  let batch: Change[] = [];
  let bytes = 0;
  for (const change of changes) {
    const size = sizeOf(change);
    if (batch.length > 0 && (batch.length === MAX_CHANGES_PER_COMMIT || bytes + size > MAX_COMMIT_BYTES)) {
      result.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(change);
    bytes += size;
  }
  if (batch.length > 0) result.push(batch);
  return result;
}
