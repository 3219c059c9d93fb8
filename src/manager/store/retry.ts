import { VersionConflict } from './store.js';

/** How many times a read-modify-write is tried before it gives up (swarmkit retries a few times too). */
export const CONFLICT_ATTEMPTS = 5;

export interface RetryOnConflictOptions<T> {
  /** Attempts in all, the first included (default CONFLICT_ATTEMPTS). */
  attempts?: number;
  /** What to do when the last attempt lost too: return a result, or throw. Default: rethrow its VersionConflict. */
  exhausted?: () => T;
}

/**
 * Runs a read-modify-write (`write` reads the object anew each time, changes it, commits it) and
 * runs it again when another write got there first (VersionConflict). Any other error is thrown
 * as is; the write's result is returned.
 */
export async function retryOnConflict<T>(
  write: (attempt: number) => Promise<T>,
  opts: RetryOnConflictOptions<T> = {},
): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? CONFLICT_ATTEMPTS);
  let last: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      return await write(attempt);
    } catch (e) {
      if (!(e instanceof VersionConflict)) throw e;
      last = e;
    }
  }
  if (opts.exhausted) return opts.exhausted();
  throw last;
}
