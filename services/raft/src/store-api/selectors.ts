import { errors } from '@shoal/errors';
import { NodeRole, TaskState, type Selector as WireSelector } from '@shoal/proto';
import {
  byDesiredState,
  byId,
  byIdPrefix,
  byLabel,
  byName,
  byNamePrefix,
  byNodeId,
  byReferencedConfigId,
  byReferencedNetworkId,
  byReferencedSecretId,
  byRole,
  bySlot,
  byServiceId,
  byTaskState,
  type Selector,
} from '@shoal/store';

type SelectorField = keyof WireSelector;

/** Returns `state` if it is a task state this version knows; a newer peer's value is refused. */
function knownTaskState(field: SelectorField, state: TaskState): TaskState {
  if (TaskState[state] === undefined || state === TaskState.UNRECOGNIZED) {
    throw errors.invalidArgument(`selector ${field} names unknown task state ${state}`, { field, state });
  }
  return state;
}

/**
 * How each field of the wire selector's oneof becomes a store selector. The mapped type makes the
 * table exhaustive: a field added to the proto does not compile until it is handled here.
 */
const storeSelectorFor: { readonly [F in SelectorField]-?: (value: NonNullable<WireSelector[F]>) => Selector } = {
  id: byId,
  idPrefix: byIdPrefix,
  name: byName,
  namePrefix: byNamePrefix,
  serviceId: byServiceId,
  nodeId: byNodeId,
  slot: ({ serviceId, slot }) => {
    if (serviceId === '') throw errors.invalidArgument('a slot selector needs a service id: slots are numbered per service');
    return bySlot(serviceId, slot);
  },
  desiredState: (state) => byDesiredState(knownTaskState('desiredState', state)),
  taskState: (state) => byTaskState(knownTaskState('taskState', state)),
  role: (role) => {
    if (NodeRole[role] === undefined || role === NodeRole.UNRECOGNIZED) {
      throw errors.invalidArgument(`selector role names unknown node role ${role}`, { role });
    }
    return byRole(role);
  },
  label: ({ key, value }) => {
    if (key === '') throw errors.invalidArgument('a label selector needs a label key');
    return byLabel(key, value);
  },
  referencedNetworkId: byReferencedNetworkId,
  referencedSecretId: byReferencedSecretId,
  referencedConfigId: byReferencedConfigId,
};

const selectorFields = Object.keys(storeSelectorFor) as SelectorField[];

/**
 * The store selector a wire selector stands for. Throws INVALID_ARGUMENT for a malformed one: no
 * field of the oneof set, several set, a slot without its service, a label without its key, or an
 * enum value this version does not know. Whether the selector applies to a kind is the store's
 * check, made when it is used.
 */
export function toStoreSelector(wire: WireSelector): Selector {
  const set = selectorFields.filter((field) => wire[field] !== undefined);
  const [field] = set;
  if (field === undefined) throw errors.invalidArgument('a selector must set one of its fields; this one sets none');
  if (set.length > 1) {
    throw errors.invalidArgument(`a selector must set one of its fields; this one sets ${set.join(', ')}`, { fields: set.join(',') });
  }
  // The table pairs each field with its own converter; TypeScript cannot follow that through `field`.
  const convert = storeSelectorFor[field] as (value: unknown) => Selector;
  return convert(wire[field]);
}
