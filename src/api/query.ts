import { badRequest } from '../util/errors.js';

const MAX_UINT64 = 2n ** 64n - 1n;

/**
 * The `?version=` of a swarm object update, read as dockerd reads it (strconv.ParseUint, 64
 * bits): anything else is a 400 with Go's reason. A value past 2^53 is still a number that no
 * object has, so the update then fails "out of sequence", as on dockerd.
 */
export function versionParam(query: URLSearchParams, message: (raw: string, reason: string) => string): number {
  const raw = query.get('version') ?? '';
  const syntax = () => `strconv.ParseUint: parsing ${JSON.stringify(raw)}: invalid syntax`;
  if (!/^\d+$/.test(raw)) throw badRequest(message(raw, syntax()));
  if (BigInt(raw) > MAX_UINT64)
    throw badRequest(message(raw, `strconv.ParseUint: parsing ${JSON.stringify(raw)}: value out of range`));
  return Number(raw);
}
