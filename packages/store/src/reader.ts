import { errors } from '@shoal/errors';
import { objectKindNames, type ObjectKindName, type ObjectTypes } from '@shoal/proto';
import { all, targetFor, type Selector } from './selectors.js';
import { selectObjects, type Table, type Tables } from './table.js';

/**
 * A consistent view of the store. Objects it returns are deeply frozen: build a changed copy
 * (`{ ...task, desiredState }`) to write one back.
 */
export interface ReadTx {
  /** The version the view reflects: every transaction committed at or before it, none after. */
  readonly version: bigint;
  /** The object of `kind` with this id, if there is one. */
  get<K extends ObjectKindName>(kind: K, id: string): ObjectTypes[K] | undefined;
  /**
   * The objects of `kind` the selector selects, in no particular order. Throws INVALID_ARGUMENT if
   * the selector does not apply to the kind.
   */
  find<K extends ObjectKindName>(kind: K, selector: Selector): ObjectTypes[K][];
  /** Every object of `kind`, in no particular order. */
  list<K extends ObjectKindName>(kind: K): ObjectTypes[K][];
}

const kinds = new Set<string>(objectKindNames);

/** Throws INVALID_ARGUMENT unless `kind` names a kind of stored object. */
export function requireKind(kind: string): asserts kind is ObjectKindName {
  if (!kinds.has(kind)) throw errors.invalidArgument(`unknown object kind ${JSON.stringify(kind)}`, { kind });
}

/** Reads from whatever tables `tables()` returns at the time of each call. */
export abstract class TablesReader implements ReadTx {
  abstract get version(): bigint;

  protected abstract tables(): Tables;

  get<K extends ObjectKindName>(kind: K, id: string): ObjectTypes[K] | undefined {
    return this.table(kind).objects.get(id) as ObjectTypes[K] | undefined;
  }

  find<K extends ObjectKindName>(kind: K, selector: Selector): ObjectTypes[K][] {
    const target = targetFor(kind, selector);
    return selectObjects(this.table(kind), target) as ObjectTypes[K][];
  }

  list<K extends ObjectKindName>(kind: K): ObjectTypes[K][] {
    return this.find(kind, all);
  }

  protected table(kind: ObjectKindName): Table {
    requireKind(kind);
    return this.tables()[kind];
  }
}

/** The state of the store at one version. Immutable: holding it is holding a snapshot. */
export interface StoreState {
  readonly version: bigint;
  readonly tables: Tables;
}

/** A read transaction over one {@link StoreState}. */
export class SnapshotReader extends TablesReader {
  constructor(private readonly state: StoreState) {
    super();
  }

  get version(): bigint {
    return this.state.version;
  }

  protected tables(): Tables {
    return this.state.tables;
  }
}
