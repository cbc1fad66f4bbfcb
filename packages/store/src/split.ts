import { encodeObject } from '@shoal/proto';
import { MAX_CHANGES_PER_TRANSACTION, MAX_TRANSACTION_BYTES } from './memory-store.js';
import type { Change } from './transaction.js';

/** The encoded size a change counts for against {@link MAX_TRANSACTION_BYTES} (a delete carries no object). */
export function changeBytes(change: Change): number {
  return change.action === 'delete' ? 0 : encodeObject(change).length;
}

/**
 * Splits `changes`, in order, into transactions within the default limits on changes and bytes per
 * transaction, for a writer whose changes need not be atomic together.
 */
export function splitIntoTransactions(changes: readonly Change[], maxBytes = MAX_TRANSACTION_BYTES): Change[][] {
  const result: Change[][] = [];
  let batch: Change[] = [];
  let bytes = 0;
  for (const change of changes) {
    const size = changeBytes(change);
    if (batch.length > 0 && (batch.length === MAX_CHANGES_PER_TRANSACTION || bytes + size > maxBytes)) {
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
