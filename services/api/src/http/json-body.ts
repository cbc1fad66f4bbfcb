import { errors } from '@shoal/errors';

/**
 * JSON input read the way dockerd reads it, so that malformed input is refused with the very message
 * Go's encoding/json gives, which the docker CLI prints verbatim (`Error response from daemon: invalid
 * character 'b' looking for beginning of object key string`).
 *
 * The grammar check is a port of Go's scanner (src/encoding/json/scanner.go): a byte-driven state
 * machine with an explicit stack, so a body nested a million levels deep costs memory proportional to
 * the limit, never call-stack depth. Once the scanner has accepted the text, `JSON.parse` builds the
 * value: both accept exactly the JSON grammar, and both let the last of duplicate keys win.
 */

/** Go's own nesting limit (scanner.go `maxNestingDepth`, allowed by RFC 7159 §9). */
export const GO_MAX_NESTING_DEPTH = 10_000;

export interface JsonParseOptions {
  /**
   * The deepest nesting of arrays and objects accepted; one level more fails with Go's
   * `invalid character '[' exceeded max depth`.
   * @default 10000 (Go's limit)
   */
  maxDepth?: number;
}

/**
 * Parses a request body as dockerd 20.10 does: `json.NewDecoder(r.Body).Decode(&v)`. The decoder
 * reads the first JSON value and ignores whatever follows it; input that ends inside a value fails
 * with `unexpected EOF`.
 *
 * @returns the value, or `undefined` when the body holds only whitespace (Go's `io.EOF`). Whether an
 *   empty body is allowed is the route's decision; {@link requireJsonBody} refuses it as dockerd does.
 * @throws ShoalError INVALID_ARGUMENT with Go's message for malformed input.
 */
export function parseJsonBody(text: string, options: JsonParseOptions = {}): unknown {
  const end = scanFirstValue(text, depthLimit(options));
  return end === undefined ? undefined : JSON.parse(text.slice(0, end));
}

/**
 * {@link parseJsonBody} for routes that need a body: an empty one is refused with dockerd 20.10's
 * message for `io.EOF` (api/server/router/swarm/cluster_routes.go, `got EOF while reading request body`).
 */
export function requireJsonBody(text: string, options: JsonParseOptions = {}): unknown {
  const value = parseJsonBody(text, options);
  if (value === undefined) throw errors.invalidArgument('got EOF while reading request body');
  return value;
}

/**
 * Parses text that must be exactly one JSON value, as Go's `json.Unmarshal` does (dockerd uses it for
 * the `filters` query parameter): anything but whitespace after the value fails with
 * `invalid character 'x' after top-level value`, and empty or cut-short text with
 * `unexpected end of JSON input`.
 *
 * @throws ShoalError INVALID_ARGUMENT with Go's message for malformed input.
 */
export function parseJsonDocument(text: string, options: JsonParseOptions = {}): unknown {
  checkValid(text, depthLimit(options));
  return JSON.parse(text);
}

function depthLimit(options: JsonParseOptions): number {
  return options.maxDepth ?? GO_MAX_NESTING_DEPTH;
}

/** Go's json.Decoder.readValue: the index just past the first value, or undefined for blank input. */
function scanFirstValue(text: string, maxDepth: number): number | undefined {
  const scanner = new Scanner(maxDepth);
  for (let i = 0; i < text.length; i++) {
    switch (scanner.step(scanner, byteAt(text, i))) {
      case Op.End:
        // The end of a value is only seen on the byte after it.
        return i;
      case Op.EndObject:
      case Op.EndArray:
        // A closing bracket can end the top-level value; Go asks with an invented space rather than
        // waiting for a byte that may never come.
        if (stateEndValue(scanner, SPACE) === Op.End) return i + 1;
        break;
      case Op.Error:
        throw syntaxError(scanner);
    }
  }
  if (scanner.step(scanner, SPACE) === Op.End) return text.length;
  if (/[^ \t\r\n]/.test(text)) throw errors.invalidArgument('unexpected EOF');
  return undefined;
}

/** Go's checkValid: the whole text must be one value surrounded by whitespace. */
function checkValid(text: string, maxDepth: number): void {
  const scanner = new Scanner(maxDepth);
  for (let i = 0; i < text.length; i++) {
    if (scanner.step(scanner, byteAt(text, i)) === Op.Error) throw syntaxError(scanner);
  }
  if (scanner.eof() === Op.Error) throw syntaxError(scanner);
}

function syntaxError(scanner: Scanner) {
  return errors.invalidArgument(scanner.error ?? 'invalid JSON');
}

/**
 * The byte Go's scanner would see at `text[index]`. Outside string literals every non-ASCII byte is
 * an error reported by the first byte of its UTF-8 sequence; inside them any byte of 0x80 or more is
 * accepted, so the lead byte stands in for the whole character. An unpaired surrogate stands for the
 * U+FFFD a UTF-8 decoder would have produced in its place.
 */
function byteAt(text: string, index: number): number {
  const codePoint = text.codePointAt(index) ?? 0;
  if (codePoint < 0x80) return codePoint;
  if (codePoint < 0x800) return 0xc0 | (codePoint >> 6);
  if (codePoint >= 0x10000) return 0xf0 | (codePoint >> 18);
  if (codePoint >= 0xdc00 && codePoint <= 0xdfff) {
    const pairedWithPrevious = index > 0 && (text.codePointAt(index - 1) ?? 0) >= 0x10000;
    return pairedWithPrevious ? UTF8_CONTINUATION : REPLACEMENT_LEAD;
  }
  if (codePoint >= 0xd800 && codePoint <= 0xdbff) return REPLACEMENT_LEAD;
  return 0xe0 | (codePoint >> 12);
}

const UTF8_CONTINUATION = 0x80;
/** The lead byte of U+FFFD (ef bf bd). */
const REPLACEMENT_LEAD = 0xef;

/** What a step reports to the loop driving the scanner (Go's scan* opcodes that matter here). */
const enum Op {
  Continue,
  EndObject,
  EndArray,
  /** The top-level value ended before the byte just passed in. */
  End,
  Error,
}

/** What the innermost open composite value is waiting for (Go's parse* states). */
const enum Parse {
  ObjectKey,
  ObjectValue,
  ArrayValue,
}

const SPACE = 0x20;

type Step = (scanner: Scanner, c: number) => Op;

class Scanner {
  step: Step = stateBeginValue;
  endTop = false;
  readonly parseState: Parse[] = [];
  error: string | undefined;
  /** The literal (`true`, `false`, `null`) being matched, and how much of it has been read. */
  literal = '';
  literalRead = 0;
  /** Hex digits still expected in a `\uXXXX` escape. */
  hexDigitsLeft = 0;

  constructor(readonly maxDepth: number) {}

  /** Go's scanner.eof: whether the input may end here, recording why not. */
  eof(): Op {
    if (this.error !== undefined) return Op.Error;
    if (this.endTop) return Op.End;
    this.step(this, SPACE);
    if (this.endTop) return Op.End;
    this.error ??= 'unexpected end of JSON input';
    return Op.Error;
  }

  /** Opens a composite value at the byte `c`, refusing one level deeper than the limit. */
  pushParseState(c: number, state: Parse): Op {
    this.parseState.push(state);
    return this.parseState.length <= this.maxDepth ? Op.Continue : this.fail(c, 'exceeded max depth');
  }

  popParseState(): void {
    this.parseState.pop();
    if (this.parseState.length === 0) {
      this.step = stateEndTop;
      this.endTop = true;
    } else {
      this.step = stateEndValue;
    }
  }

  /** Records Go's `invalid character …` error; every later byte fails too. */
  fail(c: number, context: string): Op {
    this.step = stateError;
    this.error = `invalid character ${quoteChar(c)} ${context}`;
    return Op.Error;
  }
}

/** Hands the next byte to `next`. */
function continueWith(s: Scanner, next: Step): Op {
  s.step = next;
  return Op.Continue;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** After `[`. */
function stateBeginValueOrEmpty(s: Scanner, c: number): Op {
  if (isSpace(c)) return Op.Continue;
  if (c === 0x5d /* ] */) return stateEndValue(s, c);
  return stateBeginValue(s, c);
}

/** At the start of input, after `:` and after `,` in an array. */
function stateBeginValue(s: Scanner, c: number): Op {
  if (isSpace(c)) return Op.Continue;
  switch (c) {
    case 0x7b /* { */:
      s.step = stateBeginStringOrEmpty;
      return s.pushParseState(c, Parse.ObjectKey);
    case 0x5b /* [ */:
      s.step = stateBeginValueOrEmpty;
      return s.pushParseState(c, Parse.ArrayValue);
    case 0x22 /* " */:
      return continueWith(s, stateInString);
    case 0x2d /* - */:
      return continueWith(s, stateNeg);
    case 0x30 /* 0 */:
      return continueWith(s, state0);
    case 0x74 /* t */:
      return beginLiteral(s, 'true');
    case 0x66 /* f */:
      return beginLiteral(s, 'false');
    case 0x6e /* n */:
      return beginLiteral(s, 'null');
  }
  if (c >= 0x31 && c <= 0x39) return continueWith(s, state1);
  return s.fail(c, 'looking for beginning of value');
}

/** After `{`. */
function stateBeginStringOrEmpty(s: Scanner, c: number): Op {
  if (isSpace(c)) return Op.Continue;
  if (c === 0x7d /* } */) {
    s.parseState[s.parseState.length - 1] = Parse.ObjectValue;
    return stateEndValue(s, c);
  }
  return stateBeginString(s, c);
}

/** After `{"key": value,`. */
function stateBeginString(s: Scanner, c: number): Op {
  if (isSpace(c)) return Op.Continue;
  if (c === 0x22 /* " */) return continueWith(s, stateInString);
  return s.fail(c, 'looking for beginning of object key string');
}

/** After a complete value, such as `{}`, `true` or `["x"`. */
function stateEndValue(s: Scanner, c: number): Op {
  const depth = s.parseState.length;
  if (depth === 0) {
    s.step = stateEndTop;
    s.endTop = true;
    return stateEndTop(s, c);
  }
  if (isSpace(c)) return continueWith(s, stateEndValue);
  switch (s.parseState[depth - 1]) {
    case Parse.ObjectKey:
      if (c === 0x3a /* : */) {
        s.parseState[depth - 1] = Parse.ObjectValue;
        return continueWith(s, stateBeginValue);
      }
      return s.fail(c, 'after object key');
    case Parse.ObjectValue:
      if (c === 0x2c /* , */) {
        s.parseState[depth - 1] = Parse.ObjectKey;
        return continueWith(s, stateBeginString);
      }
      if (c === 0x7d /* } */) {
        s.popParseState();
        return Op.EndObject;
      }
      return s.fail(c, 'after object key:value pair');
    default:
      if (c === 0x2c /* , */) return continueWith(s, stateBeginValue);
      if (c === 0x5d /* ] */) {
        s.popParseState();
        return Op.EndArray;
      }
      return s.fail(c, 'after array element');
  }
}

/** After the top-level value: only whitespace may follow, and the value is reported complete. */
function stateEndTop(s: Scanner, c: number): Op {
  // Go records the error for the next byte (or EOF) to report, but still reports the value's end,
  // which is how json.Decoder accepts `{} trailing`.
  if (!isSpace(c)) s.fail(c, 'after top-level value');
  return Op.End;
}

/** Inside a string literal. */
function stateInString(s: Scanner, c: number): Op {
  if (c === 0x22 /* " */) return continueWith(s, stateEndValue);
  if (c === 0x5c /* \ */) return continueWith(s, stateInStringEsc);
  if (c < 0x20) return s.fail(c, 'in string literal');
  return Op.Continue;
}

/** After `\` inside a string literal. */
function stateInStringEsc(s: Scanner, c: number): Op {
  switch (c) {
    case 0x62 /* b */:
    case 0x66 /* f */:
    case 0x6e /* n */:
    case 0x72 /* r */:
    case 0x74 /* t */:
    case 0x5c /* \ */:
    case 0x2f /* / */:
    case 0x22 /* " */:
      return continueWith(s, stateInString);
    case 0x75 /* u */:
      s.hexDigitsLeft = 4;
      return continueWith(s, stateInStringEscU);
  }
  return s.fail(c, 'in string escape code');
}

/** Inside the four hex digits of a `\u` escape. */
function stateInStringEscU(s: Scanner, c: number): Op {
  if (!isHexDigit(c)) return s.fail(c, 'in \\u hexadecimal character escape');
  s.hexDigitsLeft -= 1;
  if (s.hexDigitsLeft === 0) s.step = stateInString;
  return Op.Continue;
}

/** After `-` at the start of a number. */
function stateNeg(s: Scanner, c: number): Op {
  if (c === 0x30) return continueWith(s, state0);
  if (c >= 0x31 && c <= 0x39) return continueWith(s, state1);
  return s.fail(c, 'in numeric literal');
}

/** After a non-zero integer part, such as `1` or `100`. */
function state1(s: Scanner, c: number): Op {
  if (isDigit(c)) return Op.Continue;
  return state0(s, c);
}

/** After an integer part that is complete: `0`, or the digits `state1` has read. */
function state0(s: Scanner, c: number): Op {
  if (c === 0x2e /* . */) return continueWith(s, stateDot);
  if (c === 0x65 || c === 0x45 /* e E */) return continueWith(s, stateE);
  return stateEndValue(s, c);
}

/** After the decimal point, as in `1.`. */
function stateDot(s: Scanner, c: number): Op {
  if (isDigit(c)) return continueWith(s, stateDot0);
  return s.fail(c, 'after decimal point in numeric literal');
}

/** After fraction digits, as in `3.14`. */
function stateDot0(s: Scanner, c: number): Op {
  if (isDigit(c)) return Op.Continue;
  if (c === 0x65 || c === 0x45 /* e E */) return continueWith(s, stateE);
  return stateEndValue(s, c);
}

/** After the `e` of an exponent. */
function stateE(s: Scanner, c: number): Op {
  if (c === 0x2b || c === 0x2d /* + - */) return continueWith(s, stateESign);
  return stateESign(s, c);
}

/** Where the exponent's first digit must come, as after `314e-`. */
function stateESign(s: Scanner, c: number): Op {
  if (isDigit(c)) return continueWith(s, stateE0);
  return s.fail(c, 'in exponent of numeric literal');
}

/** After exponent digits, as in `3.14e0`. */
function stateE0(s: Scanner, c: number): Op {
  if (isDigit(c)) return Op.Continue;
  return stateEndValue(s, c);
}

function beginLiteral(s: Scanner, literal: 'true' | 'false' | 'null'): Op {
  s.literal = literal;
  s.literalRead = 1;
  return continueWith(s, stateInLiteral);
}

/** Inside `true`, `false` or `null` (Go's stateT … stateNul, one state per letter). */
function stateInLiteral(s: Scanner, c: number): Op {
  const expected = s.literal.charCodeAt(s.literalRead);
  if (c !== expected) return s.fail(c, `in literal ${s.literal} (expecting ${quoteChar(expected)})`);
  s.literalRead += 1;
  if (s.literalRead === s.literal.length) s.step = stateEndValue;
  return Op.Continue;
}

/** After an error: every further byte is an error too. */
function stateError(): Op {
  return Op.Error;
}

const goEscapes: Readonly<Record<number, string>> = {
  0x07: '\\a',
  0x08: '\\b',
  0x0c: '\\f',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x0b: '\\v',
  0x5c: '\\\\',
};

/**
 * A byte as Go's quoteChar formats it in scanner errors: `'\''` and `'"'` specially, otherwise the
 * body of `strconv.Quote(string(rune(c)))` in single quotes (`'x'`, `'\n'`, `'\x01'`, `'é'`). The bytes
 * this scanner can be shown are ASCII and UTF-8 lead bytes (0xc2–0xf4, all printable Latin-1 runes),
 * so only ASCII controls need the `\x` form.
 */
function quoteChar(c: number): string {
  if (c === 0x27) return `'\\''`;
  if (c === 0x22) return `'"'`;
  const escape = goEscapes[c];
  if (escape !== undefined) return `'${escape}'`;
  if (c < 0x20 || c === 0x7f) return `'\\x${c.toString(16).padStart(2, '0')}'`;
  return `'${String.fromCharCode(c)}'`;
}
