import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GO_MAX_NESTING_DEPTH, parseJsonBody, parseJsonDocument, requireJsonBody } from '../src/http/json-body.js';

/** Matches the INVALID_ARGUMENT ShoalError of a refusal, by its exact message or a pattern. */
const invalid = (message: string | RegExp) =>
  expect.objectContaining({ code: 'INVALID_ARGUMENT', message: typeof message === 'string' ? message : expect.stringMatching(message) });

// Every expected message below was produced by Go 1.19's encoding/json for the same input
// (json.Unmarshal into interface{}, and json.NewDecoder(…).Decode for request bodies); the contexts
// come from src/encoding/json/scanner.go and the quoting from its quoteChar.
describe('parseJsonDocument (json.Unmarshal)', () => {
  it.each([
    ['{bad', "invalid character 'b' looking for beginning of object key string"],
    ['}', "invalid character '}' looking for beginning of value"],
    ['[1,]', "invalid character ']' looking for beginning of value"],
    ['{"a" 1}', "invalid character '1' after object key"],
    ['{"a":1 "b":2}', `invalid character '"' after object key:value pair`],
    ['[1 2]', "invalid character '2' after array element"],
    ['{}x', "invalid character 'x' after top-level value"],
    ['{"a":1} {"b":2}', "invalid character '{' after top-level value"],
    ['1.5.2', "invalid character '.' after top-level value"],
    ['01', "invalid character '1' after top-level value"],
    ['"a\x01b"', "invalid character '\\x01' in string literal"],
    ['"a\nb"', "invalid character '\\n' in string literal"],
    ['"\\x"', "invalid character 'x' in string escape code"],
    ['"\\u12g4"', "invalid character 'g' in \\u hexadecimal character escape"],
    ['-x', "invalid character 'x' in numeric literal"],
    ['1.x', "invalid character 'x' after decimal point in numeric literal"],
    ['1e+x', "invalid character 'x' in exponent of numeric literal"],
    ['tRue', "invalid character 'R' in literal true (expecting 'r')"],
    ['trX', "invalid character 'X' in literal true (expecting 'u')"],
    ['falsy', "invalid character 'y' in literal false (expecting 'e')"],
    ['nUll', "invalid character 'U' in literal null (expecting 'u')"],
    ['nulx', "invalid character 'x' in literal null (expecting 'l')"],
  ])('refuses %j with Go’s message', (input, message) => {
    expect(() => parseJsonDocument(input)).toThrow(invalid(message));
  });

  it.each([
    ['', 'unexpected end of JSON input'],
    [' \n\t', 'unexpected end of JSON input'],
    ['{"a":', 'unexpected end of JSON input'],
    ['"abc', 'unexpected end of JSON input'],
    // At the end Go feeds the scanner one space, so a half-read literal or number fails on ' '.
    ['tr', "invalid character ' ' in literal true (expecting 'u')"],
    ['-', "invalid character ' ' in numeric literal"],
    ['1.', "invalid character ' ' after decimal point in numeric literal"],
    ['1e', "invalid character ' ' in exponent of numeric literal"],
    ['"\\', "invalid character ' ' in string escape code"],
    ['"\\u', "invalid character ' ' in \\u hexadecimal character escape"],
  ])('refuses %j, which ends too soon, with Go’s message', (input, message) => {
    expect(() => parseJsonDocument(input)).toThrow(invalid(message));
  });

  it.each([
    ["'", "'\\''"],
    ['\\', "'\\\\'"],
    ['\x00', "'\\x00'"],
    ['\x1f', "'\\x1f'"],
    ['\x7f', "'\\x7f'"],
    ['\x07', "'\\a'"],
    ['\x08', "'\\b'"],
    ['\x0b', "'\\v'"],
    ['\x0c', "'\\f'"],
    // Non-ASCII is reported by the first byte of its UTF-8 encoding, as a Latin-1 rune.
    ['é', "'Ã'"],
    ['\u00a0', "'Â'"],
    ['\ufeff', "'ï'"],
    ['😀', "'ð'"],
  ])('quotes the character %j as Go’s quoteChar does (%s)', (input, quoted) => {
    expect(() => parseJsonDocument(`[${input}]`)).toThrow(invalid(`invalid character ${quoted} looking for beginning of value`));
  });

  it('reports a quote inside an unclosed \\u escape as Go does', () => {
    expect(() => parseJsonDocument('"\\u12"')).toThrow(invalid(`invalid character '"' in \\u hexadecimal character escape`));
  });

  it('builds the value Go would, with the last of duplicate keys winning', () => {
    expect(parseJsonDocument(' {"a" : [1, 2.5e1, {"b": null}], "c": "\\u00e9\\n", "a": true} ')).toEqual({ a: true, c: 'é\n' });
    expect(parseJsonDocument('{"é":"😀"}')).toEqual({ é: '😀' });
    expect(parseJsonDocument('-0.5E-3')).toBe(-0.0005);
  });

  it('accepts exactly the text JSON.parse accepts, which implements the same grammar', () => {
    const jsonish = fc.string({ unit: fc.constantFrom(...'{}[]":,-+.0129eEtrufalsn \t\n\\/u'.split(''), '\x01', 'é'), maxLength: 12 });
    fc.assert(
      fc.property(jsonish, (text) => {
        let accepted = true;
        try {
          JSON.parse(text);
        } catch {
          accepted = false;
        }
        if (accepted) expect(() => parseJsonDocument(text)).not.toThrow();
        else expect(() => parseJsonDocument(text)).toThrow(invalid(/./));
      }),
      { numRuns: 3000 },
    );
  });

  it('reads every JSON document to the value JSON.parse builds', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        expect(parseJsonDocument(text)).toEqual(JSON.parse(text));
      }),
    );
  });
});

describe('parseJsonBody (json.Decoder, as dockerd 20.10 reads request bodies)', () => {
  it('refuses the recorded bad body with the message dockerd printed', () => {
    // docker-engine-api.md §2.1: `bad JSON body | 400 | invalid character 'b' looking for beginning of object key string`.
    expect(() => parseJsonBody('{bad')).toThrow(invalid("invalid character 'b' looking for beginning of object key string"));
  });

  it('reads the first value and ignores what follows it, as Decode does', () => {
    expect(parseJsonBody('{"Name":"web"} trailing')).toEqual({ Name: 'web' });
    expect(parseJsonBody('{}}')).toEqual({});
    expect(parseJsonBody('[1]]')).toEqual([1]);
    expect(parseJsonBody('12x')).toBe(12);
    expect(parseJsonBody('"abc"x')).toBe('abc');
    expect(parseJsonBody('true false')).toBe(true);
  });

  it.each(['{', '{"a":', '{"a":1', '"abc', 'tr', '-', '1.'])('refuses %j, which ends inside a value, with Go’s unexpected EOF', (input) => {
    expect(() => parseJsonBody(input)).toThrow(invalid('unexpected EOF'));
  });

  it('still refuses a syntax error inside the first value', () => {
    expect(() => parseJsonBody('{"a":1 "b":2}')).toThrow(invalid(`invalid character '"' after object key:value pair`));
  });

  it('returns undefined for a body of only whitespace (Go’s io.EOF), leaving the route to decide', () => {
    expect(parseJsonBody('')).toBeUndefined();
    expect(parseJsonBody(' \r\n\t')).toBeUndefined();
  });

  it('requireJsonBody refuses an empty body with dockerd 20.10’s message and passes values through', () => {
    expect(() => requireJsonBody('  ')).toThrow(invalid('got EOF while reading request body'));
    expect(requireJsonBody('{"Name":"x"}')).toEqual({ Name: 'x' });
    expect(requireJsonBody('null')).toBeNull();
  });
});

describe('nesting depth', () => {
  it('accepts Go’s limit of 10000 levels and refuses one more with Go’s message', () => {
    const atLimit = '['.repeat(GO_MAX_NESTING_DEPTH) + ']'.repeat(GO_MAX_NESTING_DEPTH);
    expect(Array.isArray(parseJsonBody(atLimit))).toBe(true);
    const beyond = '['.repeat(GO_MAX_NESTING_DEPTH + 1) + ']'.repeat(GO_MAX_NESTING_DEPTH + 1);
    expect(() => parseJsonBody(beyond)).toThrow(invalid("invalid character '[' exceeded max depth"));
    expect(() => parseJsonDocument('{"a":'.repeat(GO_MAX_NESTING_DEPTH + 1))).toThrow(invalid("invalid character '{' exceeded max depth"));
  });

  it('honours a smaller limit chosen by the server', () => {
    expect(parseJsonBody(`${'{"a":'.repeat(63)}1${'}'.repeat(63)}`, { maxDepth: 64 })).toBeTypeOf('object');
    expect(() => parseJsonBody('['.repeat(65), { maxDepth: 64 })).toThrow(invalid("invalid character '[' exceeded max depth"));
  });

  it('refuses a body nested a million levels deep without exhausting the stack', () => {
    expect(() => parseJsonBody('['.repeat(1_000_000))).toThrow(invalid("invalid character '[' exceeded max depth"));
  });

  it('scans deep nesting iteratively when the limit allows it', () => {
    const depth = 200_000;
    let value = parseJsonBody('['.repeat(depth) + ']'.repeat(depth), { maxDepth: depth });
    let levels = 0;
    while (Array.isArray(value) && value.length > 0) {
      value = value[0];
      levels++;
    }
    expect(levels).toBe(depth - 1);
  });
});
