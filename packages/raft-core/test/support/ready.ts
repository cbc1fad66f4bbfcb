import { ConfChange, EntryType, type ConfState, type Entry } from '@shoal/proto';
import type { MemoryStorage, RawNode, Ready } from '../../src/index.js';

/** Step 1 of the Ready contract: snapshot, then entries, then hard state. */
export function persist(storage: MemoryStorage, ready: Ready): void {
  if (ready.snapshot !== undefined) storage.applySnapshot(ready.snapshot);
  storage.append(ready.entries);
  if (ready.hardState !== undefined) storage.setHardState(ready.hardState);
}

/**
 * Applies one committed entry's membership effect: for a CONF_CHANGE entry, calls applyConfChange and
 * returns the new membership; for any other entry returns undefined.
 */
export function applyMembership(node: RawNode, entry: Entry): ConfState | undefined {
  if (entry.type !== EntryType.CONF_CHANGE) return undefined;
  return node.applyConfChange(ConfChange.decode(entry.data));
}

/** Encodes a string as entry data. */
export function bytes(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}
