export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` every `everyMs` for at most `ms`: the milliseconds until it first held, or undefined
 * if it never did (a throw counts as not yet).
 */
export async function until(ms: number, fn: () => Promise<boolean>, everyMs = 500): Promise<number | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await fn().catch(() => false)) return Date.now() - t0;
    await sleep(everyMs);
  }
  return undefined;
}
