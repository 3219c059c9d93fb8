/**
 * Image references as Docker reads them: `busybox` is `docker.io/library/busybox:latest`,
 * `host:port/a/b:tag` names a registry, `name@sha256:…` pins a manifest digest.
 */
import { badRequest } from '../../util/errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';

export interface ImageReference {
  /** Registry host[:port], e.g. `docker.io`, `127.0.0.1:5000`. */
  domain: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  path: string;
  tag?: string;
  digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[a-fA-F0-9:]+\](?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
const HEX64 = /^[a-f0-9]{64}$/;

const invalid = (why = '') => badRequest(`invalid reference format${why ? `: ${why}` : ''}`);

export function isSha256Digest(s: string): boolean {
  return SHA256.test(s);
}

/** Parses a reference the way Docker normalises it (no default tag added; see withDefaultTag). */
export function parseReference(input: string): ImageReference {
  if (input === '' || input.length > 255 + 80) throw invalid();
  if (HEX64.test(input))
    throw badRequest(`invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`);
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid();
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid();
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  if (slash >= 0 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first)) {
    domain = first;
    path = rest.slice(slash + 1);
    if (!DOMAIN.test(domain)) throw invalid();
  }
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (path === '') throw invalid();
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  if (path.toLowerCase() !== path) throw invalid(`repository name (${path}) must be lowercase`);
  for (const c of path.split('/')) if (!PATH_COMPONENT.test(c)) throw invalid();
  if (`${domain}/${path}`.length > 255) throw invalid('repository name must not be more than 255 characters');
  return { domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** `docker.io/library/busybox` */
export function repoName(r: ImageReference): string {
  return `${r.domain}/${r.path}`;
}

/** Adds `:latest` when neither tag nor digest is given, as `docker pull busybox` does. */
export function withDefaultTag(r: ImageReference): ImageReference {
  return r.tag === undefined && r.digest === undefined ? { ...r, tag: DEFAULT_TAG } : r;
}

/** The fully qualified string: `docker.io/library/busybox:latest`, `host/a@sha256:…`. */
export function formatReference(r: ImageReference): string {
  return withTagAndDigest(repoName(r), r);
}

/** The short name users type and Docker shows: `busybox`, `foo/bar`, `127.0.0.1:5000/micro`. */
export function familiarName(r: ImageReference): string {
  if (r.domain !== DEFAULT_DOMAIN) return repoName(r);
  return r.path.startsWith('library/') && r.path.split('/').length === 2 ? r.path.slice('library/'.length) : r.path;
}

/** `busybox:latest`, `127.0.0.1:5000/micro@sha256:…` */
export function familiarString(r: ImageReference): string {
  return withTagAndDigest(familiarName(r), r);
}

/** `name`, then `:tag` and `@digest` when the reference has them. */
function withTagAndDigest(name: string, r: ImageReference): string {
  return name + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

/** Turns a stored full reference (`docker.io/library/a:b`) into its familiar form (`a:b`). */
export function familiar(full: string): string {
  return familiarString(parseReference(full));
}

/** Shell-style glob (`*`, `?`, `[…]`) as Go's path.Match reads it: `*` never crosses `/`. */
export function globMatch(pattern: string, s: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) return false;
      // Go and JS character classes agree on `^` negation and `a-z` ranges.
      re += `[${pattern.slice(i + 1, end).replace(/[[\]]/g, '\\$&')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`).test(s);
}

/**
 * Docker's `reference=` filter: the pattern is matched against the familiar
 * `name:tag`, and also against the bare name when the pattern has no tag.
 */
export function referenceFilterMatch(pattern: string, full: string): boolean {
  const r = parseReference(full);
  if (globMatch(pattern, familiarString(r))) return true;
  return globMatch(pattern, familiarName(r));
}
