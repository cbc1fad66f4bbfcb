import { errors } from '@shoal/errors';
import { NodeRole, TaskState, type AnyObject, type ObjectKindName } from '@shoal/proto';
import { indexesOf, labelKey, labelValueKey, slotKey, type IndexName } from './schema.js';

/** Where a selector looks: the id, one secondary index, or every object. */
export interface SelectorTarget {
  readonly index: 'id' | IndexName | 'all';
  readonly key: string;
  /** Select objects with a key that starts with `key`, rather than equals it. */
  readonly prefix: boolean;
}

/**
 * The property a selector keeps its target under. The package entry point does not export it, so
 * code outside the package cannot build a selector except through the constructors below, as
 * swarmkit's `By` is sealed by a private method.
 */
export const selectorTarget: unique symbol = Symbol('shoal.store.selector');

/** Chooses objects for `find` and for watch filters. Build one with `byId`, `byServiceId`, … or `all`. */
export interface Selector {
  readonly [selectorTarget]: SelectorTarget;
  /** The call that made the selector, e.g. `byServiceId("3xk")`; error messages quote it. */
  readonly description: string;
}

function selector(description: string, index: SelectorTarget['index'], key: string, prefix = false): Selector {
  return Object.freeze({ [selectorTarget]: Object.freeze({ index, key, prefix }), description });
}

const quote = JSON.stringify;

/** Selects the object with this id (any kind). */
export function byId(id: string): Selector {
  return selector(`byId(${quote(id)})`, 'id', id);
}

/** Selects objects whose id starts with `prefix` (any kind). Scans every id of the kind. */
export function byIdPrefix(prefix: string): Selector {
  return selector(`byIdPrefix(${quote(prefix)})`, 'id', prefix, true);
}

/**
 * Selects objects with this name, ignoring case. The name is the spec's annotations name, a node's
 * hostname, a lease's name, or a task's `taskName`.
 */
export function byName(name: string): Selector {
  return selector(`byName(${quote(name)})`, 'name', name.toLowerCase());
}

/** Selects objects whose name starts with `prefix`, ignoring case. Scans every name of the kind. */
export function byNamePrefix(prefix: string): Selector {
  return selector(`byNamePrefix(${quote(prefix)})`, 'name', prefix.toLowerCase(), true);
}

/** Selects the tasks of a service. */
export function byServiceId(serviceId: string): Selector {
  return selector(`byServiceId(${quote(serviceId)})`, 'serviceId', serviceId);
}

/** Selects the tasks assigned to a node; `byNodeId('')` selects the unassigned ones. */
export function byNodeId(nodeId: string): Selector {
  return selector(`byNodeId(${quote(nodeId)})`, 'nodeId', nodeId);
}

/** Selects the tasks (current and historic) of one slot of a replicated service. */
export function bySlot(serviceId: string, slot: bigint): Selector {
  return selector(`bySlot(${quote(serviceId)}, ${slot})`, 'slot', slotKey(serviceId, slot));
}

/** Selects tasks by the state the orchestrator wants them in. */
export function byDesiredState(state: TaskState): Selector {
  return selector(`byDesiredState(${TaskState[state] ?? state})`, 'desiredState', String(state));
}

/** Selects tasks by the state they were last observed in (`status.state`). */
export function byTaskState(state: TaskState): Selector {
  return selector(`byTaskState(${TaskState[state] ?? state})`, 'taskState', String(state));
}

/** Selects nodes by their current role. */
export function byRole(role: NodeRole): Selector {
  return selector(`byRole(${NodeRole[role] ?? role})`, 'role', String(role));
}

/**
 * Selects objects carrying the label `key` (with exactly `value`, when given). Labels are those of
 * the spec's annotations, and a task's own annotations; leases have none.
 */
export function byLabel(key: string, value?: string): Selector {
  return value === undefined
    ? selector(`byLabel(${quote(key)})`, 'label', labelKey(key))
    : selector(`byLabel(${quote(key)}, ${quote(value)})`, 'label', labelValueKey(key, value));
}

/** Selects the tasks and services attached to a network. */
export function byReferencedNetworkId(networkId: string): Selector {
  return selector(`byReferencedNetworkId(${quote(networkId)})`, 'network', networkId);
}

/** Selects the tasks and services whose container uses a secret. */
export function byReferencedSecretId(secretId: string): Selector {
  return selector(`byReferencedSecretId(${quote(secretId)})`, 'secret', secretId);
}

/** Selects the tasks and services whose container uses a config. */
export function byReferencedConfigId(configId: string): Selector {
  return selector(`byReferencedConfigId(${quote(configId)})`, 'config', configId);
}

/** Selects every object of the kind. */
export const all: Selector = selector('all', 'all', '');

/**
 * Returns where `value` looks, after checking that it can select objects of `kind`. Throws an
 * INVALID_ARGUMENT ShoalError for a selector of an index the kind does not have (`byServiceId` on
 * nodes) and for anything that is not a selector at all (a plain-JavaScript caller's object).
 */
export function targetFor(kind: ObjectKindName, value: Selector): SelectorTarget {
  const target = (value as Partial<Selector> | null | undefined)?.[selectorTarget];
  if (target === undefined) {
    throw errors.invalidArgument('not a store selector: build one with byId, byServiceId, … or all');
  }
  if (target.index === 'id' || target.index === 'all' || indexesOf(kind).has(target.index)) {
    return target;
  }
  throw errors.invalidArgument(`selector ${value.description} does not apply to ${kind} objects`, {
    kind,
    selector: value.description,
  });
}

/** The keys `object` is filed under in `index`; the index must exist for `kind`. */
export function keysIn(kind: ObjectKindName, index: 'id' | IndexName, object: AnyObject): readonly string[] {
  if (index === 'id') return [object.id];
  const keysOf = indexesOf(kind).get(index);
  if (keysOf === undefined) throw errors.internal(`${kind} objects have no ${index} index`);
  return keysOf(object);
}

/** Returns true if `target` (valid for `kind`, see {@link targetFor}) selects `object`. */
export function selects(kind: ObjectKindName, target: SelectorTarget, object: AnyObject): boolean {
  if (target.index === 'all') return true;
  const keys = keysIn(kind, target.index, object);
  return target.prefix ? keys.some((key) => key.startsWith(target.key)) : keys.includes(target.key);
}
