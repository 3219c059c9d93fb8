/**
 * The Dockerfile as the classic builder reads it: comments and blank lines dropped, `\`
 * continuations joined, one instruction per line with its original text (what `Step N/M :`
 * prints). Instructions the classic builder knows but shoal does not run are refused here.
 */
import { badRequest } from '../../util/errors.js';

export interface Instruction {
  /** Upper case: FROM, RUN, CMD, … */
  name: string;
  /** Everything after the instruction word, continuations joined. */
  args: string;
  /** The instruction as written (continuations joined), for the step line. */
  original: string;
  line: number;
}

/** What the classic builder accepts (dockerd 20.10's instruction set). */
const KNOWN = new Set([
  'FROM',
  'RUN',
  'CMD',
  'ENTRYPOINT',
  'ENV',
  'LABEL',
  'WORKDIR',
  'EXPOSE',
  'USER',
  'COPY',
  'ADD',
  'ARG',
  'MAINTAINER',
  'VOLUME',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'ONBUILD',
  'SHELL',
]);

/** Parses a Dockerfile; an unknown instruction is dockerd's 400 "dockerfile parse error line N: unknown instruction: FOO". */
export function parseDockerfile(text: string): Instruction[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const out: Instruction[] = [];
  let pending: { start: number; parts: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const trimmed = raw.trim();
    // Comments and blank lines, also in the middle of a continued instruction.
    if (trimmed.startsWith('#') || (trimmed === '' && !pending)) continue;
    if (trimmed === '' && pending) continue;
    const cont = /\\\s*$/.test(raw);
    const piece = cont ? raw.replace(/\\\s*$/, '') : raw;
    if (!pending) pending = { start: i + 1, parts: [] };
    // A continued line keeps its leading blanks, as dockerd's parser joins them.
    pending.parts.push(pending.parts.length ? piece : piece.trimStart());
    if (cont && i < lines.length - 1) continue;
    const joined = pending.parts.join('').trim();
    const start = pending.start;
    pending = undefined;
    if (joined === '') continue;
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(joined)!;
    const name = m[1].toUpperCase();
    if (!KNOWN.has(name)) throw badRequest(`dockerfile parse error line ${start}: unknown instruction: ${name}`);
    out.push({ name, args: (m[2] ?? '').trim(), original: joined, line: start });
  }
  return out;
}

/** Exec form `["a", "b"]` when the text is a JSON array of strings, else undefined (shell form). */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(args);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}` replaced from `env` (a `K=V` list), as
 * the builder expands words of ENV, LABEL, WORKDIR, EXPOSE, USER, COPY, ADD, FROM and ARG.
 * `\$` stays a literal dollar.
 */
export function expand(word: string, env: string[]): string {
  const vars = new Map<string, string>();
  for (const e of env) {
    const i = e.indexOf('=');
    if (i > 0) vars.set(e.slice(0, i), e.slice(i + 1));
  }
  return word.replace(
    /\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (all, braced?: string, op?: string, alt?: string, bare?: string) => {
      if (all === '\\$') return '$';
      const name = braced ?? bare ?? '';
      const v = vars.get(name);
      if (op === '-') return v ? v : (alt ?? '');
      if (op === '+') return v ? (alt ?? '') : '';
      return v ?? '';
    },
  );
}
