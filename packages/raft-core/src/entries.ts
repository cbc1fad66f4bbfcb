import { ConfState, type Entry, type HardState, type Snapshot } from '@shoal/proto';

/**
 * What an entry costs on the wire besides its data: the type, term and index fields and the data's
 * tag and length, each at its largest varint encoding (2 + 11 + 11 + 6). Counting the maximum keeps
 * a message built to maxSizePerMsg under the limit whatever the numbers are.
 */
const ENTRY_OVERHEAD_BYTES = 30;

/** The bytes `entry` adds to a message, as the size limits count them. */
export function entrySize(entry: Entry): number {
  return entry.data.length + ENTRY_OVERHEAD_BYTES;
}

/**
 * `list[from]`, `list[from + 1]`, … up to (not including) `list[to]`, as many as fit in `maxBytes`, but
 * at least one when `atLeastOne` (so that an entry larger than the limit can still be replicated). It
 * stops at the limit instead of slicing first, so its cost follows what it returns, not the log length.
 */
export function entriesWithin(list: readonly Entry[], from: number, to: number, maxBytes: number, atLeastOne = true): Entry[] {
  const taken: Entry[] = [];
  let size = 0;
  for (let position = from; position < to; position++) {
    const entry = list[position] as Entry;
    size += entrySize(entry);
    if (size > maxBytes && !(atLeastOne && taken.length === 0)) break;
    taken.push(entry);
  }
  return taken;
}

/** The index of the last entry the snapshot covers; 0 for the empty snapshot. */
export function snapshotIndex(snapshot: Snapshot): bigint {
  return snapshot.metadata?.index ?? 0n;
}

/** The term of the last entry the snapshot covers; 0 for the empty snapshot. */
export function snapshotTerm(snapshot: Snapshot): bigint {
  return snapshot.metadata?.term ?? 0n;
}

/** The membership a snapshot records (empty for the empty snapshot). */
export function snapshotConfState(snapshot: Snapshot): ConfState {
  return snapshot.metadata?.confState ?? ConfState.create();
}

export function hardStatesEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Orders bigints ascending, for `Array.prototype.sort`. */
export function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
