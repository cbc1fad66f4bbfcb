import { describe, expect, it } from 'vitest';
import { AddressPool, parseCidr, type AddressPoolOptions } from '../src/index.js';
import { thrown } from './support.js';

function pool(subnet: string, extra: Omit<AddressPoolOptions, 'subnet'> = {}): AddressPool {
  return new AddressPool({ subnet: parseCidr(subnet), ...extra });
}

function allocateMany(addresses: AddressPool, count: number): string[] {
  return Array.from({ length: count }, () => addresses.allocate());
}

describe('AddressPool gateway, network and broadcast addresses', () => {
  it('reserves the first usable address as the gateway and never hands out network, broadcast or gateway', () => {
    const addresses = pool('10.0.0.0/29');
    expect(addresses.gateway).toBe('10.0.0.1');
    expect(addresses.available).toBe(5);
    expect(allocateMany(addresses, 5)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
    expect(addresses.available).toBe(0);
  });

  it('reserves a given gateway instead and hands out the first address', () => {
    const addresses = pool('10.0.0.0/29', { gateway: '10.0.0.6' });
    expect(addresses.gateway).toBe('10.0.0.6');
    expect(allocateMany(addresses, 5)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5']);
  });

  it('has exactly one address to hand out in a /30', () => {
    const addresses = pool('10.0.0.0/30');
    expect(addresses.allocate()).toBe('10.0.0.2');
    expect(addresses.available).toBe(0);
  });

  it('keeps the gateway held: releasing it changes nothing', () => {
    const addresses = pool('10.0.0.0/30');
    expect(addresses.release('10.0.0.1')).toBe(false);
    expect(addresses.isAllocated('10.0.0.1')).toBe(false);
    addresses.allocate();
    expect(thrown(() => addresses.allocate())).toMatchObject({ code: 'RESOURCE_EXHAUSTED' });
  });

  it.each([
    ['outside the subnet', '10.0.1.1', 'gateway 10.0.1.1 is not in subnet 10.0.0.0/24'],
    ['the network address', '10.0.0.0', 'gateway 10.0.0.0 is the network address of subnet 10.0.0.0/24'],
    ['the broadcast address', '10.0.0.255', 'gateway 10.0.0.255 is the broadcast address of subnet 10.0.0.0/24'],
    ['not an address', '10.0.0', 'invalid IP address: 10.0.0'],
  ])('rejects a gateway %s', (_, gateway, message) => {
    expect(thrown(() => pool('10.0.0.0/24', { gateway }))).toMatchObject({ code: 'INVALID_ARGUMENT', message });
  });
});

describe('AddressPool serial allocation', () => {
  it('hands out the address after the previous one rather than the lowest free one', () => {
    const addresses = pool('10.0.0.0/24');
    expect(allocateMany(addresses, 3)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    addresses.release('10.0.0.2');
    addresses.release('10.0.0.4');
    expect(addresses.allocate()).toBe('10.0.0.5');
  });

  it('wraps around to the lowest free address after the end of the subnet', () => {
    const addresses = pool('10.0.0.0/29');
    allocateMany(addresses, 5);
    addresses.release('10.0.0.4');
    addresses.release('10.0.0.3');
    expect(allocateMany(addresses, 2)).toEqual(['10.0.0.3', '10.0.0.4']);
  });

  it('hands a released address out again only after every other free address', () => {
    const addresses = pool('10.0.0.0/28');
    allocateMany(addresses, 2);
    addresses.release('10.0.0.3');
    const next = allocateMany(addresses, 12);
    expect(next.at(-1)).toBe('10.0.0.3');
    expect(new Set(next).size).toBe(12);
  });

  it('resumes after the highest reserved address when rebuilt from reservations, in any order', () => {
    const rebuilt = pool('10.0.0.0/24');
    for (const address of ['10.0.0.9', '10.0.0.40', '10.0.0.3']) rebuilt.reserve(address);
    expect(rebuilt.allocate()).toBe('10.0.0.41');
  });
});

describe('AddressPool IP range', () => {
  it('hands out addresses from the range only, its boundary addresses included', () => {
    const addresses = pool('10.0.0.0/24', { range: parseCidr('10.0.0.64/30') });
    expect(addresses.gateway).toBe('10.0.0.1');
    expect(addresses.available).toBe(4);
    expect(allocateMany(addresses, 4)).toEqual(['10.0.0.64', '10.0.0.65', '10.0.0.66', '10.0.0.67']);
  });

  it('accepts a static address of the subnet outside the range without counting it against the range', () => {
    const addresses = pool('10.0.0.0/24', { range: parseCidr('10.0.0.64/30') });
    addresses.reserve('10.0.0.200');
    expect(addresses.isAllocated('10.0.0.200')).toBe(true);
    expect(addresses.available).toBe(4);
    expect(addresses.allocate()).toBe('10.0.0.64');
  });

  it('never hands out the subnet broadcast address even when the range ends on it', () => {
    const addresses = pool('10.0.0.0/24', { range: parseCidr('10.0.0.252/30') });
    expect(allocateMany(addresses, 3)).toEqual(['10.0.0.252', '10.0.0.253', '10.0.0.254']);
    expect(addresses.available).toBe(0);
  });

  it('names the range and the subnet when the range is exhausted', () => {
    const addresses = pool('10.0.0.0/24', { range: parseCidr('10.0.0.64/31') });
    allocateMany(addresses, 2);
    expect(thrown(() => addresses.allocate())).toMatchObject({
      code: 'RESOURCE_EXHAUSTED',
      message: 'no available IP addresses in range 10.0.0.64/31 of subnet 10.0.0.0/24',
    });
  });

  it('rejects a range outside the subnet', () => {
    expect(thrown(() => pool('10.0.0.0/24', { range: parseCidr('10.0.0.0/23') }))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'IP range 10.0.0.0/23 is not inside subnet 10.0.0.0/24',
    });
  });
});

describe('AddressPool reserve and release', () => {
  it('reports exhaustion naming the subnet, in words a task error can show', () => {
    const addresses = pool('10.0.3.0/30');
    addresses.allocate();
    expect(thrown(() => addresses.allocate())).toMatchObject({
      code: 'RESOURCE_EXHAUSTED',
      message: 'no available IP addresses in subnet 10.0.3.0/30',
      details: { subnet: '10.0.3.0/30' },
    });
  });

  it('does not hand out a reserved address', () => {
    const addresses = pool('10.0.0.0/29');
    addresses.reserve('10.0.0.2');
    expect(addresses.allocate()).toBe('10.0.0.3');
    expect(addresses.available).toBe(3);
  });

  it.each([
    ['outside the subnet', '10.0.1.5', 'address 10.0.1.5 is not in subnet 10.0.0.0/24'],
    ['the network address', '10.0.0.0', 'address 10.0.0.0 is the network address of subnet 10.0.0.0/24'],
    ['the broadcast address', '10.0.0.255', 'address 10.0.0.255 is the broadcast address of subnet 10.0.0.0/24'],
    ['the gateway', '10.0.0.1', 'address 10.0.0.1 is the gateway of subnet 10.0.0.0/24'],
    ['held already', '10.0.0.2', 'address 10.0.0.2 is already in use in subnet 10.0.0.0/24'],
    ['not an address', 'ten', 'invalid IP address: ten'],
  ])('rejects reserving an address %s', (_, address, message) => {
    const addresses = pool('10.0.0.0/24');
    addresses.allocate();
    expect(thrown(() => addresses.reserve(address))).toMatchObject({ code: 'INVALID_ARGUMENT', message });
  });

  it('frees a held address once and reports anything else as not held', () => {
    const addresses = pool('10.0.0.0/29');
    const address = addresses.allocate();
    expect(addresses.isAllocated(address)).toBe(true);
    expect(addresses.release(address)).toBe(true);
    expect(addresses.isAllocated(address)).toBe(false);
    expect(addresses.release(address)).toBe(false);
    expect(addresses.release('10.0.0.0')).toBe(false);
    expect(addresses.release('10.0.0.7')).toBe(false);
    expect(addresses.release('192.168.0.1')).toBe(false);
    expect(addresses.available).toBe(5);
  });
});

describe('AddressPool subnet size', () => {
  it.each(['10.0.0.0/7', '10.0.0.0/31', '10.0.0.0/32'])('rejects the subnet %s', (subnet) => {
    expect(thrown(() => pool(subnet))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: `invalid subnet ${subnet}: the prefix length must be between 8 and 30`,
    });
  });

  it('serves a /8, the largest subnet, and wraps from its last usable address to the lowest free one', () => {
    const addresses = pool('10.0.0.0/8');
    expect(addresses.available).toBe(2 ** 24 - 3);
    expect(allocateMany(addresses, 2)).toEqual(['10.0.0.2', '10.0.0.3']);
    addresses.reserve('10.255.255.254');
    expect(addresses.allocate()).toBe('10.0.0.4');
  });
});
