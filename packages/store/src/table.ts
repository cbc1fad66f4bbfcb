import type { AnyObject, ObjectKindName } from '@shoal/proto';
import { objectKindNames } from '@shoal/proto';
import { Map as ImmutableMap, Set as ImmutableSet } from 'immutable';
import { indexesOf, type IndexName } from './schema.js';
import type { SelectorTarget } from './selectors.js';

/**
 * The ids filed under one index key. A lone id is kept as a plain string: most keys (names, slots,
 * a service's few networks) hold one, and a one-element set costs some 200 bytes more.
 */
type IdsAtKey = string | ImmutableSet<string>;

/** One index: the ids filed under each key. */
export type Index = ImmutableMap<string, IdsAtKey>;

/**
 * One kind's objects by id, and its secondary indexes. Everything is a persistent map, so a write
 * costs O(log n) and returns a new Table while the old one stays valid: holding on to a Table (or
 * to {@link Tables}) is a consistent snapshot that costs nothing to take.
 */
export interface Table {
  readonly objects: ImmutableMap<string, AnyObject>;
  readonly indexes: { readonly [I in IndexName]?: Index };
}

/** Every kind's table. */
export type Tables = { readonly [K in ObjectKindName]: Table };

function emptyTable(kind: ObjectKindName): Table {
  const indexes: { [I in IndexName]?: Index } = {};
  for (const name of indexesOf(kind).keys()) indexes[name] = ImmutableMap();
  return { objects: ImmutableMap(), indexes };
}

/** Tables with no objects. */
export function emptyTables(): Tables {
  return Object.fromEntries(objectKindNames.map((kind) => [kind, emptyTable(kind)])) as unknown as Tables;
}

function withId(index: Index, key: string, id: string): Index {
  const ids = index.get(key);
  if (ids === undefined) return index.set(key, id);
  if (typeof ids !== 'string') return index.set(key, ids.add(id));
  return ids === id ? index : index.set(key, ImmutableSet([ids, id]));
}

function withoutId(index: Index, key: string, id: string): Index {
  const ids = index.get(key);
  if (ids === undefined) return index;
  if (typeof ids === 'string') return ids === id ? index.delete(key) : index;
  const rest = ids.delete(id);
  return index.set(key, rest.size === 1 ? (rest.first() as string) : rest);
}

/** Calls `visit` with each id in `ids`. (Immutable's forEach, unlike for-of, allocates nothing per id.) */
function forEachId(ids: IdsAtKey | undefined, visit: (id: string) => void): void {
  if (typeof ids === 'string') visit(ids);
  else ids?.forEach((id) => visit(id));
}

/** The keys of one index that more than one object is filed under, with how many objects each. */
export function sharedKeys(table: Table, index: IndexName): [key: string, count: number][] {
  const shared: [string, number][] = [];
  table.indexes[index]?.forEach((ids, key) => void (typeof ids !== 'string' && shared.push([key, ids.size])));
  return shared;
}

/**
 * Returns `table` with `previous` replaced by `next`, keeping every index in step. Pass no
 * `previous` to add an object and no `next` to remove one; when both are given they must have the
 * same id. Only the index keys that differ between the two are touched, so an update that leaves
 * indexed fields alone costs no index writes.
 */
export function replaceObject(
  kind: ObjectKindName,
  table: Table,
  previous: AnyObject | undefined,
  next: AnyObject | undefined,
): Table {
  const id = next?.id ?? previous?.id;
  if (id === undefined) return table;
  const indexes = { ...table.indexes };
  for (const [name, keysOf] of indexesOf(kind)) {
    const oldKeys = new Set(previous === undefined ? [] : keysOf(previous));
    const newKeys = new Set(next === undefined ? [] : keysOf(next));
    let index = indexes[name] ?? ImmutableMap();
    for (const key of oldKeys) if (!newKeys.has(key)) index = withoutId(index, key, id);
    for (const key of newKeys) if (!oldKeys.has(key)) index = withId(index, key, id);
    indexes[name] = index;
  }
  return {
    objects: next === undefined ? table.objects.delete(id) : table.objects.set(id, next),
    indexes,
  };
}

/**
 * Returns `table` with `object` in place of the stored object with the same id. Only for a new
 * copy that differs in fields no index reads (the store uses it to stamp `meta` at commit).
 */
export function replaceUnindexed(table: Table, object: AnyObject): Table {
  return { objects: table.objects.set(object.id, object), indexes: table.indexes };
}

/** The ids filed under `key` in one index of `table` (none if the kind has no such index). */
export function idsWithKey(table: Table, index: IndexName, key: string): string[] {
  const ids: string[] = [];
  forEachId(table.indexes[index]?.get(key), (id) => ids.push(id));
  return ids;
}

/** Calls `visit` with each id that the selector target chooses; an id may come more than once. */
function forEachMatchingId(table: Table, index: 'id' | IndexName, key: string, prefix: boolean, visit: (id: string) => void): void {
  if (index === 'id') {
    if (!prefix) visit(key);
    else table.objects.forEach((_, id) => void (id.startsWith(key) && visit(id)));
  } else if (!prefix) {
    forEachId(table.indexes[index]?.get(key), visit);
  } else {
    // Prefix lookups walk the index's keys: they serve people typing IDs and names at a CLI, not
    // control loops, so they do not get a sorted structure of their own.
    table.indexes[index]?.forEach((ids, indexKey) => void (indexKey.startsWith(key) && forEachId(ids, visit)));
  }
}

/** The objects of `table` that `target` selects, in no particular order. */
export function selectObjects(table: Table, { index, key, prefix }: SelectorTarget): AnyObject[] {
  if (index === 'all') return table.objects.toList().toArray();
  const found = new Map<string, AnyObject>();
  forEachMatchingId(table, index, key, prefix, (id) => {
    const object = table.objects.get(id);
    if (object !== undefined) found.set(id, object);
  });
  return [...found.values()];
}
