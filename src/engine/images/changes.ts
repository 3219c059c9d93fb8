/**
 * `docker import -c …` / `docker commit -c …`: the Dockerfile instructions that only change an
 * image's config (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, ONBUILD).
 */
import { badRequest } from '../../util/errors.js';
import type { ImageConfig } from '../types.js';

export type ImageConfigWithOnBuild = ImageConfig & { OnBuild?: string[] };

const ALLOWED = new Set([
  'CMD',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'HEALTHCHECK',
  'LABEL',
  'USER',
  'VOLUME',
  'WORKDIR',
  'STOPSIGNAL',
  'ONBUILD',
]);

/** Applies each change line in order to a copy of `base`. Unknown or malformed lines are a 400. */
export function applyChanges(base: ImageConfigWithOnBuild, changes: string[]): ImageConfigWithOnBuild {
  const cfg: ImageConfigWithOnBuild = structuredClone(base);
  for (const raw of changes) {
    const line = raw.trim();
    if (line === '') continue;
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(line)!;
    const instr = m[1].toUpperCase();
    const rest = (m[2] ?? '').trim();
    if (!ALLOWED.has(instr)) throw badRequest(`${instr} is not a valid change command`);
    if (rest === '' && instr !== 'CMD' && instr !== 'ENTRYPOINT')
      throw badRequest(`${instr} requires at least one argument`);
    switch (instr) {
      case 'CMD':
        cfg.Cmd = commandForm(rest);
        break;
      case 'ENTRYPOINT':
        cfg.Entrypoint = commandForm(rest);
        break;
      case 'ENV':
        for (const [k, v] of keyValues(rest, 'ENV'))
          cfg.Env = [...(cfg.Env ?? []).filter((e) => e.split('=')[0] !== k), `${k}=${v}`];
        break;
      case 'LABEL':
        for (const [k, v] of keyValues(rest, 'LABEL')) cfg.Labels = { ...(cfg.Labels ?? {}), [k]: v };
        break;
      case 'EXPOSE':
        for (const p of rest.split(/\s+/)) {
          const pm = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
          if (!pm) throw badRequest(`invalid containerPort: ${p}`);
          const proto = (pm[3] ?? 'tcp').toLowerCase();
          const lo = Number(pm[1]);
          const hi = pm[2] ? Number(pm[2]) : lo;
          if (lo < 1 || hi > 65535 || hi < lo) throw badRequest(`invalid containerPort: ${p}`);
          for (let port = lo; port <= hi; port++)
            cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}), [`${port}/${proto}`]: {} };
        }
        break;
      case 'VOLUME':
        for (const v of jsonArray(rest) ?? rest.split(/\s+/)) cfg.Volumes = { ...(cfg.Volumes ?? {}), [v]: {} };
        break;
      case 'USER':
        cfg.User = rest;
        break;
      case 'WORKDIR':
        cfg.WorkingDir = rest.startsWith('/') ? rest : `${cfg.WorkingDir ?? '/'}/${rest}`.replace(/\/+/g, '/');
        break;
      case 'STOPSIGNAL':
        cfg.StopSignal = rest;
        break;
      case 'ONBUILD':
        cfg.OnBuild = [...(cfg.OnBuild ?? []), rest];
        break;
      case 'HEALTHCHECK':
        cfg.Healthcheck = healthcheck(rest);
        break;
    }
  }
  return cfg;
}

/** `HEALTHCHECK [--interval=D --timeout=D --start-period=D --retries=N] CMD command`, or `NONE`. */
function healthcheck(rest: string): NonNullable<ImageConfig['Healthcheck']> {
  const h: NonNullable<ImageConfig['Healthcheck']> = {};
  let r = rest;
  for (let m; (m = /^--([a-z-]+)=(\S+)\s+/.exec(r)); r = r.slice(m[0].length)) {
    const [, flag, value] = m;
    if (flag === 'retries') {
      if (!/^\d+$/.test(value)) throw badRequest(`invalid value for --retries: ${value}`);
      h.Retries = Number(value);
    } else if (flag === 'interval' || flag === 'timeout' || flag === 'start-period') {
      const key = flag === 'interval' ? 'Interval' : flag === 'timeout' ? 'Timeout' : 'StartPeriod';
      h[key] = goDuration(value);
    } else throw badRequest(`Unknown flag: ${flag}`);
  }
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(r.trim());
  const kind = m?.[1].toUpperCase();
  if (kind === 'NONE') return { Test: ['NONE'] };
  if (kind !== 'CMD' || !m?.[2]) throw badRequest('Unknown type "' + (m?.[1] ?? '') + '" in HEALTHCHECK (try CMD)');
  const exec = jsonArray(m[2].trim());
  h.Test = exec ? ['CMD', ...exec] : ['CMD-SHELL', m[2].trim()];
  return h;
}

/** A Go duration (`30s`, `1m30s`, `500ms`) in nanoseconds. */
function goDuration(s: string): number {
  const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== s) throw badRequest(`time: invalid duration "${s}"`);
  return Math.round(parts.reduce((n, p) => n + Number(p[1]) * unit[p[2]], 0));
}

function jsonArray(s: string): string[] | undefined {
  if (!s.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(s);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
  } catch {
    return undefined;
  }
}

/** Exec form (JSON array) as given; shell form runs under `/bin/sh -c`. */
function commandForm(rest: string): string[] {
  if (rest === '') return [];
  return jsonArray(rest) ?? ['/bin/sh', '-c', rest];
}

/** `k=v k2="v 2"`, or the legacy single pair `k v…`. */
export function keyValues(rest: string, instr: string): Array<[string, string]> {
  const words = splitWords(rest);
  if (!words[0].includes('=')) {
    if (words.length < 2) throw badRequest(`${instr} must have two arguments`);
    const key = words[0];
    return [[key, rest.slice(rest.indexOf(key) + key.length).trim()]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw badRequest(`${instr} names can not be blank`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

/** Splits on blanks, honouring "double" and 'single' quotes and backslash escapes. */
function splitWords(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw badRequest(`unexpected end of statement while looking for matching ${quote}`);
  if (inWord) out.push(cur);
  return out;
}
