/**
 * IPv4 addresses and CIDR blocks as plain numbers, parsed with the rules and error messages of Go's
 * `net.ParseCIDR`, because the Docker API echoes those messages back to users.
 */
import { isIPv6 } from 'node:net';
import { errors } from '@shoal/errors';

/** A block of IPv4 addresses. Always canonical: `start` has no bits set past the prefix. */
export interface Cidr {
  /** The network address (the block's first address) as an unsigned 32-bit integer. */
  readonly start: number;
  /** How many leading bits the block fixes, 0–32. */
  readonly prefixLength: number;
}

const OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
// Go's dtoi accepts leading zeros in the prefix length ("10.0.0.0/024"), unlike in octets.
const PREFIX_LENGTH = /^[0-9]+$/;

/** Returns the address as an unsigned 32-bit integer, or undefined if `text` is not dotted-quad IPv4. */
function parseIpv4(text: string): number | undefined {
  const octets = text.split('.');
  if (octets.length !== 4) return undefined;
  let address = 0;
  for (const octet of octets) {
    if (!OCTET.test(octet)) return undefined;
    const value = Number(octet);
    if (value > 255) return undefined;
    address = address * 256 + value;
  }
  return address;
}

/** Go accepts IPv6 text but Shoal only allocates IPv4: such input gets its own message, not "invalid". */
function ipv6NotSupported(text: string) {
  return errors.invalidArgument(`IPv6 is not supported yet: ${text}`, { value: text });
}

/**
 * Parses `a.b.c.d/n` into the block it names, dropping host bits as Go's `net.ParseCIDR` does
 * (`10.0.0.5/24` is `10.0.0.0/24`).
 *
 * @throws INVALID_ARGUMENT `invalid CIDR address: <text>` for anything Go rejects, and
 *   `IPv6 is not supported yet: <text>` for a valid IPv6 block.
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? '' : text.slice(slash + 1);
  const prefixLength = PREFIX_LENGTH.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (addressText.includes(':')) {
    if (isIPv6(addressText) && !addressText.includes('%') && prefixLength <= 128) throw ipv6NotSupported(text);
  } else {
    const address = parseIpv4(addressText);
    if (address !== undefined && prefixLength <= 32) {
      const size = 2 ** (32 - prefixLength);
      return { start: Math.floor(address / size) * size, prefixLength };
    }
  }
  throw errors.invalidArgument(`invalid CIDR address: ${text}`, { value: text });
}

/** Formats a block as `a.b.c.d/n`. */
export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr.start)}/${cidr.prefixLength}`;
}

/**
 * Parses a dotted-quad IPv4 address into an unsigned 32-bit integer.
 *
 * @throws INVALID_ARGUMENT `invalid IP address: <text>` (Go's wording), or
 *   `IPv6 is not supported yet: <text>` for a valid IPv6 address.
 */
export function parseAddress(text: string): number {
  const address = parseIpv4(text);
  if (address !== undefined) return address;
  if (isIPv6(text) && !text.includes('%')) throw ipv6NotSupported(text);
  throw errors.invalidArgument(`invalid IP address: ${text}`, { value: text });
}

/** Formats an unsigned 32-bit integer as a dotted-quad IPv4 address. */
export function formatAddress(address: number): string {
  return [address >>> 24, (address >>> 16) & 0xff, (address >>> 8) & 0xff, address & 0xff].join('.');
}

/** The number of addresses in the block, network and broadcast included. */
export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefixLength);
}

/** The block's last (broadcast) address. */
export function cidrEnd(cidr: Cidr): number {
  return cidr.start + cidrSize(cidr) - 1;
}

/** True if `address` (an unsigned 32-bit integer) lies inside the block. */
export function cidrContainsAddress(cidr: Cidr, address: number): boolean {
  return address >= cidr.start && address <= cidrEnd(cidr);
}

/** True if every address of `inner` lies inside `outer` (a block contains itself). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return inner.start >= outer.start && cidrEnd(inner) <= cidrEnd(outer);
}

/** True if the two blocks share at least one address; for CIDR blocks, that means one contains the other. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.start <= cidrEnd(b) && b.start <= cidrEnd(a);
}
