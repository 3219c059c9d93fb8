import { badRequest } from '../util/errors.js';

export const API_VERSION = '1.41';
export const MIN_API_VERSION = '1.24';

/** Headers dockerd puts on every answer; the CLI negotiates its version from `Api-Version`. */
export const SERVER_HEADERS: Record<string, string> = {
  'Api-Version': API_VERSION,
  'Docker-Experimental': 'false',
  Ostype: 'linux',
  Server: 'shoal',
};

function compare(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number);
  const [bm, bn] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

/** Splits `/v1.41/containers/json` into the version and the route path. */
export function splitVersion(pathname: string): { version: string; path: string } {
  const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(pathname);
  if (!m) return { version: API_VERSION, path: pathname };
  const version = m[1];
  if (compare(version, API_VERSION) > 0) {
    throw badRequest(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  if (compare(version, MIN_API_VERSION) < 0) {
    throw badRequest(
      `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    );
  }
  return { version, path: m[2] };
}

export function versionAtLeast(v: string, min: string): boolean {
  return compare(v, min) >= 0;
}
