import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { ObjectKind, StoreObject } from '../src/gen/shoal/v1/store.js';
import {
  codecByKind,
  decodeObject,
  encodeObject,
  fromStoreObject,
  type KindedObject,
  objectKindByName,
  objectKindName,
  objectKindNames,
  toStoreObject,
} from '../src/kinds.js';

describe('object kinds', () => {
  it('lists the eight stored kinds', () => {
    expect(objectKindNames).toEqual(['node', 'service', 'task', 'network', 'secret', 'config', 'cluster', 'lease']);
  });

  it.each(objectKindNames)('encodes and decodes a %s generically, keeping a version above 2^53', (kind) => {
    const object = codecByKind[kind].fromJSON({ id: `${kind}-1`, meta: { version: { index: '9007199254740993' } } });

    const decoded = decodeObject(kind, encodeObject({ kind, object } as KindedObject));

    expect(decoded).toEqual(object);
    expect(decoded.meta?.version?.index).toBe(9007199254740993n);
  });

  it('maps each kind name to its wire enum value and back', () => {
    for (const name of objectKindNames) expect(objectKindName(objectKindByName[name])).toBe(name);
    expect(objectKindByName.lease).toBe(ObjectKind.LEASE);
  });

  it('numbers each kind as its field in StoreObject, so the enum and the oneof cannot drift', () => {
    for (const name of objectKindNames) {
      const bytes = StoreObject.encode(toStoreObject(name, codecByKind[name].fromJSON({}))).finish();
      // The first byte of the encoding is the oneof field's tag: (field number << 3) | wire type 2.
      expect(bytes[0]! >> 3).toBe(objectKindByName[name]);
    }
  });

  it('rejects UNSPECIFIED and unknown wire kinds with INVALID_ARGUMENT', () => {
    for (const kind of [ObjectKind.UNSPECIFIED, ObjectKind.UNRECOGNIZED, 99 as ObjectKind]) {
      expect(() => objectKindName(kind)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
    }
  });
});

describe('StoreObject wrapping', () => {
  it('wraps an object under its kind and unwraps it with the kind', () => {
    const task = codecByKind.task.fromJSON({ id: 't1', serviceId: 's1' });
    const stored = toStoreObject('task', task);
    expect(stored).toEqual({ task });
    expect(fromStoreObject(StoreObject.decode(StoreObject.encode(stored).finish()))).toEqual({ kind: 'task', object: task });
  });

  it('rejects a StoreObject that holds nothing', () => {
    expect(() => fromStoreObject(StoreObject.fromPartial({}))).toThrow(/holds no object/);
  });
});
