import { errors } from '@shoal/errors';

/**
 * The `?version=` an update must carry: the object's `Version.Index` as the client read it. dockerd
 * refuses a missing or malformed one with Go's ParseUint wording, which the CLI prints.
 */
export function requiredVersion(query: URLSearchParams, noun: string): bigint {
  const raw = query.get('version') ?? '';
  const refuse = (reason: string) =>
    errors.invalidArgument(`invalid ${noun} version '${raw}': strconv.ParseUint: parsing ${JSON.stringify(raw)}: ${reason}`);
  if (!/^\d+$/.test(raw)) throw refuse('invalid syntax');
  const version = BigInt(raw);
  if (version > MAX_UINT64) throw refuse('value out of range');
  return version;
}

const MAX_UINT64 = (1n << 64n) - 1n;

/** Refuses a write based on a stale read: the object changed since the client's GET. */
export function requireCurrent(noun: string, id: string, held: bigint | undefined, sent: bigint): void {
  if (held !== sent) throw errors.conflict(`update out of sequence: ${noun} ${id} has version ${held ?? 0n}, the request was based on version ${sent}`);
}

/**
 * The body a write needs: dockerd refuses an empty one with this message (its JSON decoder's EOF).
 */
export function requiredBody(body: unknown): unknown {
  if (body === undefined) throw errors.invalidArgument('got EOF while reading request body');
  return body;
}

/** `?name=1`, `?name=true`: dockerd's boolean query values. */
export function queryFlag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value !== null && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}
