import { describe, expect, it } from 'vitest';
import { DEFAULT_SUBNET_SIZE, formatCidr, parseCidr, SubnetPool } from '../src/index.js';
import { thrown } from './support.js';

const OVERLAP = 'invalid pool request: Pool overlaps with other one on this address space';
const EXHAUSTED = 'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network';

/** Allocates `count` subnets and returns them as text. */
function allocateText(pool: SubnetPool, count: number): string[] {
  return Array.from({ length: count }, () => formatCidr(pool.allocate()));
}

describe('SubnetPool allocation', () => {
  it('carves /24s out of 10.0.0.0/8 by default, lowest first', () => {
    const pool = new SubnetPool();
    expect(pool.subnetSize).toBe(DEFAULT_SUBNET_SIZE);
    expect(allocateText(pool, 3)).toEqual(['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24']);
  });

  it('treats an empty pool list and a subnet size of 0 as the defaults, as the Cluster object stores them', () => {
    const pool = new SubnetPool({ pools: [], subnetSize: 0 });
    expect(pool.pools.map(formatCidr)).toEqual(['10.0.0.0/8']);
    expect(allocateText(pool, 1)).toEqual(['10.0.0.0/24']);
  });

  it('takes the configured subnet size from the configured pools, trying them in order', () => {
    const pool = new SubnetPool({ pools: [parseCidr('192.168.0.0/24'), parseCidr('172.16.0.0/16')], subnetSize: 25 });
    expect(allocateText(pool, 3)).toEqual(['192.168.0.0/25', '192.168.0.128/25', '172.16.0.0/25']);
  });

  it('hands out the lowest free subnet again once it is released', () => {
    const pool = new SubnetPool();
    allocateText(pool, 3);
    expect(pool.release(parseCidr('10.0.1.0/24'))).toBe(true);
    expect(allocateText(pool, 2)).toEqual(['10.0.1.0/24', '10.0.3.0/24']);
  });

  it('carves around subnets users reserved inside the pool, including smaller ones', () => {
    const pool = new SubnetPool();
    pool.reserve(parseCidr('10.0.1.0/24'));
    pool.reserve(parseCidr('10.0.2.128/25'));
    pool.reserve(parseCidr('10.0.4.0/22'));
    expect(allocateText(pool, 3)).toEqual(['10.0.0.0/24', '10.0.3.0/24', '10.0.8.0/24']);
  });

  it('is not affected by subnets users reserved outside the pools', () => {
    const pool = new SubnetPool();
    pool.reserve(parseCidr('192.168.10.0/24'));
    expect(allocateText(pool, 1)).toEqual(['10.0.0.0/24']);
  });

  it('reports exhaustion with libnetwork message when every pool is full', () => {
    const pool = new SubnetPool({ pools: [parseCidr('10.9.0.0/23')], subnetSize: 24 });
    allocateText(pool, 2);
    expect(thrown(() => pool.allocate())).toMatchObject({ code: 'RESOURCE_EXHAUSTED', message: EXHAUSTED });
  });

  it('carves all 65,536 /24s of 10.0.0.0/8, then reports exhaustion, then reuses one released in the middle', () => {
    const pool = new SubnetPool();
    let last = pool.allocate();
    for (let index = 1; index < 65_536; index += 1) last = pool.allocate();
    expect(formatCidr(last)).toBe('10.255.255.0/24');
    expect(thrown(() => pool.allocate())).toMatchObject({ code: 'RESOURCE_EXHAUSTED' });

    expect(pool.release(parseCidr('10.128.7.0/24'))).toBe(true);
    expect(formatCidr(pool.allocate())).toBe('10.128.7.0/24');
  });
});

describe('SubnetPool reservation', () => {
  it.each([
    ['the same subnet', '10.0.0.0/24'],
    ['a subnet inside it', '10.0.0.64/26'],
    ['a subnet containing it', '10.0.0.0/16'],
  ])('rejects %s as a carved subnet with libnetwork overlap message', (_, requested) => {
    const pool = new SubnetPool();
    pool.allocate();
    expect(thrown(() => pool.reserve(parseCidr(requested)))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: OVERLAP,
      details: { subnet: requested },
    });
  });

  it('rejects overlapping user subnets outside the pools too', () => {
    const pool = new SubnetPool();
    pool.reserve(parseCidr('192.168.0.0/16'));
    expect(thrown(() => pool.reserve(parseCidr('192.168.3.0/24')))).toMatchObject({ message: OVERLAP });
  });

  it('accepts a subnet adjacent to a held one', () => {
    const pool = new SubnetPool();
    pool.reserve(parseCidr('192.168.0.0/24'));
    pool.reserve(parseCidr('192.168.1.0/24'));
    pool.reserve(parseCidr('192.167.255.0/24'));
    expect(pool.isAllocated(parseCidr('192.168.1.0/24'))).toBe(true);
  });

  it.each(['10.0.0.0/7', '10.0.0.0/31'])('rejects the subnet %s whose size no network can use', (requested) => {
    expect(thrown(() => new SubnetPool().reserve(parseCidr(requested)))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: `invalid subnet ${requested}: the prefix length must be between 8 and 30`,
    });
  });
});

describe('SubnetPool release', () => {
  it('frees only a subnet held exactly, and only once', () => {
    const pool = new SubnetPool();
    pool.reserve(parseCidr('192.168.0.0/16'));
    expect(pool.release(parseCidr('192.168.0.0/24'))).toBe(false);
    expect(pool.release(parseCidr('10.0.0.0/24'))).toBe(false);
    expect(pool.release(parseCidr('192.168.0.0/16'))).toBe(true);
    expect(pool.release(parseCidr('192.168.0.0/16'))).toBe(false);
    expect(pool.isAllocated(parseCidr('192.168.0.0/16'))).toBe(false);
  });

  it('makes a released subnet reservable again without disturbing its neighbours', () => {
    const pool = new SubnetPool();
    allocateText(pool, 3);
    pool.release(parseCidr('10.0.1.0/24'));
    pool.reserve(parseCidr('10.0.1.0/25'));
    expect(thrown(() => pool.reserve(parseCidr('10.0.0.0/24')))).toMatchObject({ message: OVERLAP });
    expect(thrown(() => pool.reserve(parseCidr('10.0.2.0/24')))).toMatchObject({ message: OVERLAP });
    expect(allocateText(pool, 1)).toEqual(['10.0.3.0/24']);
  });
});

describe('SubnetPool configuration', () => {
  it.each([7, 31, 24.5, -1])('rejects the subnet size %s', (subnetSize) => {
    expect(thrown(() => new SubnetPool({ subnetSize }))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: `invalid subnet size ${subnetSize}: it must be an integer between 8 and 30`,
    });
  });

  it('rejects a pool smaller than the subnets it should hold', () => {
    expect(thrown(() => new SubnetPool({ pools: [parseCidr('10.1.0.0/24')], subnetSize: 16 }))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'default address pool 10.1.0.0/24 is smaller than the subnet size /16',
    });
  });

  it('rejects overlapping pools', () => {
    const pools = [parseCidr('10.0.0.0/8'), parseCidr('192.168.0.0/16'), parseCidr('10.1.0.0/16')];
    expect(thrown(() => new SubnetPool({ pools }))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'default address pools 10.0.0.0/8 and 10.1.0.0/16 overlap',
    });
  });
});
