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
  const named: Record<number, string> = {
    7: '\\a',
    8: '\\b',
    9: '\\t',
    10: '\\n',
    11: '\\v',
    12: '\\f',
    13: '\\r',
    0x5c: '\\\\',
  };
  if (named[code]) return `'${named[code]}'`;
  if (code < 0x20 || code === 0x7f) return `'\\x${code.toString(16).padStart(2, '0')}'`;
  if (code >= 0x80 && code < 0xa0) return `'\\u00${code.toString(16)}'`;
  return `'${String.fromCharCode(code)}'`;
}

type Frame =
  | { t: 'object'; node: { t: 'object'; entries: [string, JsonNode][] }; key?: string }
  | { t: 'array'; node: { t: 'array'; items: JsonNode[] } };

export function parseJsonTree(text: string, maxDepth = GO_MAX_DEPTH): JsonNode {
  return new JsonTreeParser(text, maxDepth).parse();
}

/** One parse: a cursor over `text` and the stack of open containers (no recursion). */
class JsonTreeParser {
  private i = 0;
  private readonly n: number;
  private readonly stack: Frame[] = [];

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {
    this.n = text.length;
  }

  parse(): JsonNode {
    this.skipWs();
    if (this.i >= this.n) throw new JsonEmptyError();
    let value = this.beginValue();
    for (;;) {
      // Either a value just completed (attach it to the frame on top), or a frame was just opened.
      if (value !== undefined) {
        const top = this.stack[this.stack.length - 1];
        if (!top) return value;
        if (top.t === 'array') top.node.items.push(value);
        else top.node.entries.push([top.key as string, value]);
        value = this.afterMember(top);
      } else {
        value = this.afterOpen(this.stack[this.stack.length - 1]);
      }
    }
  }

  private fail(context: string): never {
    if (this.i >= this.n) throw new JsonSyntaxError('unexpected EOF');
    throw new JsonSyntaxError(`invalid character ${quoteChar(this.text, this.i)} ${context}`);
  }

  private skipWs(): void {
    while (this.i < this.n && isWs(this.text.charCodeAt(this.i))) this.i++;
  }

  /** Closes the frame on top when the cursor is on `close`; returns the finished container. */
  private close(close: string): JsonNode | undefined {
    if (this.text[this.i] !== close) return undefined;
    this.i++;
    return this.stack.pop()!.node;
  }

  /** After a value inside a container: `,` and the next member, or the closing bracket. */
  private afterMember(top: Frame): JsonNode | undefined {
    this.skipWs();
    if (top.t === 'array') {
      const closed = this.close(']');
      if (closed) return closed;
      if (this.text[this.i] !== ',') this.fail('after array element');
      this.i++;
      return this.beginValue();
    }
    const closed = this.close('}');
    if (closed) return closed;
    if (this.text[this.i] !== ',') this.fail('after object key:value pair');
    this.i++;
    this.skipWs();
    if (this.text[this.i] !== '"') this.fail('looking for beginning of object key string');
    return this.readKeyThenValue(top);
  }

  /** A frame was just opened: it may close at once. */
  private afterOpen(top: Frame): JsonNode | undefined {
    this.skipWs();
    if (top.t === 'array') return this.close(']') ?? this.beginValue();
    const closed = this.close('}');
    if (closed) return closed;
    if (this.text[this.i] !== '"') this.fail('looking for beginning of object key string');
    return this.readKeyThenValue(top);
  }

  private readKeyThenValue(top: Extract<Frame, { t: 'object' }>): JsonNode | undefined {
    top.key = this.readString();
    this.skipWs();
    if (this.text[this.i] !== ':') this.fail('after object key');
    this.i++;
    return this.beginValue();
  }

  /** Reads one scalar or opens a container; returns the scalar, or undefined when it pushed a frame. */
  private beginValue(): JsonNode | undefined {
    this.skipWs();
    if (this.i >= this.n) this.fail('');
    const c = this.text[this.i];
    if (c === '{' || c === '[') {
      if (this.stack.length + 1 > this.maxDepth) this.fail('exceeded max depth');
      this.i++;
      if (c === '{') this.stack.push({ t: 'object', node: { t: 'object', entries: [] } });
      else this.stack.push({ t: 'array', node: { t: 'array', items: [] } });
      return undefined;
    }
    if (c === '"') return { t: 'string', v: this.readString() };
    if (c === '-' || (c >= '0' && c <= '9')) return { t: 'number', raw: this.readNumber() };
    if (c === 't') return (this.readLiteral('true'), { t: 'bool', v: true });
    if (c === 'f') return (this.readLiteral('false'), { t: 'bool', v: false });
    if (c === 'n') return (this.readLiteral('null'), { t: 'null' });
    return this.fail('looking for beginning of value');
  }

  private readString(): string {
    const { text, n } = this;
    this.i++; // the opening quote
    let out = '';
    let start = this.i;
    for (;;) {
      if (this.i >= n) this.fail('in string literal');
      const c = text.charCodeAt(this.i);
      if (c === 0x22) {
        out += text.slice(start, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.fail('in string literal');
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += text.slice(start, this.i);
      this.i++;
      out += this.readEscape();
      start = this.i;
    }
  }

  /** The escape after a backslash (the cursor is on the character after it). */
  private readEscape(): string {
    const { text, n } = this;
    if (this.i >= n) this.fail('in string escape code');
    const e = text[this.i];
    if (Object.hasOwn(ESCAPES, e)) {
      this.i++;
      return ESCAPES[e];
    }
    if (e !== 'u') this.fail('in string escape code');
    this.i++;
    for (let k = 0; k < 4; k++) {
      if (this.i + k >= n || !isHex(text.charCodeAt(this.i + k))) {
        this.i += k;
        this.fail('in \\u hexadecimal character escape');
      }
    }
    const ch = String.fromCharCode(parseInt(text.slice(this.i, this.i + 4), 16));
    this.i += 4;
    return ch;
  }

  private skipDigits(): void {
    while (this.i < this.n && isDigit(this.text.charCodeAt(this.i))) this.i++;
  }

  private readNumber(): string {
    const { text, n } = this;
    const start = this.i;
    if (text[this.i] === '-') {
      this.i++;
      if (this.i >= n || !isDigit(text.charCodeAt(this.i))) this.fail('in numeric literal');
    }
    if (text[this.i] === '0') this.i++;
    else this.skipDigits();
    if (text[this.i] === '.') {
      this.i++;
      if (this.i >= n || !isDigit(text.charCodeAt(this.i))) this.fail('after decimal point in numeric literal');
      this.skipDigits();
    }
    if (text[this.i] === 'e' || text[this.i] === 'E') {
      this.i++;
      if (text[this.i] === '+' || text[this.i] === '-') this.i++;
      if (this.i >= n || !isDigit(text.charCodeAt(this.i))) this.fail('in exponent of numeric literal');
      this.skipDigits();
    }
    return text.slice(start, this.i);
  }

  private readLiteral(word: 'true' | 'false' | 'null'): void {
    for (let k = 1; k < word.length; k++) {
      this.i++;
      if (this.text[this.i] !== word[k]) this.fail(`in literal ${word} (expecting '${word[k]}')`);
    }
    this.i++;
  }
}
