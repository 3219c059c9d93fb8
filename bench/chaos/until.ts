export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` every `everyMs` for at most `ms`: the milliseconds until it first held, or undefined
 * if it never did (a throw counts as not yet). An attempt still pending at the deadline is given up
 * on: a probe that waits for the swarm (no quorum) must not hold the fault's next step, which may
 * be the very step that brings the quorum back (round 36 of seed 141 waited 135 s that way).
 */
export async function until(ms: number, fn: () => Promise<boolean>, everyMs = 500): Promise<number | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms - (Date.now() - t0))));
    const held = await Promise.race([fn().catch(() => false), deadline]);
    clearTimeout(timer);
    if (held) return Date.now() - t0;
    await sleep(everyMs);
  }
  return undefined;
}
