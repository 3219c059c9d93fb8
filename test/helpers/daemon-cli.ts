import type { TestDaemon } from './daemon.js';

/**
 * Shorthands for the real docker CLI against a test file's daemon (a getter: the file starts
 * the daemon in `before`, after these are made).
 */
export function cliOf(daemon: () => TestDaemon) {
  return {
    /** Throws on a non-zero exit. */
    docker: (...args: string[]) => daemon().docker(args),
    /** Never throws: check .code. */
    dockerFail: (...args: string[]) => daemon().docker(args, { allowFail: true }),
    /** The trimmed stdout; throws on a non-zero exit. */
    out: async (...args: string[]) => (await daemon().docker(args)).stdout.trim(),
  };
}
