/**
 * A JSON parser that keeps what JSON.parse throws away and Go's decoder uses: every key of an
 * object in order, duplicates included (a struct field given twice is decoded twice, a map
 * merges), and numbers as their text (int64 ranges are checked on the text). It never recurses,
 * so depth is only bounded by `maxDepth`; its errors have encoding/json's wording.
 *
 * Like json.Decoder.Decode (what dockerd calls), it reads the first value and ignores what follows.
 */
export type JsonNode =
  | { t: 'object'; entries: [string, JsonNode][] }
  | { t: 'array'; items: JsonNode[] }
  | { t: 'string'; v: string }
  | { t: 'number'; raw: string }
  | { t: 'bool'; v: boolean }
  | { t: 'null' };

/** A malformed body: `message` is Go's (`invalid character 'x' looking for beginning of value`). */
export class JsonSyntaxError extends Error {}

/** Go's json.Decoder answers io.EOF for a body without any value. */
export class JsonEmptyError extends Error {
  constructor() {
    super('EOF');
  }
}

/** Go's limit (encoding/json scanner maxNestingDepth). */
export const GO_MAX_DEPTH = 10000;

const isWs = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** strconv.Quote of one byte as Go's scanner shows it (`'x'`, `'\n'`, `'ï'`). */
function quoteChar(text: string, i: number): string {
  const ch = text[i];
  if (ch === "'") return "'\\''";
  if (ch === '"') return `'"'`;
  let code = ch.charCodeAt(0);
  // The scanner works on bytes: a non-ASCII character shows as its first UTF-8 byte.
  if (code > 0x7f) code = Buffer.from(String.fromCodePoint(text.codePointAt(i) ?? code))[0];
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 0x5c: '\\\\' };
  if (named[code]) return `'${named[code]}'`;
  if (code < 0x20 || code === 0x7f) return `'\\x${code.toString(16).padStart(2, '0')}'`;
  if (code >= 0x80 && code < 0xa0) return `'\\u00${code.toString(16)}'`;
  return `'${String.fromCharCode(code)}'`;
}

type Frame =
  | { t: 'object'; node: { t: 'object'; entries: [string, JsonNode][] }; key?: string }
  | { t: 'array'; node: { t: 'array'; items: JsonNode[] } };

export function parseJsonTree(text: string, maxDepth = GO_MAX_DEPTH): JsonNode {
  let i = 0;
  const n = text.length;
  const stack: Frame[] = [];
  const fail = (context: string): never => {
    if (i >= n) throw new JsonSyntaxError('unexpected EOF');
    throw new JsonSyntaxError(`invalid character ${quoteChar(text, i)} ${context}`);
  };
  const skipWs = () => {
    while (i < n && isWs(text.charCodeAt(i))) i++;
  };

  const readString = (): string => {
    // text[i] === '"'
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= n) fail('in string literal');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(start, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('in string literal');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(start, i);
      i++;
      if (i >= n) fail('in string escape code');
      const e = text[i];
      if (Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
        i++;
      } else if (e === 'u') {
        i++;
        for (let k = 0; k < 4; k++) {
          if (i + k >= n) {
            i += k;
            fail('in \\u hexadecimal character escape');
          }
          if (!isHex(text.charCodeAt(i + k))) {
            i += k;
            fail('in \\u hexadecimal character escape');
          }
        }
        out += String.fromCharCode(parseInt(text.slice(i, i + 4), 16));
        i += 4;
      } else {
        fail('in string escape code');
      }
      start = i;
    }
  };

  const readNumber = (): string => {
    const start = i;
    if (text[i] === '-') {
      i++;
      if (i >= n || !isDigit(text.charCodeAt(i))) fail('in numeric literal');
    }
    if (text[i] === '0') i++;
    else while (i < n && isDigit(text.charCodeAt(i))) i++;
    if (text[i] === '.') {
      i++;
      if (i >= n || !isDigit(text.charCodeAt(i))) fail('after decimal point in numeric literal');
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      if (i >= n || !isDigit(text.charCodeAt(i))) fail('in exponent of numeric literal');
      while (i < n && isDigit(text.charCodeAt(i))) i++;
    }
    return text.slice(start, i);
  };

  const readLiteral = (word: 'true' | 'false' | 'null'): void => {
    for (let k = 1; k < word.length; k++) {
      i++;
      if (text[i] !== word[k]) fail(`in literal ${word} (expecting '${word[k]}')`);
    }
    i++;
  };

  /** Reads one scalar or opens a container; returns the scalar, or undefined when it pushed a frame. */
  const beginValue = (): JsonNode | undefined => {
    skipWs();
    if (i >= n) fail('');
    const c = text[i];
    if (c === '{' || c === '[') {
      if (stack.length + 1 > maxDepth) fail('exceeded max depth');
      i++;
      if (c === '{') stack.push({ t: 'object', node: { t: 'object', entries: [] } });
      else stack.push({ t: 'array', node: { t: 'array', items: [] } });
      return undefined;
    }
    if (c === '"') return { t: 'string', v: readString() };
    if (c === '-' || (c >= '0' && c <= '9')) return { t: 'number', raw: readNumber() };
    if (c === 't') return readLiteral('true'), { t: 'bool', v: true };
    if (c === 'f') return readLiteral('false'), { t: 'bool', v: false };
    if (c === 'n') return readLiteral('null'), { t: 'null' };
    return fail('looking for beginning of value');
  };

  skipWs();
  if (i >= n) throw new JsonEmptyError();

  let value = beginValue();
  for (;;) {
    // Either a value just completed (attach it to the frame on top), or a frame was just opened.
    if (value !== undefined) {
      const top = stack[stack.length - 1];
      if (!top) return value;
      if (top.t === 'array') top.node.items.push(value);
      else top.node.entries.push([top.key as string, value]);
      // After a value inside a container: `,` or the closing bracket.
      skipWs();
      if (top.t === 'array') {
        if (text[i] === ',') {
          i++;
          value = beginValue();
          continue;
        }
        if (text[i] === ']') {
          i++;
          value = stack.pop()!.node;
          continue;
        }
        fail('after array element');
      } else {
        if (text[i] === ',') {
          i++;
          skipWs();
          if (text[i] !== '"') fail('looking for beginning of object key string');
          value = readKeyThenValue(top);
          continue;
        }
        if (text[i] === '}') {
          i++;
          value = stack.pop()!.node;
          continue;
        }
        fail('after object key:value pair');
      }
    }
    // A frame was just opened: it may close at once.
    const top = stack[stack.length - 1];
    skipWs();
    if (top.t === 'array') {
      if (text[i] === ']') {
        i++;
        value = stack.pop()!.node;
        continue;
      }
      value = beginValue();
    } else {
      if (text[i] === '}') {
        i++;
        value = stack.pop()!.node;
        continue;
      }
      if (text[i] !== '"') fail('looking for beginning of object key string');
      value = readKeyThenValue(top);
    }
  }

  function readKeyThenValue(top: Extract<Frame, { t: 'object' }>): JsonNode | undefined {
    top.key = readString();
    skipWs();
    if (text[i] !== ':') fail('after object key');
    i++;
    return beginValue();
  }
}
