import { badRequest } from '../../util/errors.js';

/**
 * Legacy links (`--link name[:alias]`) on the default bridge, as dockerd 20.10 keeps them: a
 * link is stored as `/<child>:/<parent>/<alias>` (what inspect shows in HostConfig.Links); at
 * start the parent gets the child's address in /etc/hosts and its `<ALIAS>_…` environment.
 */

export interface Link {
  /** The linked container's name, with its slash. */
  child: string;
  /** `/<parent>/<alias>`: the link's own name, which also finds the child. */
  name: string;
}

/** `name`, `name:alias`, `/name:/parent/alias` → the stored form for a container named `parent` (with slash). */
export function normalizeLinks(links: unknown, parent: string): string[] {
  if (links === undefined || links === null) return [];
  if (!Array.isArray(links) || links.some((l) => typeof l !== 'string'))
    throw badRequest('json: cannot unmarshal into Go struct field HostConfig.Links of type []string');
  return (links as string[]).map((l) => {
    const [rawChild, rawAlias] = l.split(':');
    if (!rawChild) throw badRequest(`invalid link: ${l}`);
    const child = rawChild.startsWith('/') ? rawChild : `/${rawChild}`;
    // A stored link given back (`/c1:/c3/db`) keeps its alias's last segment.
    const alias = (rawAlias ?? rawChild).split('/').filter(Boolean).pop() ?? '';
    if (!alias) throw badRequest(`invalid link: ${l}`);
    return `${child}:${parent}/${alias}`;
  });
}

export function parseLink(stored: string): Link {
  const i = stored.indexOf(':');
  return { child: stored.slice(0, i), name: stored.slice(i + 1) };
}

/** The alias part of a link name: `/c3/db` → `db`. */
export function aliasOf(link: Link): string {
  return link.name.slice(link.name.lastIndexOf('/') + 1);
}

/**
 * moby daemon/links ToEnv: `<ALIAS>_NAME`, `<ALIAS>_ENV_<VAR>` (not HOME or PATH), and the
 * `<ALIAS>_PORT…` family for each exposed port (the lowest one as `<ALIAS>_PORT`).
 */
export function linkEnv(link: Link, childIp: string, childEnv: string[], exposed: string[]): string[] {
  const alias = aliasOf(link).toUpperCase().replace(/-/g, '_');
  const env: string[] = [];
  const ports = exposed
    .map((k) => {
      const [port, proto = 'tcp'] = k.split('/');
      return { port: Number(port), proto };
    })
    .filter((p) => Number.isInteger(p.port))
    .sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
  if (ports.length) env.push(`${alias}_PORT=${ports[0].proto}://${childIp}:${ports[0].port}`);
  for (const p of ports) {
    const pre = `${alias}_PORT_${p.port}_${p.proto.toUpperCase()}`;
    env.push(
      `${pre}=${p.proto}://${childIp}:${p.port}`,
      `${pre}_ADDR=${childIp}`,
      `${pre}_PORT=${p.port}`,
      `${pre}_PROTO=${p.proto}`,
    );
  }
  env.push(`${alias}_NAME=${link.name}`);
  for (const kv of childEnv) {
    const i = kv.indexOf('=');
    if (i < 0) continue;
    const k = kv.slice(0, i);
    if (k === 'HOME' || k === 'PATH') continue;
    env.push(`${alias}_ENV_${k}=${kv.slice(i + 1)}`);
  }
  return env;
}

/** The parent's /etc/hosts names for the child: alias, the child's hostname, and its name when it differs from the alias. */
export function linkHostNames(link: Link, childHostname: string): string[] {
  const alias = aliasOf(link);
  const childName = link.child.slice(1);
  return [alias, childHostname, ...(alias !== childName ? [childName] : [])];
}
