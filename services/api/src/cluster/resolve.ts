import { ErrorCode, errors, hasCode } from '@shoal/errors';
import type { ObjectTypes } from '@shoal/proto';
import { byIdPrefix, byName, type ReadTx } from '@shoal/store';

/** The word Docker's messages use for each kind a path can name. */
const nounByKind = {
  node: 'node',
  service: 'service',
  task: 'task',
  network: 'network',
  secret: 'secret',
  config: 'config',
} as const;

export type NamedKind = keyof typeof nounByKind;

/**
 * The object an `{id}` path segment names, as dockerd resolves it: a full ID, else an exact name (a
 * node's hostname; tasks have none), else a unique ID prefix. NOT_FOUND `service X not found` when
 * nothing matches, INVALID_ARGUMENT `service X is ambiguous (2 matches found)` for a shared prefix.
 */
export function resolve<K extends NamedKind>(tx: ReadTx, kind: K, input: string): ObjectTypes[K] {
  const noun = nounByKind[kind];
  if (input === '') throw errors.notFound(`${noun} ${input} not found`);
  const exact = tx.get(kind, input);
  if (exact !== undefined) return exact;
  const named = kind === 'task' ? [] : tx.find(kind, byName(input));
  const matches = named.length > 0 ? named : tx.find(kind, byIdPrefix(input));
  if (matches.length === 0) throw errors.notFound(`${noun} ${input} not found`);
  if (matches.length > 1) throw errors.invalidArgument(`${noun} ${input} is ambiguous (${matches.length} matches found)`);
  return matches[0] as ObjectTypes[K];
}

/** {@link resolve} for a read that may find nothing: `undefined` instead of NOT_FOUND. */
export function tryResolve<K extends NamedKind>(tx: ReadTx, kind: K, input: string): ObjectTypes[K] | undefined {
  try {
    return resolve(tx, kind, input);
  } catch (err) {
    if (hasCode(err, ErrorCode.NotFound)) return undefined;
    throw err;
  }
}
