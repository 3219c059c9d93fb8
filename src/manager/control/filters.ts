import { ApiError } from '../../util/errors.js';

/** Label filters as swarmkit's list calls read them: `key` (present) or `key=value`. */
export function matchLabels(labels: Record<string, string> | undefined, wanted: string[]): boolean {
  return wanted.every((w) => {
    const i = w.indexOf('=');
    if (i < 0) return labels?.[w] !== undefined;
    return labels?.[w.slice(0, i)] === w.slice(i + 1);
  });
}

/** List filters by name (the Engine API's `filters=` after decoding). */
export type Filters = Map<string, string[]>;

/** Refuses a filter the list does not know (dockerd: "invalid filter 'x'"). */
export function acceptFilters(filters: Filters, accepted: readonly string[]): void {
  for (const k of filters.keys()) if (!accepted.includes(k)) throw new InvalidFilter(k);
}

/** Docker checks filter names in the daemon, before swarmkit: a plain 400. */
export class InvalidFilter extends ApiError {
  constructor(name: string) {
    super(400, `invalid filter '${name}'`);
  }
}
