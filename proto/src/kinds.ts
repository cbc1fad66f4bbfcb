import type { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';
import { errors } from '@shoal/errors';
import { Cluster, Config, Lease, Network, Node, Secret, Service, Task } from './gen/shoal/v1/objects.js';
import { ObjectKind, type StoreObject, type StoreSnapshot } from './gen/shoal/v1/store.js';

/** The names of the kinds of stored object; each is also the name of its field in `StoreObject`. */
export const objectKindNames = ['node', 'service', 'task', 'network', 'secret', 'config', 'cluster', 'lease'] as const;

/** The name of a kind of stored object. */
export type ObjectKindName = (typeof objectKindNames)[number];

/** The message type stored under each kind name. */
export interface ObjectTypes {
  node: Node;
  service: Service;
  task: Task;
  network: Network;
  secret: Secret;
  config: Config;
  cluster: Cluster;
  lease: Lease;
}

/** Any stored object. */
export type AnyObject = ObjectTypes[ObjectKindName];

/** The part of a generated message codec that works on any message, so callers can stay generic. */
export interface MessageCodec<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
  fromJSON(object: unknown): T;
  toJSON(message: T): unknown;
}

/**
 * The generated codec of each kind, e.g. to encode or size any object:
 * `codecByKind[kind].encode(object).finish().length`.
 */
export const codecByKind: { readonly [K in ObjectKindName]: MessageCodec<ObjectTypes[K]> } = {
  node: Node,
  service: Service,
  task: Task,
  network: Network,
  secret: Secret,
  config: Config,
  cluster: Cluster,
  lease: Lease,
};

/** Encodes a stored object with its kind's codec (e.g. to size it). */
export function encodeObject({ kind, object }: KindedObject): Uint8Array {
  // The pairing of kind and object is what KindedObject guarantees; TypeScript cannot follow it
  // through the index, hence the widening.
  return (codecByKind[kind] as MessageCodec<AnyObject>).encode(object).finish();
}

/** Decodes a stored object of a known kind. */
export function decodeObject<K extends ObjectKindName>(kind: K, bytes: Uint8Array): ObjectTypes[K] {
  return codecByKind[kind].decode(bytes);
}

/** The wire enum value of each kind name. */
export const objectKindByName: { readonly [K in ObjectKindName]: ObjectKind } = {
  node: ObjectKind.NODE,
  service: ObjectKind.SERVICE,
  task: ObjectKind.TASK,
  network: ObjectKind.NETWORK,
  secret: ObjectKind.SECRET,
  config: ObjectKind.CONFIG,
  cluster: ObjectKind.CLUSTER,
  lease: ObjectKind.LEASE,
};

const nameByObjectKind = new Map<ObjectKind, ObjectKindName>(
  objectKindNames.map((name) => [objectKindByName[name], name]),
);

/**
 * Returns the name of a wire kind (`ObjectKind.TASK` → `"task"`). Throws an INVALID_ARGUMENT
 * ShoalError for `UNSPECIFIED` or a value this version does not know.
 */
export function objectKindName(kind: ObjectKind): ObjectKindName {
  const name = nameByObjectKind.get(kind);
  if (name === undefined) throw errors.invalidArgument(`unknown object kind ${kind}`, { kind });
  return name;
}

/** A stored object together with its kind, narrowed so `object`'s type follows `kind`. */
export type KindedObject = { [K in ObjectKindName]: { kind: K; object: ObjectTypes[K] } }[ObjectKindName];

/** Wraps an object into the `StoreObject` oneof under its kind. */
export function toStoreObject<K extends ObjectKindName>(kind: K, object: ObjectTypes[K]): StoreObject {
  return { [kind]: object };
}

/**
 * Returns the object a `StoreObject` holds, with its kind. Throws an INVALID_ARGUMENT ShoalError
 * if it holds none (an empty message, or a kind newer than this version).
 */
export function fromStoreObject(stored: StoreObject): KindedObject {
  for (const kind of objectKindNames) {
    const object = stored[kind];
    if (object !== undefined) return { kind, object } as KindedObject;
  }
  throw errors.invalidArgument('store object holds no object');
}

/** The repeated field of `StoreSnapshot` that holds each kind. */
export const snapshotFieldByKind = {
  node: 'nodes',
  service: 'services',
  task: 'tasks',
  network: 'networks',
  secret: 'secrets',
  config: 'configs',
  cluster: 'clusters',
  lease: 'leases',
} as const satisfies Record<ObjectKindName, keyof StoreSnapshot>;
