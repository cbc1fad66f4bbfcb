import { errors } from '@shoal/errors';

/**
 * Typed reading of a parsed JSON request body with the semantics of Go's encoding/json, which the
 * docker CLI was written against: unknown fields are ignored, `null` leaves a field at its zero
 * value, keys match case-insensitively, and a value of the wrong type is refused with Go's message
 * (`json: cannot unmarshal string into Go struct field ServiceSpec.Mode.Replicated.Replicas of type
 * uint64`), which the CLI prints verbatim.
 */
export class Decoder {
  readonly #fields: Record<string, unknown>;
  readonly #rootStruct: string;
  readonly #path: string;

  private constructor(fields: Record<string, unknown>, rootStruct: string, path: string) {
    this.#fields = fields;
    this.#rootStruct = rootStruct;
    this.#path = path;
  }

  /**
   * Reads `value` as a JSON object standing for the Go struct `rootStruct` of package `goPackage`
   * (both named in errors, as Go names them). `null` reads as an empty object, as Go leaves the
   * struct at its zero value.
   */
  static root(value: unknown, rootStruct: string, goPackage = 'swarm'): Decoder {
    if (value === null || value === undefined) return new Decoder({}, rootStruct, '');
    if (!isPlainObject(value)) throw unmarshalError(value, `Go value of type ${goPackage}.${rootStruct}`);
    return new Decoder(value, rootStruct, '');
  }

  /** The raw value of `key`, `undefined` when absent or null. */
  raw(key: string): unknown {
    const value = lookup(this.#fields, key);
    return value === null ? undefined : value;
  }

  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  string(key: string): string | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw this.#typeError(key, value, 'string');
    return value;
  }

  boolean(key: string): boolean | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') throw this.#typeError(key, value, 'bool');
    return value;
  }

  /** A signed integer that fits `goType` (`int`, `int64`, `int32`, `uint32` …); JSON numbers beyond 2^53 lose precision as in any JS parser. */
  integer(key: string, goType: IntegerType = 'int64'): number | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (typeof value !== 'number') throw this.#typeError(key, value, goType);
    const [minimum, maximum] = integerRanges[goType];
    if (!Number.isInteger(value) || value < minimum || value > maximum) throw this.#typeError(key, value, goType, `number ${value}`);
    return value;
  }

  /** A uint64 as a bigint (store fields are uint64). */
  uint64(key: string): bigint | undefined {
    const value = this.integer(key, 'uint64');
    return value === undefined ? undefined : BigInt(value);
  }

  stringArray(key: string): string[] | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) throw this.#typeError(key, value, '[]string');
    return value.map((item) => {
      if (typeof item !== 'string') throw this.#typeError(key, item, 'string');
      return item;
    });
  }

  /** A `map[string]string` such as Labels; `null` and absence both read as `undefined`. */
  stringMap(key: string): Record<string, string> | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (!isPlainObject(value)) throw this.#typeError(key, value, 'map[string]string');
    const result: Record<string, string> = {};
    for (const [name, item] of Object.entries(value)) {
      if (typeof item !== 'string') throw this.#typeError(key, item, 'string');
      result[name] = item;
    }
    return result;
  }

  /** A nested struct; `undefined` when absent or null. `goType` names it in errors. */
  object(key: string, goType: string): Decoder | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (!isPlainObject(value)) throw this.#typeError(key, value, goType);
    return new Decoder(value, this.#rootStruct, this.#join(key));
  }

  /** A slice of structs; `undefined` when absent or null. */
  objectArray(key: string, goType: string): Decoder[] | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) throw this.#typeError(key, value, `[]${goType}`);
    return value.map((item) => {
      if (item === null) return new Decoder({}, this.#rootStruct, this.#join(key));
      if (!isPlainObject(item)) throw this.#typeError(key, item, goType);
      return new Decoder(item, this.#rootStruct, this.#join(key));
    });
  }

  /** A `map[string]struct`; `undefined` when absent or null. */
  objectMap(key: string, goType: string): Map<string, Decoder> | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (!isPlainObject(value)) throw this.#typeError(key, value, `map[string]${goType}`);
    const result = new Map<string, Decoder>();
    for (const [name, item] of Object.entries(value)) {
      if (item !== null && !isPlainObject(item)) throw this.#typeError(key, item, goType);
      result.set(name, new Decoder(item ?? {}, this.#rootStruct, this.#join(key)));
    }
    return result;
  }

  /** The field's path for messages: `ServiceSpec.TaskTemplate.ContainerSpec.Image`. */
  pathOf(key: string): string {
    return `${this.#rootStruct}.${this.#join(key)}`;
  }

  #join(key: string): string {
    return this.#path === '' ? key : `${this.#path}.${key}`;
  }

  #typeError(key: string, value: unknown, goType: string, described = jsonKindOf(value)) {
    return unmarshalError(value, `Go struct field ${this.pathOf(key)} of type ${goType}`, described);
  }
}

export type IntegerType = 'int' | 'int64' | 'int32' | 'uint32' | 'uint64' | 'uint16' | 'uint8';

const integerRanges: Record<IntegerType, [number, number]> = {
  int: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  uint16: [0, 2 ** 16 - 1],
  uint8: [0, 2 ** 8 - 1],
};

function unmarshalError(value: unknown, into: string, described = jsonKindOf(value)) {
  return errors.invalidArgument(`json: cannot unmarshal ${described} into ${into}`);
}

/** Go's name for the kind of a JSON value, as its unmarshal errors print it. */
function jsonKindOf(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'bool';
    default:
      return 'object';
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function lookup(fields: Record<string, unknown>, key: string): unknown {
  if (Object.hasOwn(fields, key)) return fields[key];
  const folded = key.toLowerCase();
  for (const [name, value] of Object.entries(fields)) {
    if (name.toLowerCase() === folded) return value;
  }
  return undefined;
}
