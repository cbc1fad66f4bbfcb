import { describe, expect, it } from 'vitest';
import { Filters, parseFilters } from '../src/http/filters.js';
import { listTranscripts, readTranscript } from './support/transcripts.js';

/** Matches the INVALID_ARGUMENT ShoalError of a refusal, by its exact message or a pattern. */
const invalid = (message: string | RegExp) =>
  expect.objectContaining({ code: 'INVALID_ARGUMENT', message: typeof message === 'string' ? message : expect.stringMatching(message) });

describe('parseFilters', () => {
  it.each([null, undefined, ''])('reads %j as no filters, which match everything', (raw) => {
    const filters = parseFilters(raw);
    expect(filters.keys()).toEqual([]);
    expect(filters.matchesPrefix('name', 'web')).toBe(true);
    expect(filters.matchesLabels('label', {})).toBe(true);
    expect(filters.matchesExact('role', 'manager')).toBe(true);
  });

  it('reads the current form, a map of value sets', () => {
    const filters = parseFilters('{"desired-state":{"running":true},"node":{"plm4mybsj4rzwpzo2a7oe05kw":true}}');
    expect(filters.keys().sort()).toEqual(['desired-state', 'node']);
    expect(filters.values('desired-state')).toEqual(['running']);
    expect(filters.has('node')).toBe(true);
    expect(filters.has('service')).toBe(false);
    expect(filters.values('service')).toEqual([]);
  });

  it('reads the legacy form of value lists that dockerd still accepts', () => {
    const filters = parseFilters('{"name":["web","api"],"label":[]}');
    expect(filters.values('name')).toEqual(['web', 'api']);
    expect(filters.has('label')).toBe(true);
    expect(filters.values('label')).toEqual([]);
    expect(filters.matchesExact('name', 'api')).toBe(true);
  });

  it('reads null as Go does: no filters, a key without values, a false flag, an empty string', () => {
    expect(parseFilters('null').keys()).toEqual([]);
    expect(parseFilters('{"name":null}').values('name')).toEqual([]);
    const nullFlag = parseFilters('{"name":{"web":null}}');
    expect(nullFlag.values('name')).toEqual(['web']);
    expect(nullFlag.matchesExact('name', 'web')).toBe(false);
    expect(parseFilters('{"name":[null]}').values('name')).toEqual(['']);
  });

  it('parses every filters parameter the CLIs sent in the recorded transcripts', () => {
    const sent = listTranscripts().flatMap((name) =>
      readTranscript(name).exchanges.flatMap((exchange) => exchange.query.getAll('filters')),
    );
    expect(sent.length).toBeGreaterThan(100);
    for (const raw of sent) expect(parseFilters(raw).keys().length).toBeGreaterThan(0);
  });

  // Messages produced by Go 1.19 running dockerd 20.10's FromJSON (json.Unmarshal into
  // map[string]map[string]bool, then map[string][]string; the first attempt's error is returned).
  it.each([
    ['{"name":', 'unexpected end of JSON input'],
    ['{"name":{"web":true}}x', "invalid character 'x' after top-level value"],
    ['name=web', "invalid character 'a' in literal null (expecting 'u')"],
    ['[]', 'json: cannot unmarshal array into Go value of type map[string]map[string]bool'],
    ['"str"', 'json: cannot unmarshal string into Go value of type map[string]map[string]bool'],
    ['{"name":"web"}', 'json: cannot unmarshal string into Go value of type map[string]bool'],
    ['{"name":{"web":1}}', 'json: cannot unmarshal number into Go value of type bool'],
    ['{"name":{"web":"yes"}}', 'json: cannot unmarshal string into Go value of type bool'],
    ['{"name":["web",1]}', 'json: cannot unmarshal array into Go value of type map[string]bool'],
    ['{"a":{"x":true},"b":["y"]}', 'json: cannot unmarshal array into Go value of type map[string]bool'],
    ['{"a":{"b":{}}}', 'json: cannot unmarshal object into Go value of type bool'],
  ])('refuses %j with Go’s message', (raw, message) => {
    expect(() => parseFilters(raw)).toThrow(invalid(message));
  });
});

describe('Filters', () => {
  it('validateKeys refuses an unknown key with dockerd 20.10’s wording and accepts known ones', () => {
    const filters = parseFilters('{"name":{"web":true},"colour":{"red":true}}');
    expect(() => filters.validateKeys(['id', 'name', 'label'])).toThrow(invalid("Invalid filter 'colour'"));
    expect(() => filters.validateKeys(['name', 'colour'])).not.toThrow();
  });

  it('matchesPrefix matches a value as a prefix, any value being enough', () => {
    // service ls -f name=probe_svc matched probe_svc_20 and probe_svc_28 (docker-engine-api.md §2.2).
    const filters = parseFilters('{"name":{"probe_svc":true,"web":true}}');
    expect(filters.matchesPrefix('name', 'probe_svc_20')).toBe(true);
    expect(filters.matchesPrefix('name', 'web')).toBe(true);
    expect(filters.matchesPrefix('name', 'probe')).toBe(false);
    expect(filters.matchesPrefix('name', 'api')).toBe(false);
    expect(filters.matchesPrefix('id', 'anything')).toBe(true);
  });

  it('matchesLabels needs every value, each a label name or name=value', () => {
    const filters = parseFilters('{"label":{"com.docker.stack.namespace=probe_st28":true,"probe":true}}');
    expect(filters.matchesLabels('label', { 'com.docker.stack.namespace': 'probe_st28', probe: '' })).toBe(true);
    expect(filters.matchesLabels('label', { 'com.docker.stack.namespace': 'probe_st28', probe: '1', other: 'x' })).toBe(true);
    expect(filters.matchesLabels('label', { 'com.docker.stack.namespace': 'probe_st20', probe: '1' })).toBe(false);
    expect(filters.matchesLabels('label', { 'com.docker.stack.namespace': 'probe_st28' })).toBe(false);
    expect(filters.matchesLabels('label', {})).toBe(false);
  });

  it('matchesLabels reads only the first = as the separator and takes name= to mean an empty value', () => {
    const filters = parseFilters('{"label":{"a=b=c":true,"empty=":true}}');
    expect(filters.matchesLabels('label', { a: 'b=c', empty: '' })).toBe(true);
    expect(filters.matchesLabels('label', { a: 'b=c', empty: 'x' })).toBe(false);
  });

  it('matchesLabels does not mistake inherited properties for labels', () => {
    expect(parseFilters('{"label":{"toString":true}}').matchesLabels('label', { other: '1' })).toBe(false);
  });

  it('matchesExact needs one of the values exactly, and ignores values sent as false', () => {
    const filters = parseFilters('{"role":{"manager":true,"worker":false}}');
    expect(filters.matchesExact('role', 'manager')).toBe(true);
    expect(filters.matchesExact('role', 'manage')).toBe(false);
    expect(filters.matchesExact('role', 'worker')).toBe(false);
    expect(filters.values('role')).toEqual(['manager', 'worker']);
  });

  it.each([
    ['{"_up-to-date":{"true":true}}', true],
    ['{"_up-to-date":{"1":true}}', true],
    ['{"_up-to-date":{"false":true}}', false],
    ['{"_up-to-date":{"0":true}}', false],
    ['{"_up-to-date":{"true":true,"1":true}}', true],
  ])('boolean reads %j as %s', (raw, expected) => {
    expect(parseFilters(raw).boolean('_up-to-date')).toBe(expected);
  });

  it('boolean is undefined for an absent key', () => {
    expect(new Filters().boolean('dangling')).toBeUndefined();
  });

  it('boolean refuses other values, contradictions and no value with dockerd’s invalid filter wording', () => {
    expect(() => parseFilters('{"dangling":{"yes":true}}').boolean('dangling')).toThrow(invalid("Invalid filter 'dangling=[yes]'"));
    expect(() => parseFilters('{"dangling":{"true":true,"false":true}}').boolean('dangling')).toThrow(invalid("Invalid filter 'dangling=[true false]'"));
    expect(() => parseFilters('{"dangling":{"true":false}}').boolean('dangling')).toThrow(invalid("Invalid filter 'dangling=[true]'"));
    expect(() => parseFilters('{"dangling":[]}').boolean('dangling')).toThrow(invalid("Invalid filter 'dangling'"));
  });
});
