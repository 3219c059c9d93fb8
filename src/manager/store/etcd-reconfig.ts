/** A membership change refused because the managers left would not have a quorum. */
export class QuorumLost extends Error {}

/** How long one etcd call of a reconfiguration may take, and the whole reconfiguration with retries. */
const RECONFIG_CALL_MS = 10_000;
const RECONFIG_BUDGET_MS = 25_000;
/** etcd refusals and failures after which a reconfiguration is tried again (re-reading the member list first). */
const RETRYABLE_RECONFIG =
  /unhealthy cluster|not enough started members|timed out|deadline exceeded|leader changed|no leader|too many requests/i;

/**
 * A membership change with a deadline on every etcd call, retried while etcd refuses it for a
 * transient reason (its strict reconfiguration check, a slow or leaderless moment under load).
 * `step` re-reads the member list, so a change applied by an attempt whose answer was lost is
 * not made twice. The budget fits in the 30 s a joiner waits for Membership.Join.
 */
export async function retryReconfig<T>(
  what: string,
  step: (opts: { deadline: Date }) => Promise<T>,
  budgetMs = RECONFIG_BUDGET_MS,
  pauseMs = 500,
): Promise<T> {
  const until = Date.now() + budgetMs;
  for (;;) {
    try {
      // No call outlives the budget by much: the caller (a joiner) has its own deadline.
      return await step({
        deadline: new Date(Math.max(Math.min(Date.now() + RECONFIG_CALL_MS, until), Date.now() + 1000)),
      });
    } catch (e) {
      if (e instanceof QuorumLost) throw e;
      if (!RETRYABLE_RECONFIG.test((e as Error).message) || Date.now() > until)
        throw new Error(`etcd ${what}: ${(e as Error).message}`, { cause: e });
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
}
