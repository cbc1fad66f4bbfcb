import { errors } from '@shoal/errors';
import {
  objectKindNames,
  taskName,
  TaskState,
  type AnyObject,
  type Annotations,
  type NetworkAttachmentConfig,
  type ObjectKindName,
  type ObjectTypes,
  type TaskSpec,
} from '@shoal/proto';

/** The secondary indexes the store can keep for a kind. Every table is also keyed by id. */
export type IndexName =
  | 'name'
  | 'serviceId'
  | 'nodeId'
  | 'slot'
  | 'desiredState'
  | 'taskState'
  | 'role'
  | 'label'
  | 'network'
  | 'secret'
  | 'config';

/** The keys an object is filed under in one index; an object with no keys is not in that index. */
export type IndexKeys<T> = (object: T) => readonly string[];

/** How the store files the objects of one kind. */
export interface TableSchema<T> {
  /**
   * The object's name. The name index files it lowercased, so lookups and the uniqueness rule
   * ignore case as swarmkit's do; an empty name is no name, so nameless objects never collide.
   */
  readonly name: (object: T) => string;
  /** No two objects of the kind may have the same name. */
  readonly uniqueNames: boolean;
  readonly indexes: { readonly [I in Exclude<IndexName, 'name'>]?: IndexKeys<T> };
}

/** The name index keys of a name (see {@link TableSchema.name}). */
export function nameKeys(name: string): readonly string[] {
  return name === '' ? [] : [name.toLowerCase()];
}

/** The key of a task's (service, slot) pair. JSON keeps the parts apart whatever they contain. */
export function slotKey(serviceId: string, slot: bigint): string {
  return JSON.stringify([serviceId, slot.toString()]);
}

/** The key of "has a label `key`, any value". */
export function labelKey(key: string): string {
  return JSON.stringify([key]);
}

/** The key of "has the label `key` with this value". */
export function labelValueKey(key: string, value: string): string {
  return JSON.stringify([key, value]);
}

function labelKeys(annotations: Annotations | undefined): readonly string[] {
  return Object.entries(annotations?.labels ?? {}).flatMap(([key, value]) => [labelKey(key), labelValueKey(key, value)]);
}

function networkTargets(networks: readonly NetworkAttachmentConfig[]): readonly string[] {
  return networks.map((network) => network.target);
}

function secretIds(spec: TaskSpec | undefined): readonly string[] {
  return (spec?.container?.secrets ?? []).map((secret) => secret.secretId);
}

function configIds(spec: TaskSpec | undefined): readonly string[] {
  return (spec?.container?.configs ?? []).map((config) => config.configId);
}

/** A kind that is only looked up by id, its unique spec name and its spec labels. */
function annotatedByName<T extends { spec?: { annotations?: Annotations | undefined } | undefined }>(): TableSchema<T> {
  return {
    name: (object) => object.spec?.annotations?.name ?? '',
    uniqueNames: true,
    indexes: {
      label: (object) => labelKeys(object.spec?.annotations),
    },
  };
}

/**
 * The indexes of every kind, following swarmkit's `manager/state/store` indexers: node names are
 * hostnames and task names come from `taskName`, neither unique; a service references the
 * networks of its task template (or, when that has none, the deprecated service-level list),
 * and tasks and services reference the secrets and configs of their container spec.
 */
const schemas: { readonly [K in ObjectKindName]: TableSchema<ObjectTypes[K]> } = {
  node: {
    name: (node) => node.description?.hostname ?? '',
    uniqueNames: false,
    indexes: {
      role: (node) => [String(node.role)],
      label: (node) => labelKeys(node.spec?.annotations),
    },
  },
  service: {
    name: (service) => service.spec?.annotations?.name ?? '',
    uniqueNames: true,
    indexes: {
      label: (service) => labelKeys(service.spec?.annotations),
      network: (service) => {
        const taskNetworks = service.spec?.task?.networks ?? [];
        return networkTargets(taskNetworks.length > 0 ? taskNetworks : (service.spec?.networks ?? []));
      },
      secret: (service) => secretIds(service.spec?.task),
      config: (service) => configIds(service.spec?.task),
    },
  },
  task: {
    name: taskName,
    uniqueNames: false,
    indexes: {
      serviceId: (task) => [task.serviceId],
      nodeId: (task) => [task.nodeId],
      slot: (task) => [slotKey(task.serviceId, task.slot)],
      desiredState: (task) => [String(task.desiredState)],
      taskState: (task) => [String(task.status?.state ?? TaskState.NEW)],
      label: (task) => labelKeys(task.annotations),
      network: (task) => networkTargets(task.spec?.networks ?? []),
      secret: (task) => secretIds(task.spec),
      config: (task) => configIds(task.spec),
    },
  },
  network: annotatedByName(),
  secret: annotatedByName(),
  config: annotatedByName(),
  cluster: annotatedByName(),
  lease: {
    name: (lease) => lease.name,
    uniqueNames: true,
    indexes: {},
  },
};

/** The schema of `kind`, typed for code that handles every kind alike. */
export function schemaOf(kind: ObjectKindName): TableSchema<AnyObject> {
  return schemas[kind] as TableSchema<AnyObject>;
}

const indexesByKind = new Map(
  objectKindNames.map((kind) => {
    const schema = schemaOf(kind);
    const indexes = new Map<IndexName, IndexKeys<AnyObject>>([['name', (object) => nameKeys(schema.name(object))]]);
    for (const [index, keysOf] of Object.entries(schema.indexes)) indexes.set(index as IndexName, keysOf);
    return [kind, indexes as ReadonlyMap<IndexName, IndexKeys<AnyObject>>];
  }),
);

/** Every index of `kind`, the name index included, with how to compute an object's keys in it. */
export function indexesOf(kind: ObjectKindName): ReadonlyMap<IndexName, IndexKeys<AnyObject>> {
  const indexes = indexesByKind.get(kind);
  if (indexes === undefined) throw errors.invalidArgument(`unknown object kind ${JSON.stringify(kind)}`, { kind });
  return indexes;
}
