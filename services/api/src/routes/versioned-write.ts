import { errors } from '@shoal/errors';

/**
 * The `?version=` an update must carry: the object's `Version.Index` as the client read it. dockerd
 * refuses a missing or malformed one with Go's ParseUint wording, which the CLI prints.
 */
export function requiredVersion(query: URLSearchParams, noun: string): bigint {
  const raw = query.get('version') ?? '';
  if (!/^\d+$/.test(raw)) {
    const reason = raw === '' ? 'invalid syntax' : /^-?\d+$/.test(raw) ? 'value out of range' : 'invalid syntax';
    throw errors.invalidArgument(`invalid ${noun} version '${raw}': strconv.ParseUint: parsing ${JSON.stringify(raw)}: ${reason}`);
  }
  return BigInt(raw);
}

/** Refuses a write based on a stale read: the object changed since the client's GET. */
export function requireCurrent(noun: string, id: string, held: bigint | undefined, sent: bigint): void {
  if (held !== sent) throw errors.conflict(`update out of sequence: ${noun} ${id} has version ${held ?? 0n}, the request was based on version ${sent}`);
}

/** `?name=1`, `?name=true`: dockerd's boolean query values. */
export function queryFlag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value !== null && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}
