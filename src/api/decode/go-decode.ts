/**
 * Go's encoding/json Unmarshal, on a parsed tree and a schema of Docker's types:
 * - a struct field matches its key exactly, else case-insensitively (the first field in Go's
 *   order wins); unknown keys are ignored; the result uses the canonical names;
 * - keys of maps (Labels, Options, DriverOpts…) are kept exactly as sent;
 * - a key given twice is decoded twice, in order: the last scalar wins, a struct or map given
 *   again is decoded into what the first one made (Go merges them), a slice is replaced;
 * - null leaves a scalar as it was and empties a struct, slice, map or interface (absent);
 * - a value of the wrong type, a fraction or an out-of-range number for an integer, bad base64
 *   for []byte: the first such error in document order, worded as Go words it.
 */
import type { IntKind, Schema, TypeNode } from './schema.js';
import type { JsonNode } from './json-tree.js';

/** A value that does not fit the Go type: `message` is Go's. */
export class JsonTypeError extends Error {}

/** Returned for a value that leaves its field absent. */
const ABSENT = Symbol('absent');
type Decoded = unknown | typeof ABSENT;

/** What Go's errorContext holds: the innermost struct's type name and the field path. */
interface Where {
  struct?: string;
  stack: string[];
}

const RANGES: Record<IntKind, [bigint, bigint]> = {
  int: [-(2n ** 63n), 2n ** 63n - 1n],
  int8: [-128n, 127n],
  int16: [-32768n, 32767n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint: [0n, 2n ** 64n - 1n],
  uint8: [0n, 255n],
  uint16: [0n, 65535n],
  uint32: [0n, 2n ** 32n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};
const FLOAT32_MAX = 3.4028234663852886e38;

/** Go's name for the kind of JSON value in an UnmarshalTypeError. */
const valueName = (n: JsonNode): string => (n.t === 'bool' ? 'bool' : n.t);

/** Go's case folding of a key against ASCII field names (Kelvin sign and long s fold to k and s). */
const fold = (s: string): string =>
  s
    .replace(/\u212a/g, 'k')
    .replace(/\u017f/g, 's')
    .replace(/[A-Z]/g, (c) => c.toLowerCase());

/** Sets an own property whatever the key (`__proto__` included), as a map entry must be. */
function setKey(o: Record<string, unknown>, key: string, value: unknown): void {
  // Only `__proto__` is special on assignment; defineProperty for all keys is many times slower.
  if (key === '__proto__')
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

export class GoDecoder {
  /** Folded field names per struct node, computed once. */
  private readonly folded = new WeakMap<object, Map<string, string>>();

  constructor(private readonly schema: Schema) {}

  /** Decodes `root` as the schema type `name`; a JSON null is the zero value (an empty object). */
  decode(root: JsonNode, name: string): Record<string, unknown> {
    const type = this.schema.defs[name];
    if (!type) throw new Error(`no schema type ${name}`);
    const v = this.value(root, type, undefined, { stack: [] });
    return v === ABSENT ? {} : (v as Record<string, unknown>);
  }

  /** reflect.Type.String() of a schema type, as Go prints it in errors. */
  goType(t: TypeNode): string {
    switch (t.k) {
      case 'string':
        return t.go ?? 'string';
      case 'bool':
        return 'bool';
      case 'int':
        return t.name ?? t.go;
      case 'float':
        return t.go;
      case 'any':
        return 'interface {}';
      case 'empty':
        return t.go;
      case 'strslice':
        return 'strslice.StrSlice';
      case 'bytes':
        return '[]uint8';
      case 'slice':
        return `[]${this.goType(t.of)}`;
      case 'map':
        return `map[string]${this.goType(t.of)}`;
      case 'ref':
        return this.goType(this.resolve(t));
      case 'struct':
        return t.go;
    }
  }

  private resolve(t: TypeNode): Exclude<TypeNode, { k: 'ref' }> {
    while (t.k === 'ref') {
      const next = this.schema.defs[t.name];
      if (!next) throw new Error(`no schema type ${t.name}`);
      t = next;
    }
    return t;
  }

  private typeError(value: string, typeName: string, where: Where): JsonTypeError {
    if (where.struct !== undefined || where.stack.length) {
      return new JsonTypeError(
        `json: cannot unmarshal ${value} into Go struct field ${where.struct ?? ''}.${where.stack.join('.')} of type ${typeName}`,
      );
    }
    return new JsonTypeError(`json: cannot unmarshal ${value} into Go value of type ${typeName}`);
  }

  private value(n: JsonNode, type: TypeNode, prev: unknown, where: Where): Decoded {
    const t = this.resolve(type);
    if (n.t === 'null') {
      // Go: null is a no-op for a scalar, and sets a pointer, slice, map or interface to nil.
      if (t.k === 'string' || t.k === 'bool' || t.k === 'int' || t.k === 'float')
        return prev === undefined ? ABSENT : prev;
      return ABSENT;
    }
    switch (t.k) {
      case 'string':
        if (n.t === 'string') return n.v;
        throw this.typeError(valueName(n), this.goType(t), where);
      case 'bool':
        if (n.t === 'bool') return n.v;
        throw this.typeError(valueName(n), this.goType(t), where);
      case 'int':
        if (n.t !== 'number') throw this.typeError(valueName(n), this.goType(t), where);
        return this.int(n.raw, t.go, this.goType(t), where);
      case 'float': {
        if (n.t !== 'number') throw this.typeError(valueName(n), this.goType(t), where);
        const f = Number(n.raw);
        if (!Number.isFinite(f) || (t.go === 'float32' && Math.abs(f) > FLOAT32_MAX))
          throw this.typeError(`number ${n.raw}`, t.go, where);
        return f;
      }
      case 'any':
        return this.plain(n, where);
      case 'empty':
        if (n.t === 'object') return {};
        throw this.typeError(valueName(n), t.go, where);
      case 'strslice':
        return this.strslice(n, where);
      case 'bytes':
        if (n.t !== 'string') throw this.typeError(valueName(n), '[]uint8', where);
        return base64(n.v);
      case 'slice': {
        if (n.t !== 'array') throw this.typeError(valueName(n), this.goType(t), where);
        // Go decodes element i into the old element i (if any), then cuts the slice to length.
        const old = Array.isArray(prev) ? prev : [];
        return n.items.map((item, i) => {
          const v = this.value(item, t.of, old[i], where);
          return v === ABSENT ? this.zero(t.of) : v;
        });
      }
      case 'map': {
        if (n.t !== 'object') throw this.typeError(valueName(n), this.goType(t), where);
        // Go reuses an existing map (a second `"Labels"` adds to the first); each value starts from zero.
        const out =
          prev !== null && typeof prev === 'object' && !Array.isArray(prev) ? (prev as Record<string, unknown>) : {};
        for (const [key, item] of n.entries) {
          const v = this.value(item, t.of, undefined, where);
          setKey(out, key, v === ABSENT ? this.zero(t.of) : v);
        }
        return out;
      }
      case 'struct': {
        if (n.t !== 'object') throw this.typeError(valueName(n), t.go, where);
        const out =
          prev !== null && typeof prev === 'object' && !Array.isArray(prev) ? (prev as Record<string, unknown>) : {};
        const short = t.go.slice(t.go.lastIndexOf('.') + 1);
        for (const [key, item] of n.entries) {
          const name = this.field(t, key);
          if (name === undefined) continue;
          const v = this.value(item, t.fields[name], out[name], { struct: short, stack: [...where.stack, name] });
          if (v === ABSENT) delete out[name];
          else out[name] = v;
        }
        return out;
      }
    }
  }

  /** The canonical field a key names: exact match first, then Go's case-insensitive match. */
  private field(t: Extract<TypeNode, { k: 'struct' }>, key: string): string | undefined {
    if (Object.hasOwn(t.fields, key)) return key;
    let byFold = this.folded.get(t);
    if (!byFold) {
      byFold = new Map();
      for (const f of Object.keys(t.fields)) if (!byFold.has(fold(f))) byFold.set(fold(f), f);
      this.folded.set(t, byFold);
    }
    return byFold.get(fold(key));
  }

  private int(raw: string, kind: IntKind, typeName: string, where: Where): number {
    // strconv.ParseInt/ParseUint: digits only (no fraction, no exponent), then the range of the kind.
    const [lo, hi] = RANGES[kind];
    // ParseUint takes no sign at all, not even "-0".
    if (!/^-?\d+$/.test(raw) || (kind.startsWith('u') && raw.startsWith('-')))
      throw this.typeError(`number ${raw}`, typeName, where);
    const b = BigInt(raw);
    if (b < lo || b > hi) throw this.typeError(`number ${raw}`, typeName, where);
    return Number(b);
  }

  /**
   * strslice.StrSlice.UnmarshalJSON: an array of strings, else one string. Its error is the one
   * of json.Unmarshal into a string, to which Go then adds the field's context.
   */
  private strslice(n: JsonNode, where: Where): string[] {
    if (n.t === 'string') return [n.v];
    if (n.t === 'array' && n.items.every((i) => i.t === 'string' || i.t === 'null')) {
      return n.items.map((i) => (i.t === 'string' ? i.v : ''));
    }
    throw this.typeError(valueName(n), 'string', where);
  }

  /** The zero value Go stores for a null map entry or slice element. */
  private zero(type: TypeNode): unknown {
    const t = this.resolve(type);
    if (t.k === 'string') return '';
    if (t.k === 'bool') return false;
    if (t.k === 'int' || t.k === 'float') return 0;
    // A null element of []swarm.PortConfig etc. is Go's zero struct, never a nil the readers trip on.
    if (t.k === 'empty' || t.k === 'struct') return {};
    return null;
  }

  /** interface{}: the value as Go's decoder builds it (numbers as float64, last duplicate wins). */
  private plain(n: JsonNode, where: Where): unknown {
    switch (n.t) {
      case 'object': {
        const o: Record<string, unknown> = {};
        for (const [k, v] of n.entries) setKey(o, k, this.plain(v, where));
        return o;
      }
      case 'array':
        return n.items.map((i) => this.plain(i, where));
      case 'string':
        return n.v;
      case 'bool':
        return n.v;
      case 'null':
        return null;
      case 'number': {
        const f = Number(n.raw);
        if (!Number.isFinite(f)) throw this.typeError(`number ${n.raw}`, 'float64', where);
        return f;
      }
    }
  }
}

/**
 * encoding/base64 StdEncoding as Go's decoder uses it for []byte: padded, CR and LF ignored.
 * Returns the canonical text; bad input gets Go's CorruptInputError wording.
 */
function base64(s: string): string {
  const clean = s.replace(/[\r\n]/g, '');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(clean)) {
    const bad = clean.search(/[^A-Za-z0-9+/=]/);
    const pad = clean.indexOf('=');
    const at = bad >= 0 && (pad < 0 || bad < pad) ? bad : pad >= 0 ? pad : clean.length - (clean.length % 4);
    throw new JsonTypeError(`illegal base64 data at input byte ${at}`);
  }
  return Buffer.from(clean, 'base64').toString('base64');
}
