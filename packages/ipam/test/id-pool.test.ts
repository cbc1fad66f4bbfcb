import { describe, expect, it } from 'vitest';
import { IdPool, VXLAN_IDS } from '../src/index.js';
import { thrown } from './support.js';

/** A small pool: reservable 1–100, handed out from 10–19. */
function smallPool(): IdPool {
  return new IdPool({ kind: 'widget ID', min: 1, max: 100, dynamicMin: 10, dynamicMax: 19 });
}

describe('IdPool for VXLAN IDs (the default)', () => {
  it('hands out VXLAN IDs from 4096 upwards, as libnetwork overlay driver does', () => {
    const vxlanIds = new IdPool();
    expect(vxlanIds.options).toEqual(VXLAN_IDS);
    expect([vxlanIds.allocate(), vxlanIds.allocate()]).toEqual([4096, 4097]);
    expect(vxlanIds.available).toBe(2 ** 24 - 4096 - 2);
  });

  it('accepts a VXLAN ID a user asked for anywhere in the 24-bit range, below 4096 included', () => {
    const vxlanIds = new IdPool();
    vxlanIds.reserve(100);
    vxlanIds.reserve(2 ** 24 - 1);
    expect(vxlanIds.isAllocated(100)).toBe(true);
    expect(vxlanIds.available).toBe(2 ** 24 - 4096 - 1);
  });

  it.each([-1, 2 ** 24, 4096.5])('rejects the VXLAN ID %s as out of range', (id) => {
    expect(thrown(() => new IdPool().reserve(id))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: `invalid VXLAN ID ${id}: it must be an integer between 0 and 16777215`,
    });
  });

  it('rejects a VXLAN ID that is already in use', () => {
    const vxlanIds = new IdPool();
    const id = vxlanIds.allocate();
    expect(thrown(() => vxlanIds.reserve(id))).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'VXLAN ID 4096 is already in use' });
  });
});

describe('IdPool allocation', () => {
  it('continues after the previous allocation rather than from the lowest free value', () => {
    const ids = smallPool();
    expect([ids.allocate(), ids.allocate()]).toEqual([10, 11]);
    ids.release(10);
    expect(ids.allocate()).toBe(12);
  });

  it('wraps around to the lowest free value after the end of the dynamic range, skipping held ones', () => {
    const ids = smallPool();
    const all = Array.from({ length: 10 }, () => ids.allocate());
    expect(all).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    for (const id of [15, 12, 13]) ids.release(id);
    ids.reserve(13);
    expect([ids.allocate(), ids.allocate()]).toEqual([12, 15]);
  });

  it('moves past a value reserved ahead of the previous allocation, so a rebuilt pool resumes after the highest', () => {
    const ids = smallPool();
    ids.reserve(16);
    ids.reserve(13);
    expect(ids.allocate()).toBe(17);
  });

  it('reports exhaustion naming the kind and the dynamic range, even when values outside it are free', () => {
    const ids = smallPool();
    for (let index = 0; index < 10; index += 1) ids.allocate();
    expect(ids.available).toBe(0);
    expect(thrown(() => ids.allocate())).toMatchObject({
      code: 'RESOURCE_EXHAUSTED',
      message: 'no widget ID available: all of 10-19 are in use',
    });
    ids.reserve(50);
    expect(ids.isAllocated(50)).toBe(true);
  });
});

describe('IdPool release', () => {
  it('frees a held value once and reports others as not held', () => {
    const ids = smallPool();
    ids.reserve(50);
    expect(ids.release(50)).toBe(true);
    expect(ids.release(50)).toBe(false);
    expect(ids.release(14)).toBe(false);
    expect(ids.release(1000)).toBe(false);
    expect(ids.isAllocated(1000)).toBe(false);
    ids.reserve(50);
  });
});

describe('IdPool configuration', () => {
  it.each([
    { min: 10, max: 100, dynamicMin: 5, dynamicMax: 20 },
    { min: 1, max: 100, dynamicMin: 50, dynamicMax: 101 },
    { min: 1, max: 100, dynamicMin: 20, dynamicMax: 10 },
    { min: 1, max: 100.5, dynamicMin: 10, dynamicMax: 20 },
  ])('rejects a dynamic range that is not inside the reservable range: %o', (range) => {
    expect(thrown(() => new IdPool({ kind: 'widget ID', ...range }))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: `invalid widget ID range: ${range.dynamicMin}-${range.dynamicMax} must lie inside ${range.min}-${range.max}`,
    });
  });
});
