import { errors } from '@shoal/errors';
import { parseJsonDocument } from './json-body.js';

/**
 * The `filters` query parameter of list endpoints, read as dockerd 20.10 reads it
 * (moby api/types/filters/parse.go at v20.10: `FromJSON`, `Args`). Keys map to sets of values; the
 * matching helpers follow `Args`' rule that a key without values filters nothing.
 *
 * @example
 * const filters = parseFilters(query.get('filters'));
 * filters.validateKeys(['id', 'label', 'name']);
 * const listed = secrets.filter((secret) => filters.matchesPrefix('name', secret.name) && filters.matchesLabels('label', secret.labels));
 */
export class Filters {
  /** key → value → the boolean the client sent (the current form sends `true`; the legacy form implies it). */
  readonly #fields: ReadonlyMap<string, ReadonlyMap<string, boolean>>;

  /** Usually built by {@link parseFilters}; with no argument, filters that match everything. */
  constructor(fields: ReadonlyMap<string, ReadonlyMap<string, boolean>> = new Map()) {
    this.#fields = fields;
  }

  /** The keys present. Their order carries no meaning, as in Go's map. */
  keys(): string[] {
    return [...this.#fields.keys()];
  }

  /** Every value given for `key` (also those sent as `false`, as Go's `Args.Get` returns them); `[]` when absent. */
  values(key: string): string[] {
    return [...(this.#fields.get(key)?.keys() ?? [])];
  }

  /** Whether `key` was sent, even with no values (`Args.Contains`). */
  has(key: string): boolean {
    return this.#fields.has(key);
  }

  /**
   * Refuses a key the endpoint does not know. The message is dockerd 20.10's, which every swarm list
   * endpoint returns through `Args.Validate` (daemon/cluster/filters.go): `Invalid filter 'foo'`.
   * With several unknown keys, which one is named is unspecified, as in Go.
   */
  validateKeys(allowed: readonly string[]): void {
    for (const key of this.#fields.keys()) {
      if (!allowed.includes(key)) throw errors.invalidArgument(`Invalid filter '${key}'`, { filter: key });
    }
  }

  /**
   * Whether `candidate` equals one of the values of `key` or starts with one (`Args.FuzzyMatch`, and
   * swarmkit's ID and name prefix filters): values are alternatives. True when `key` has no values.
   */
  matchesPrefix(key: string, candidate: string): boolean {
    const values = this.#fields.get(key);
    if (values === undefined || values.size === 0) return true;
    for (const value of values.keys()) {
      if (candidate.startsWith(value)) return true;
    }
    return false;
  }

  /**
   * Whether `labels` satisfies every value of `key`, each `name` (the label is present) or
   * `name=value` (it has that value), as `Args.MatchKVList` decides. True when `key` has no values,
   * false for an object without labels otherwise.
   *
   * swarmkit's own label filter differs in one corner that this does not copy: it treats `name=` (an
   * empty value) like `name`, where MatchKVList requires the label's value to be empty.
   */
  matchesLabels(key: string, labels: Readonly<Record<string, string>>): boolean {
    const values = this.#fields.get(key);
    if (values === undefined || values.size === 0) return true;
    for (const value of values.keys()) {
      const separator = value.indexOf('=');
      const name = separator === -1 ? value : value.slice(0, separator);
      if (!Object.hasOwn(labels, name)) return false;
      if (separator !== -1 && labels[name] !== value.slice(separator + 1)) return false;
    }
    return true;
  }

  /** Whether `value` is one of the values of `key` sent as `true` (`Args.ExactMatch`). True when `key` has no values. */
  matchesExact(key: string, value: string): boolean {
    const values = this.#fields.get(key);
    if (values === undefined || values.size === 0) return true;
    return values.get(value) === true;
  }

  /**
   * A true/false filter such as `dangling` (`Args.GetBoolOrDefault`): `undefined` when absent,
   * otherwise `true`/`1` or `false`/`0`. A key without values is refused as `Invalid filter 'dangling'`;
   * other values, or true and false at once, as dockerd 20.10 refuses a bad `dangling` value
   * (daemon/errors.go `invalidFilter`): `Invalid filter 'dangling=[yes]'`.
   */
  boolean(key: string): boolean | undefined {
    const values = this.#fields.get(key);
    if (values === undefined) return undefined;
    if (values.size === 0) throw errors.invalidArgument(`Invalid filter '${key}'`, { filter: key });
    const isTrue = values.get('true') === true || values.get('1') === true;
    const isFalse = values.get('false') === true || values.get('0') === true;
    if (isTrue === isFalse) throw errors.invalidArgument(`Invalid filter '${key}=[${this.values(key).join(' ')}]'`, { filter: key });
    return isTrue;
  }
}

/**
 * Reads the (already URL-decoded) `filters` query parameter: `{"key":{"value":true}}`, or the legacy
 * form `{"key":["value"]}` that dockerd still accepts. An absent or empty parameter filters nothing;
 * so does `null`, as in Go.
 *
 * @throws ShoalError INVALID_ARGUMENT for malformed JSON or a value of the wrong shape, with the
 *   message Go's json.Unmarshal gives for the current form (dockerd 20.10's `FromJSON` returns it
 *   unwrapped, as a 500; we answer 400 like later dockerd versions).
 */
export function parseFilters(raw: string | null | undefined): Filters {
  if (raw === null || raw === undefined || raw === '') return new Filters();
  const document = parseJsonDocument(raw);
  const current = readCurrentForm(document);
  if (!(current instanceof TypeMismatch)) return new Filters(current);
  const legacy = readLegacyForm(document);
  if (!(legacy instanceof TypeMismatch)) return new Filters(legacy);
  throw errors.invalidArgument(current.message);
}

type Fields = Map<string, Map<string, boolean>>;

/** Go's UnmarshalTypeError for a map or slice element, as a value: both forms are tried before one is reported. */
class TypeMismatch {
  readonly message: string;

  constructor(value: unknown, goType: string) {
    this.message = `json: cannot unmarshal ${jsonKindOf(value)} into Go value of type ${goType}`;
  }
}

/** `map[string]map[string]bool`, with Go's first type error on mismatch. */
function readCurrentForm(document: unknown): Fields | TypeMismatch {
  return readFields(document, 'map[string]map[string]bool', (values) => {
    if (!isObject(values)) return new TypeMismatch(values, 'map[string]bool');
    const set = new Map<string, boolean>();
    for (const [value, flag] of Object.entries(values)) {
      // Go leaves a bool at false for null.
      if (flag !== null && typeof flag !== 'boolean') return new TypeMismatch(flag, 'bool');
      set.set(value, flag === true);
    }
    return set;
  });
}

/** `map[string][]string` (API < 1.22 clients), every value implied `true`. */
function readLegacyForm(document: unknown): Fields | TypeMismatch {
  return readFields(document, 'map[string][]string', (values) => {
    if (!Array.isArray(values)) return new TypeMismatch(values, '[]string');
    const set = new Map<string, boolean>();
    for (const value of values as unknown[]) {
      // Go leaves a string element at "" for null.
      if (value !== null && typeof value !== 'string') return new TypeMismatch(value, 'string');
      set.set(value ?? '', true);
    }
    return set;
  });
}

/** Reads the outer map; `null` (the whole document or one key's values) stands for nothing, as in Go. */
function readFields(
  document: unknown,
  goType: string,
  readValues: (values: unknown) => Map<string, boolean> | TypeMismatch,
): Fields | TypeMismatch {
  const fields: Fields = new Map();
  if (document === null) return fields;
  if (!isObject(document)) return new TypeMismatch(document, goType);
  for (const [key, values] of Object.entries(document)) {
    const set = values === null ? new Map<string, boolean>() : readValues(values);
    if (set instanceof TypeMismatch) return set;
    fields.set(key, set);
  }
  return fields;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Go's name for the kind of a JSON value in unmarshal errors. */
function jsonKindOf(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number' || typeof value === 'string') return typeof value;
  return 'object';
}
