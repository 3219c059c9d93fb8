import type { Etcd3, ICompare, IRequestOp, ITxnResponse } from 'etcd3';

/**
 * One store transaction carried across an etcd raft leader change.
 *
 * A member forwards a proposal to the raft leader it knows; when that leader has just died the
 * proposal is lost, and etcd answers only at its own request timeout (5 s + 2 × election
 * timeout): every write made in the first instant after a kill -9 of the member that led etcd
 * waited that long. Here an attempt that is still pending after LEADER_CHECK_AFTER_MS is
 * watched through the local member's status; once its raft term moves on or it knows no
 * leader, the attempt is abandoned and sent again.
 *
 * Sending again is safe because every transaction is a compare-and-swap: an abandoned attempt
 * that commits after all makes the next one fail its compares (never a double write). That
 * next attempt reads back the keys it puts (its failure branch): when they hold exactly the
 * bytes it meant to write, the earlier attempt is what applied, and the write succeeded.
 */
export const LEADER_CHECK_AFTER_MS = 150;
export const LEADER_CHECK_EVERY_MS = 50;
/** Pause between attempts (a member without a leader drops proposals at once). */
const RETRY_PAUSE_MS = 50;
/** etcd answers that mean this attempt did not commit, or may not have: try again. */
const AGAIN = /raft proposal dropped|etcdserver: no leader|leader changed|request timed out/i;
/** Of those, the ones where the proposal may still commit later. */
const MAYBE_APPLIED = /leader changed|request timed out/i;

export interface StoreTxn {
  compare: ICompare[];
  success: IRequestOp[];
  /** The keys and exact values `success` puts (to recognise an earlier attempt's result). */
  puts: { key: Buffer; value: Buffer }[];
}

/** Thrown when the deadline passed between attempts, with an attempt's outcome unknown. */
export class AttemptsTimedOut extends Error {
  constructor() {
    super('deadline exceeded between transaction attempts');
  }
}

type Outcome = { res: ITxnResponse } | { err: unknown } | { abandoned: true };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/**
 * Runs `t` until it commits, fails its compares, or the deadline passes. `term` is the last
 * raft term this client saw (a change since then is a leader change the attempt may have missed).
 */
export async function commitAcrossLeaderChange(
  client: Etcd3,
  t: StoreTxn,
  deadline: number,
  term: () => string | undefined,
): Promise<ITxnResponse> {
  let uncertain = false; // an earlier attempt may still commit
  for (;;) {
    const failure: IRequestOp[] = uncertain ? t.puts.map((p) => ({ request_range: { key: p.key } })) : [];
    const out = await attempt(client, { compare: t.compare, success: t.success, failure }, deadline, term());
    if ('res' in out) {
      if (out.res.succeeded || !uncertain) return out.res;
      return appliedEarlier(out.res, t.puts) ?? out.res;
    }
    if ('err' in out) {
      const msg = (out.err as Error)?.message ?? '';
      if (!AGAIN.test(msg) || Date.now() >= deadline) throw out.err;
      uncertain ||= MAYBE_APPLIED.test(msg);
    } else uncertain = true;
    await sleep(Math.max(0, Math.min(RETRY_PAUSE_MS, deadline - Date.now())));
    if (Date.now() >= deadline) throw new AttemptsTimedOut();
  }
}

/** The failed compare's read-back holds exactly our values: an earlier attempt committed them. */
function appliedEarlier(res: ITxnResponse, puts: StoreTxn['puts']): ITxnResponse | undefined {
  if (puts.length === 0) return undefined;
  let revision = 0;
  for (let i = 0; i < puts.length; i++) {
    const kv = res.responses[i]?.response_range?.kvs[0];
    if (!kv || !kv.value.equals(puts[i].value)) return undefined;
    revision = Math.max(revision, Number(kv.mod_revision));
  }
  return { header: { ...res.header, revision: String(revision) }, succeeded: true, responses: [] };
}

/** One call, given up (not cancelled: it may still commit) once etcd's raft leader changed under it. */
async function attempt(
  client: Etcd3,
  req: { compare: ICompare[]; success: IRequestOp[]; failure: IRequestOp[] },
  deadline: number,
  termBefore: string | undefined,
): Promise<Outcome> {
  let settled = false;
  const call: Promise<Outcome> = client.kv.txn(req, { deadline: new Date(deadline) }).then(
    (res) => ({ res }),
    (err: unknown) => ({ err }),
  );
  const watch = async (): Promise<Outcome> => {
    await sleep(LEADER_CHECK_AFTER_MS);
    let last = termBefore;
    while (!settled && Date.now() < deadline) {
      const st = await client.maintenance.status({ deadline: new Date(Date.now() + 1000) }).catch(() => undefined);
      if (settled) break;
      // A member that does not answer at all proves nothing: keep waiting for the call.
      if (st && (st.leader === '0' || (last !== undefined && st.raftTerm !== last))) return { abandoned: true };
      if (st) last = st.raftTerm;
      await sleep(LEADER_CHECK_EVERY_MS);
    }
    return call;
  };
  try {
    return await Promise.race([call, watch()]);
  } finally {
    settled = true;
  }
}
