import type { Prng } from '../../test/helpers/prng.js';

/** A JSON value as the fuzzer builds bodies. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

/** A body after mutation: the bytes to send and what was done to them. */
export interface MutatedBody {
  text: string;
  mutation: string;
}

export interface MutateOptions {
  /** Size of the "huge body" mutation, in bytes. */
  hugeBytes: number;
  /** Dotted paths never touched (valid values there would be destructive, e.g. a CA rotation). */
  pinned?: string[];
}

const DEPTHS = [64, 1000, 10_000, 100_000];
const BOUNDARY = [-1, 0, 1.5, -0.5, 1e308, -1e308, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 1e-300, 4294967296, -2147483649];
const MARK = '\u0000fz\u0000';

function paths(v: Json, pinned: Set<string>, at: Path = []): Path[] {
  if (pinned.has(at.join('.'))) return [];
  const out: Path[] = at.length ? [at] : [];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, pinned, [...at, i])));
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, pinned, [...at, k]));
  return out;
}

function get(v: Json, p: Path): Json {
  let cur: Json = v;
  for (const k of p) cur = (cur as Record<string | number, Json>)[k];
  return cur;
}

function set(v: Json, p: Path, value: Json | undefined): void {
  const parent = get(v, p.slice(0, -1)) as Record<string | number, Json> | Json[];
  const k = p[p.length - 1];
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(k as number, 1);
    else delete (parent as Record<string, Json>)[k as string];
  } else {
    (parent as Record<string | number, Json>)[k] = value;
  }
}

/** Objects in the tree (where fields can be added). */
function objects(v: Json, pinned: Set<string>, at: Path = []): Path[] {
  if (pinned.has(at.join('.')) || v === null || typeof v !== 'object') return [];
  const own = Array.isArray(v) ? [] : [at];
  const kids = Array.isArray(v)
    ? v.map((x, i) => objects(x, pinned, [...at, i]))
    : Object.entries(v).map(([k, x]) => objects(x, pinned, [...at, k]));
  return [...own, ...kids.flat()];
}

function typeName(v: Json): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function otherTyped(p: Prng, v: Json): Json {
  const choices: Json[] = [
    p.word(6),
    42,
    -7.25,
    true,
    false,
    null,
    [],
    [1, 'x', null],
    {},
    { a: { b: 1 } },
    ['x'],
    '',
    '0',
  ];
  const wrong = choices.filter((c) => typeName(c) !== typeName(v));
  return p.pick(wrong);
}

/** Turns a valid body into one of the kinds of bad input the fuzzer sends. */
export function mutateBody(p: Prng, valid: Json, o: MutateOptions): MutatedBody {
  const body = structuredClone(valid);
  const pinned = new Set(o.pinned ?? []);
  const all = paths(body, pinned);
  const somePath = () => (all.length ? p.pick(all) : undefined);
  const label = (pp: Path) => pp.join('.');
  const kind = p.weighted<string>([
    [14, 'wrong-type'],
    [8, 'missing-field'],
    [8, 'lowercase-keys'],
    [6, 'extra-fields'],
    [5, 'huge-string'],
    [5, 'deep-nesting'],
    [2, 'huge-body'],
    [6, 'null'],
    [6, 'duplicate-keys'],
    [8, 'invalid-json'],
    [4, 'top-level'],
    [8, 'boundary-number'],
    [2, 'empty'],
    [8, 'stacked'],
  ]);
  switch (kind) {
    case 'wrong-type': {
      const at = somePath();
      if (!at) break;
      const was = get(body, at);
      const now = otherTyped(p, was);
      set(body, at, now);
      return {
        text: JSON.stringify(body),
        mutation: `wrong-type ${label(at)}: ${typeName(was)} -> ${JSON.stringify(now)}`,
      };
    }
    case 'missing-field': {
      const at = somePath();
      if (!at) break;
      set(body, at, undefined);
      return { text: JSON.stringify(body), mutation: `missing-field ${label(at)}` };
    }
    case 'lowercase-keys': {
      const all = p.chance(0.5);
      const lower = (v: Json, at: Path): Json => {
        if (Array.isArray(v)) return v.map((x, i) => lower(x, [...at, i]));
        if (v === null || typeof v !== 'object' || pinned.has(at.join('.'))) return v;
        return Object.fromEntries(
          Object.entries(v).map(([k, x]) => [all || p.chance(0.3) ? k.toLowerCase() : k, lower(x, [...at, k])]),
        );
      };
      return { text: JSON.stringify(lower(body, [])), mutation: `lowercase-keys (${all ? 'all' : 'some'})` };
    }
    case 'extra-fields': {
      const objs = objects(body, pinned);
      const at = objs.length ? p.pick(objs) : [];
      const k = p.pick(['Unknown', 'X-Extra', p.word(5), '__proto__', 'constructor', 'toString', '']);
      const target = get(body, at) as Record<string, Json>;
      Object.defineProperty(target, k, {
        value: otherTyped(p, null),
        enumerable: true,
        configurable: true,
        writable: true,
      });
      return { text: JSON.stringify(body), mutation: `extra-field ${label([...at, k])}` };
    }
    case 'huge-string': {
      const at = somePath();
      const size = p.pick([16 * 1024, 256 * 1024, 1024 * 1024]);
      const s = 'A'.repeat(size);
      if (at) set(body, at, s);
      return { text: JSON.stringify(body), mutation: `huge-string ${at ? label(at) : '(body)'} ${size} B` };
    }
    case 'deep-nesting': {
      const at = somePath();
      const depth = p.pick(DEPTHS);
      const deep = p.chance(0.5)
        ? '['.repeat(depth) + ']'.repeat(depth)
        : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
      if (!at) return { text: deep, mutation: `deep-nesting (body) ${depth}` };
      set(body, at, MARK);
      return {
        text: JSON.stringify(body).replace(JSON.stringify(MARK), deep),
        mutation: `deep-nesting ${label(at)} ${depth}`,
      };
    }
    case 'huge-body': {
      const pad = 'B'.repeat(o.hugeBytes);
      if (body !== null && typeof body === 'object' && !Array.isArray(body)) body.Padding = pad;
      return { text: JSON.stringify(body), mutation: `huge-body ${o.hugeBytes} B` };
    }
    case 'null': {
      const at = p.chance(0.2) ? undefined : somePath();
      if (!at) return { text: 'null', mutation: 'null body' };
      set(body, at, null);
      return { text: JSON.stringify(body), mutation: `null ${label(at)}` };
    }
    case 'duplicate-keys': {
      const objs = objects(body, pinned).filter((x) => Object.keys(get(body, x) as object).length);
      if (!objs.length) break;
      const at = p.pick(objs);
      const target = get(body, at) as Record<string, Json>;
      const k = p.pick(Object.keys(target));
      const dup = `${MARK}${k}`;
      target[dup] = otherTyped(p, target[k]);
      // The duplicate lands after the original (Go: the last one wins) or, half the time, before it.
      if (p.chance(0.5)) {
        const v = target[k];
        delete target[k];
        target[k] = v;
      }
      return {
        text: JSON.stringify(body).replace(JSON.stringify(dup), JSON.stringify(k)),
        mutation: `duplicate-key ${label([...at, k])}`,
      };
    }
    case 'invalid-json': {
      const text = JSON.stringify(body);
      const variant = p.pick([
        'truncated',
        'trailing-garbage',
        'single-quotes',
        'nan',
        'trailing-comma',
        'bom',
        'bad-utf8',
        'comment',
        'bare-word',
        'two-values',
      ]);
      const bad: Record<string, () => string> = {
        truncated: () => text.slice(0, Math.max(1, p.int(text.length))),
        'trailing-garbage': () => text + ' }garbage',
        'single-quotes': () => text.replace(/"/g, "'"),
        nan: () => text.replace(/:(-?\d+(\.\d+)?)/, ':NaN').replace(/^\{/, '{"n":Infinity,'),
        'trailing-comma': () => text.replace(/\}$/, ',}'),
        bom: () => '\ufeff' + text,
        'bad-utf8': () => text.replace(/"[^"]*"/, '"\udc00\ud800"'),
        comment: () => '/* c */' + text,
        'bare-word': () => 'undefined',
        'two-values': () => text + text,
      };
      return { text: bad[variant](), mutation: `invalid-json ${variant}` };
    }
    case 'top-level': {
      const v = p.pick<Json>([[], [body], 'string', 42, true, false]);
      return { text: JSON.stringify(v), mutation: `top-level ${typeName(v)}` };
    }
    case 'boundary-number': {
      const nums = all.filter((x) => typeof get(body, x) === 'number');
      const at = nums.length && p.chance(0.8) ? p.pick(nums) : somePath();
      if (!at) break;
      const n = p.pick(BOUNDARY);
      set(body, at, n);
      return { text: JSON.stringify(body), mutation: `boundary-number ${label(at)} = ${n}` };
    }
    case 'empty':
      return { text: '', mutation: 'empty body' };
    case 'stacked': {
      // Two independent changes on the same body.
      const a = somePath();
      if (a) set(body, a, otherTyped(p, get(body, a)));
      const b = paths(body, pinned);
      const bp = b.length ? p.pick(b) : undefined;
      if (bp) set(body, bp, undefined);
      return {
        text: JSON.stringify(body),
        mutation: `stacked wrong-type ${a ? label(a) : '-'} + missing ${bp ? label(bp) : '-'}`,
      };
    }
  }
  return { text: JSON.stringify(body), mutation: 'unchanged (nothing to mutate)' };
}

/** Garbled versions of a query string: bad filters, ints, bools, unknown and malformed parameters. */
export function garbleQuery(p: Prng, valid: Record<string, string>): { query: string; mutation: string } {
  const q = new URLSearchParams(valid);
  const intKeys = ['limit', 't', 'version', 'tail', 'size', 'since', 'until', 'signal', 'h', 'w'];
  const boolKeys = [
    'all',
    'force',
    'v',
    'size',
    'status',
    'insertDefaults',
    'noprune',
    'digests',
    'rotateWorkerToken',
    'stream',
    'link',
  ];
  const kind = p.pick([
    'filters-null',
    'filters-garbage',
    'bad-int',
    'bad-bool',
    'unknown-param',
    'huge-value',
    'bad-escape',
    'repeated',
    'version-garbage',
  ]);
  let raw: string | undefined;
  let what = kind;
  switch (kind) {
    case 'filters-null':
      q.set('filters', 'null');
      break;
    case 'filters-garbage': {
      const g = p.pick([
        'garbage',
        '{',
        '[]',
        '[1,2]',
        '"str"',
        '42',
        'true',
        '{"label":1}',
        '{"label":"x"}',
        '{"label":[1]}',
        '{"label":{"x":"yes"}}',
        '{"label":null}',
        '{"label":[null]}',
        '{"a":["x"],"b":{"y":true}}',
        '{"dangling":["maybe"]}',
        '{"name":{"x":true},"id":[]}',
        '{"until":["forever"]}',
        '{"status":["bogus"]}',
        '{"label":{"x":null}}',
        '{"__proto__":["x"]}',
        '{"constructor":{"a":true}}',
        '{"name":["("]}',
        '{"exited":["x"]}',
        '{"before":["nope"]}',
        '{"since":["nope"]}',
        '{"reference":["::"]}',
        '{"desired-state":["x"]}',
        '{"role":["x"]}',
        '{"mode":["x"]}',
        '{"type":["x"]}',
        '{"driver":[""]}',
      ]);
      q.set('filters', g);
      what = `filters=${g}`;
      break;
    }
    case 'bad-int': {
      const k = p.pick(intKeys);
      const v = p.pick(['abc', '-1', '1.5', '1e999', '99999999999999999999', '', ' 1', '0x10', 'NaN', '-0', '+5']);
      q.set(k, v);
      what = `${k}=${v}`;
      break;
    }
    case 'bad-bool': {
      const k = p.pick(boolKeys);
      const v = p.pick(['maybe', '2', 'yes', 'TRUE', 'None', ' ', 'tru', '-1']);
      q.set(k, v);
      what = `${k}=${v}`;
      break;
    }
    case 'unknown-param':
      q.set(p.pick(['foo', 'x-y', '__proto__', 'constructor', '']), p.word(4));
      break;
    case 'huge-value':
      q.set(p.pick(['filters', 'name', 'foo', 'repo']), 'x'.repeat(p.pick([4096, 30_000])));
      break;
    case 'bad-escape':
      raw =
        q.toString() +
        (q.toString() ? '&' : '') +
        p.pick(['filters=%zz', 'name=%E0%A4%A', '%%=1', 'a=%00', 'filters=%7B%22a%22%3A%5B%22%FF%22%5D%7D']);
      what = `bad-escape ${raw}`;
      break;
    case 'repeated':
      for (const [k] of Object.entries(valid).length ? Object.entries(valid) : [['filters', '']])
        q.append(k, p.pick(['1', 'x', '{"a":["b"]}']));
      break;
    case 'version-garbage':
      q.set('version', p.pick(['-1', 'abc', '1.5', '99999999999999999999', '']));
      break;
  }
  return { query: raw ?? q.toString(), mutation: `query ${what}` };
}
