import type { ContainerSpec, Mount, NodeDescription, Task } from '../../cluster/types.js';

/**
 * Service templates (swarmkit template/): the agent expands Go-template placeholders in a
 * task's hostname, env values and mount fields before it creates the container. Only the
 * subset people use is evaluated: field paths (`.Service.Name`), `index <map> "key"`,
 * `join "sep" args…`, plain text around. Messages follow Go's text/template (template name
 * "expansion", missingkey=error) so a rejected task reads as it does on Docker.
 */

/** What a template sees (swarmkit template.Context): nothing else is reachable. */
export interface TemplateContext {
  Service: { ID: string; Name: string; Labels: Record<string, string> };
  Node: { ID: string; Hostname: string; Platform: { Architecture: string; OS: string } };
  Task: { ID: string; Name: string; Slot: string };
}

/** The node facts a template may use; absent when the agent does not know them (fields then stay empty). */
export type TemplateNode = Pick<NodeDescription, 'Hostname' | 'Platform'>;

export function templateContext(task: Task, taskName: string, nodeId: string, node?: TemplateNode): TemplateContext {
  const nodeID = task.NodeID || nodeId;
  return {
    Service: {
      ID: task.ServiceID,
      Name: task.ServiceAnnotations?.Name ?? '',
      Labels: task.ServiceAnnotations?.Labels ?? {},
    },
    Node: {
      ID: nodeID,
      Hostname: node?.Hostname ?? '',
      Platform: { Architecture: node?.Platform.Architecture ?? '', OS: node?.Platform.OS ?? '' },
    },
    // A task without a slot (global service) uses its node's ID, as its name does.
    Task: { ID: task.ID, Name: taskName, Slot: task.Slot ? String(task.Slot) : nodeID },
  };
}

// Go's type names, for "can't evaluate field X in type T".
const GO_TYPES: Record<string, string> = {
  '': '*template.Context',
  Service: 'struct { ID string; Name string; Labels map[string]string }',
  Node: 'struct { ID string; Hostname string; Platform template.Platform }',
  'Node.Platform': 'template.Platform',
  Task: 'struct { ID string; Name string; Slot string }',
};

type Value = string | Record<string, unknown>;
type Arg = { kind: 'field'; path: string[]; text: string } | { kind: 'string'; value: string } | { kind: 'dot' };
type Piece = { text: string } | { action: { fn?: string; args: Arg[]; pos: number; text: string } };

class TemplateError extends Error {}

const parseError = (src: string, at: number, msg: string) =>
  new TemplateError(`template: expansion:${lineOf(src, at)}: ${msg}`);

function lineOf(src: string, at: number): number {
  return 1 + (src.slice(0, at).match(/\n/g)?.length ?? 0);
}

/** Tokens of one action's body: fields, string literals, identifiers. */
function tokenize(src: string, body: string, bodyAt: number): { tok: string; pos: number }[] {
  const out: { tok: string; pos: number }[] = [];
  let i = 0;
  while (i < body.length) {
    const c = body[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (c === '"') {
      i++;
      while (i < body.length && body[i] !== '"') i += body[i] === '\\' ? 2 : 1;
      if (i >= body.length) throw parseError(src, bodyAt + start, 'unterminated quoted string');
      i++;
    } else if (c === '`') {
      i = body.indexOf('`', i + 1);
      if (i < 0) throw parseError(src, bodyAt + start, 'unterminated raw quoted string');
      i++;
    } else if (/[.\w]/.test(c)) {
      while (i < body.length && /[.\w]/.test(body[i])) i++;
    } else {
      throw parseError(src, bodyAt + start, `unexpected ${JSON.stringify(c)} in command`);
    }
    out.push({ tok: body.slice(start, i), pos: bodyAt + start });
  }
  return out;
}

function parseArg(src: string, tok: string, pos: number): Arg {
  if (tok === '.') return { kind: 'dot' };
  if (tok.startsWith('"')) return { kind: 'string', value: JSON.parse(tok) as string };
  if (tok.startsWith('`')) return { kind: 'string', value: tok.slice(1, -1) };
  if (/^(\.[A-Za-z_]\w*)+$/.test(tok)) return { kind: 'field', path: tok.slice(1).split('.'), text: tok };
  throw parseError(src, pos, `unexpected ${JSON.stringify(tok)} in operand`);
}

const FUNCTIONS = new Set(['index', 'join']);

function parse(src: string): Piece[] {
  const pieces: Piece[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      pieces.push({ text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let bodyAt = open + 2;
    // `{{- ` trims the space before the action, ` -}}` the space after it.
    if (src.startsWith('- ', bodyAt) || src.startsWith('-\t', bodyAt) || src.startsWith('-\n', bodyAt)) {
      text = text.trimEnd();
      bodyAt++;
    }
    if (text) pieces.push({ text });
    let close = bodyAt;
    // Find the closing braces outside string literals.
    for (; close < src.length; close++) {
      const c = src[close];
      if (c === '"') {
        close++;
        while (close < src.length && src[close] !== '"') close += src[close] === '\\' ? 2 : 1;
      } else if (c === '`') {
        const end = src.indexOf('`', close + 1);
        close = end < 0 ? src.length : end;
      } else if (src.startsWith('}}', close)) break;
    }
    if (close >= src.length) throw parseError(src, open, 'unclosed action');
    let body = src.slice(bodyAt, close);
    let trimAfter = false;
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      trimAfter = true;
    }
    const toks = tokenize(src, body, bodyAt);
    if (!toks.length) throw parseError(src, open, 'missing value for command');
    const [first, ...rest] = toks;
    const actionText = body.trim();
    if (/^[A-Za-z_]\w*$/.test(first.tok)) {
      if (!FUNCTIONS.has(first.tok))
        throw parseError(src, first.pos, `function ${JSON.stringify(first.tok)} not defined`);
      pieces.push({
        action: { fn: first.tok, args: rest.map((t) => parseArg(src, t.tok, t.pos)), pos: first.pos, text: actionText },
      });
    } else {
      if (rest.length) throw parseError(src, rest[0].pos, `can't give argument to non-function ${first.tok}`);
      pieces.push({ action: { args: [parseArg(src, first.tok, first.pos)], pos: first.pos, text: actionText } });
    }
    i = close + 2;
    if (trimAfter) while (i < src.length && /\s/.test(src[i])) i++;
  }
  return pieces;
}

/** Go's %v of a labels map: map[k:v …] with sorted keys. */
function printMap(m: Record<string, unknown>): string {
  return `map[${Object.keys(m)
    .sort()
    .map((k) => `${k}:${String(m[k])}`)
    .join(' ')}]`;
}

function isStruct(path: string): boolean {
  return path in GO_TYPES;
}

function printValue(v: Value, path: string): string {
  if (typeof v === 'string') return v;
  if (isStruct(path))
    return `{${Object.entries(v)
      .map(([k, x]) => printValue(x as Value, path ? `${path}.${k}` : k))
      .join(' ')}}`;
  return printMap(v);
}

/** Evaluates a field path; `where` is the path walked so far (the Go type of the value at it). */
function evalField(ctx: TemplateContext, path: string[]): { v: Value; where: string } {
  let v: Value = ctx as unknown as Record<string, unknown>;
  let where = '';
  for (const name of path) {
    if (typeof v === 'string') throw new TemplateError(`can't evaluate field ${name} in type string`);
    if (isStruct(where)) {
      if (!Object.hasOwn(v, name)) throw new TemplateError(`can't evaluate field ${name} in type ${GO_TYPES[where]}`);
    } else if (!Object.hasOwn(v, name)) {
      throw new TemplateError(`map has no entry for key ${JSON.stringify(name)}`);
    }
    v = v[name] as Value;
    where = where ? `${where}.${name}` : name;
  }
  return { v, where };
}

function evalArg(ctx: TemplateContext, a: Arg): { v: Value; where: string } {
  if (a.kind === 'string') return { v: a.value, where: '(string)' };
  if (a.kind === 'dot') return { v: ctx as unknown as Record<string, unknown>, where: '' };
  return evalField(ctx, a.path);
}

function callIndex(args: { v: Value; where: string }[]): Value {
  if (!args.length) throw new TemplateError('wrong number of args for index: want at least 1 got 0');
  let item = args[0];
  for (const key of args.slice(1)) {
    if (typeof item.v === 'string' || isStruct(item.where))
      throw new TemplateError(
        `error calling index: can't index item of type ${typeof item.v === 'string' ? 'string' : GO_TYPES[item.where]}`,
      );
    if (typeof key.v !== 'string')
      throw new TemplateError(
        `error calling index: value has type ${GO_TYPES[key.where] ?? 'map[string]string'}; should be string`,
      );
    // A missing key gives the map's zero value (index ignores missingkey).
    item = { v: Object.hasOwn(item.v, key.v) ? (item.v[key.v] as string) : '', where: '(string)' };
  }
  return item.v;
}

/** Expands one string against the context; throws Go's parse or execution error. */
export function expandTemplate(src: string, ctx: TemplateContext): string {
  if (!src.includes('{{')) return src;
  let out = '';
  for (const p of parse(src)) {
    if ('text' in p) {
      out += p.text;
      continue;
    }
    const { fn, args, pos, text } = p.action;
    try {
      const vals = args.map((a) => evalArg(ctx, a));
      if (fn === 'index') out += printValue(callIndex(vals), '(index)');
      else if (fn === 'join') {
        if (!vals.length) throw new TemplateError('wrong number of args for join: want at least 1 got 0');
        const bad = vals.find((x) => typeof x.v !== 'string');
        if (bad)
          throw new TemplateError(
            `wrong type for value; expected string; got ${GO_TYPES[bad.where] ?? 'map[string]string'}`,
          );
        const [sep, ...parts] = vals.map((x) => x.v as string);
        out += parts.join(sep);
      } else out += printValue(vals[0].v, vals[0].where);
    } catch (e) {
      if (!(e instanceof TemplateError)) throw e;
      // Go's position: line and byte offset within that line.
      const col = pos - (src.lastIndexOf('\n', pos - 1) + 1);
      throw new TemplateError(
        `template: expansion:${lineOf(src, pos)}:${col}: executing "expansion" at <${text}>: ${e.message}`,
      );
    }
  }
  return out;
}

const wrap = (prefix: string, e: unknown): Error => new Error(`${prefix}: ${(e as Error).message}`);

function expandMap(ctx: TemplateContext, m: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!m) return m;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    try {
      out[k] = expandTemplate(v, ctx);
    } catch (e) {
      throw wrap(`expanding map entry ${JSON.stringify(k)}=${JSON.stringify(v)}`, e);
    }
  }
  return out;
}

function expandMount(ctx: TemplateContext, m: Mount): Mount {
  const out: Mount = { ...m };
  const field = (what: string, s: string | undefined) => {
    try {
      return s === undefined ? s : expandTemplate(s, ctx);
    } catch (e) {
      throw wrap(`expanding mount ${what} ${JSON.stringify(s)}`, e);
    }
  };
  out.Source = field('source', m.Source);
  out.Target = field('target', m.Target) as string;
  if (m.VolumeOptions) {
    const v = { ...m.VolumeOptions };
    try {
      v.Labels = expandMap(ctx, v.Labels);
    } catch (e) {
      throw wrap('expanding volume labels', e);
    }
    if (v.DriverConfig) {
      try {
        v.DriverConfig = { ...v.DriverConfig, Options: expandMap(ctx, v.DriverConfig.Options) };
      } catch (e) {
        throw wrap('expanding volume driver config', e);
      }
    }
    out.VolumeOptions = v;
  }
  return out;
}

/**
 * The container spec with its templates expanded (swarmkit template.ExpandContainerSpec): env
 * values (after the first `=`), mount source/target and volume labels/driver options, hostname.
 * A bad template throws the error that rejects the task.
 */
export function expandContainerSpec(spec: ContainerSpec, ctx: TemplateContext): ContainerSpec {
  const out: ContainerSpec = { ...spec };
  if (spec.Env) {
    out.Env = spec.Env.map((entry) => {
      const eq = entry.indexOf('=');
      if (eq < 0) return entry;
      try {
        return `${entry.slice(0, eq)}=${expandTemplate(entry.slice(eq + 1), ctx)}`;
      } catch (e) {
        throw wrap('expanding env failed', wrap(`expanding env ${JSON.stringify(entry)}`, e));
      }
    });
  }
  if (spec.Mounts) {
    try {
      out.Mounts = spec.Mounts.map((m) => expandMount(ctx, m));
    } catch (e) {
      throw wrap('expanding mounts failed', e);
    }
  }
  if (spec.Hostname) {
    try {
      out.Hostname = expandTemplate(spec.Hostname, ctx);
    } catch (e) {
      throw wrap('expanding hostname failed', e);
    }
  }
  return out;
}
