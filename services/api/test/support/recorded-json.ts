import { expect } from 'vitest';
import type { Meta } from '@shoal/proto';
import { dockerTime } from '../../src/convert/wire.js';
import { type Exchange, listTranscripts, readTranscript } from './transcripts.js';

/** An exchange with the transcript it comes from. */
export interface RecordedExchange extends Exchange {
  transcript: string;
}

let everyExchange: RecordedExchange[] | undefined;

/**
 * Every recorded `method` to a path matching `path` (version prefix removed), across all
 * transcripts, in transcript order.
 */
export function recordedExchanges(method: string, path: RegExp): RecordedExchange[] {
  everyExchange ??= listTranscripts().flatMap((transcript) =>
    readTranscript(transcript).exchanges.map((exchange) => ({ ...exchange, transcript })),
  );
  return everyExchange.filter((exchange) => exchange.method === method && path.test(exchange.path));
}

/** The recorded JSON request bodies of `method path`, without repeats. */
export function recordedRequestBodies(method: string, path: RegExp): { transcript: string; body: unknown }[] {
  return withoutRepeats(
    recordedExchanges(method, path)
      .filter((exchange) => exchange.requestBody !== undefined && !exchange.requestBodyTruncated)
      .map((exchange) => ({ transcript: exchange.transcript, body: exchange.requestBody })),
  );
}

/** The objects of the successful, complete JSON responses to `GET path` (list items one by one), without repeats. */
export function recordedResponseObjects(path: RegExp): { transcript: string; body: Record<string, unknown> }[] {
  return withoutRepeats(
    recordedExchanges('GET', path)
      .filter((exchange) => exchange.status === 200 && !exchange.responseBodyTruncated && typeof exchange.responseBody === 'object')
      .flatMap((exchange) => {
        const body = exchange.responseBody as Record<string, unknown> | Record<string, unknown>[];
        return (Array.isArray(body) ? body : [body]).map((item) => ({ transcript: exchange.transcript, body: item }));
      }),
  );
}

/** The metadata every recorded swarm object starts with. */
export interface RecordedMeta {
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
}

/** The store's `Meta` behind the `Version`, `CreatedAt` and `UpdatedAt` of a recorded object. */
export function metaBehind(recorded: RecordedMeta): Meta {
  return { version: { index: BigInt(recorded.Version.Index) }, createdAt: new Date(recorded.CreatedAt), updatedAt: new Date(recorded.UpdatedAt) };
}

/** `value` as it goes over the wire: what JSON.stringify keeps (undefined fields dropped). */
export function wireJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/**
 * Where the JSON of `actual` differs in shape from a recorded body, as `$.Spec.Labels: …` lines:
 * both must have the same keys at every level and the same JSON types, except that null matches an
 * array or an object (Go's nil slices, maps and pointers print as null), and an empty object matches
 * any object (an empty Go map, or a struct whose fields are all omitted when empty). Array elements
 * are compared with the recorded element at the same index, or the last one, so lengths may differ.
 */
export function jsonShapeMismatches(actual: unknown, recorded: unknown, path = '$'): string[] {
  const wire = path === '$' ? wireJson(actual) : actual;
  const actualKind = jsonKind(wire);
  const recordedKind = jsonKind(recorded);
  if (actualKind !== recordedKind) {
    const nilMatch = (actualKind === 'null' && /^(array|object)$/.test(recordedKind)) || (recordedKind === 'null' && /^(array|object)$/.test(actualKind));
    return nilMatch ? [] : [`${path}: ${actualKind}, recorded ${recordedKind}`];
  }
  if (Array.isArray(wire) && Array.isArray(recorded)) {
    if (recorded.length === 0) return [];
    return wire.flatMap((item, index) => jsonShapeMismatches(item, recorded[Math.min(index, recorded.length - 1)], `${path}[${index}]`));
  }
  if (actualKind !== 'object') return [];
  const actualObject = wire as Record<string, unknown>;
  const recordedObject = recorded as Record<string, unknown>;
  if (Object.keys(actualObject).length === 0 || Object.keys(recordedObject).length === 0) return [];
  const keys = new Set([...Object.keys(actualObject), ...Object.keys(recordedObject)]);
  return [...keys].flatMap((key) => {
    if (!(key in recordedObject)) return [`${path}.${key}: not in the recording`];
    if (!(key in actualObject)) return [`${path}.${key}: missing`];
    return jsonShapeMismatches(actualObject[key], recordedObject[key], `${path}.${key}`);
  });
}

/**
 * Asserts that what Shoal printed for the store object behind a recorded body is that body: value
 * for value (timestamps at Shoal's millisecond precision), and so also key for key.
 */
export function expectPrintedAsRecorded(printed: unknown, recorded: unknown, transcript: string): void {
  expect(wireJson(printed), transcript).toEqual(atMillisecondPrecision(recorded));
  expect(jsonShapeMismatches(printed, recorded), transcript).toEqual([]);
}

const RFC3339_NANO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/;

/**
 * A recorded body with its timestamps cut to milliseconds, the precision of Shoal's timestamps, so
 * it can be compared value for value with what Shoal prints for the same instants.
 */
export function atMillisecondPrecision<T>(recorded: T): T {
  return JSON.parse(JSON.stringify(recorded), (_key, value: unknown) =>
    typeof value === 'string' && RFC3339_NANO.test(value) ? dockerTime(new Date(value)) : value,
  ) as T;
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function withoutRepeats<T extends { body: unknown }>(entries: T[]): T[] {
  const seen = new Set<string>();
  return entries.filter((entry) => {
    const key = JSON.stringify(entry.body);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
