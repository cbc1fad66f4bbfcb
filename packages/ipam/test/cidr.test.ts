import { describe, expect, it } from 'vitest';
import {
  cidrContains,
  cidrContainsAddress,
  cidrEnd,
  cidrSize,
  cidrsOverlap,
  formatAddress,
  formatCidr,
  parseAddress,
  parseCidr,
} from '../src/index.js';
import { thrown } from './support.js';

describe('parseCidr', () => {
  it('parses a block into its network address and prefix length', () => {
    expect(parseCidr('10.1.2.0/24')).toEqual({ start: 10 * 2 ** 24 + 1 * 2 ** 16 + 2 * 2 ** 8, prefixLength: 24 });
    expect(formatCidr(parseCidr('192.168.0.0/16'))).toBe('192.168.0.0/16');
  });

  it('drops host bits as Go net.ParseCIDR does', () => {
    expect(formatCidr(parseCidr('10.0.0.5/24'))).toBe('10.0.0.0/24');
    expect(formatCidr(parseCidr('255.255.255.255/1'))).toBe('128.0.0.0/1');
  });

  it('accepts the whole address space and single addresses', () => {
    expect(parseCidr('0.0.0.0/0')).toEqual({ start: 0, prefixLength: 0 });
    expect(cidrEnd(parseCidr('0.0.0.0/0'))).toBe(2 ** 32 - 1);
    expect(cidrSize(parseCidr('10.0.0.7/32'))).toBe(1);
  });

  it('accepts leading zeros in the prefix length, as Go does', () => {
    expect(formatCidr(parseCidr('10.0.0.0/024'))).toBe('10.0.0.0/24');
  });

  it.each([
    '',
    '10.0.0.0',
    '10.0.0.0/',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/2x',
    '10.0.0/24',
    '10.0.0.0.0/24',
    '10.0.0.256/24',
    '010.0.0.0/24',
    '10..0.0/24',
    ' 10.0.0.0/24',
    '10.0.0.0/24 ',
    'a.b.c.d/24',
    'fe80::zz/64',
    'fe80::1%eth0/64',
    '2001:db8::/129',
  ])('rejects %j with Go message "invalid CIDR address: <text>"', (text) => {
    expect(thrown(() => parseCidr(text))).toMatchObject({ code: 'INVALID_ARGUMENT', message: `invalid CIDR address: ${text}` });
  });

  it('rejects a valid IPv6 block as not supported yet', () => {
    expect(thrown(() => parseCidr('2001:db8::/64'))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'IPv6 is not supported yet: 2001:db8::/64',
    });
  });
});

describe('parseAddress and formatAddress', () => {
  it('round-trip the lowest and highest addresses', () => {
    expect(parseAddress('0.0.0.0')).toBe(0);
    expect(parseAddress('255.255.255.255')).toBe(2 ** 32 - 1);
    expect(formatAddress(2 ** 32 - 1)).toBe('255.255.255.255');
    expect(formatAddress(parseAddress('10.20.30.40'))).toBe('10.20.30.40');
  });

  it.each(['', '10.0.0', '10.0.0.01', '10.0.0.0/32', 'localhost'])('rejects %j with Go message "invalid IP address: <text>"', (text) => {
    expect(thrown(() => parseAddress(text))).toMatchObject({ code: 'INVALID_ARGUMENT', message: `invalid IP address: ${text}` });
  });

  it('rejects a valid IPv6 address as not supported yet', () => {
    expect(thrown(() => parseAddress('::1'))).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'IPv6 is not supported yet: ::1' });
  });
});

describe('containment and overlap', () => {
  const wide = parseCidr('10.0.0.0/8');
  const narrow = parseCidr('10.1.2.0/24');
  const outside = parseCidr('11.0.0.0/24');

  it('a block contains itself and its sub-blocks, not its supernets', () => {
    expect(cidrContains(wide, wide)).toBe(true);
    expect(cidrContains(wide, narrow)).toBe(true);
    expect(cidrContains(narrow, wide)).toBe(false);
    expect(cidrContains(wide, outside)).toBe(false);
  });

  it('contains exactly the addresses from its network address to its broadcast address', () => {
    expect(cidrContainsAddress(narrow, parseAddress('10.1.2.0'))).toBe(true);
    expect(cidrContainsAddress(narrow, parseAddress('10.1.2.255'))).toBe(true);
    expect(cidrContainsAddress(narrow, parseAddress('10.1.1.255'))).toBe(false);
    expect(cidrContainsAddress(narrow, parseAddress('10.1.3.0'))).toBe(false);
  });

  it('overlap is symmetric and adjacent blocks do not overlap', () => {
    expect(cidrsOverlap(wide, narrow)).toBe(true);
    expect(cidrsOverlap(narrow, wide)).toBe(true);
    expect(cidrsOverlap(parseCidr('10.0.0.0/24'), parseCidr('10.0.1.0/24'))).toBe(false);
    expect(cidrsOverlap(wide, outside)).toBe(false);
  });
});
