import type { Etcd3, Lease } from 'etcd3';
import { LIVENESS_PREFIX } from './liveness.js';

/**
 * Who holds a node's liveness key. The value is `<epoch>/<session ID>`: the epoch is the
 * agent's, strictly increasing over its registration attempts, so of two sessions of one node
 * the later attempt wins, wherever and whenever each registration completes. An attempt the
 * agent abandoned (it timed out and registered with another manager) therefore never takes the
 * key from the session the agent lives in: that left nodes Down for good, the key on a lease
 * nobody renewed.
 */
export interface LivenessHolder {
  epoch: number;
  sessionId: string;
}

/** Fixed width: etcd compares values as bytes. */
const EPOCH_DIGITS = 16;

export function livenessValue(h: LivenessHolder): string {
  return `${String(h.epoch).padStart(EPOCH_DIGITS, '0')}/${h.sessionId}`;
}

export function parseLivenessValue(v: string): LivenessHolder | undefined {
  const m = /^(\d+)\/(.+)$/.exec(v);
  return m ? { epoch: Number(m[1]), sessionId: m[2] } : undefined;
}

export type ClaimResult = 'held' | 'superseded';

/**
 * Puts the node's liveness key on `lease` unless a later registration of the node holds it:
 * one compare-and-put on the key's revision, so a concurrent claim makes it read again.
 * 'superseded': a later session holds the key, this one must end.
 */
export async function claimLiveness(
  client: Etcd3,
  nodeId: string,
  lease: Lease,
  me: LivenessHolder,
): Promise<ClaimResult> {
  const key = Buffer.from(LIVENESS_PREFIX + nodeId);
  const leaseId = await lease.grant();
  for (let attempt = 0; ; attempt++) {
    const cur = (await client.kv.range({ key })).kvs[0];
    const held = cur ? parseLivenessValue(cur.value.toString()) : undefined;
    if (held && held.epoch > me.epoch) return 'superseded';
    if (held && held.sessionId === me.sessionId && cur!.lease === leaseId) return 'held';
    const res = await client.kv.txn({
      compare: [
        cur
          ? { key, target: 'Mod', result: 'Equal', mod_revision: cur.mod_revision }
          : { key, target: 'Create', result: 'Equal', create_revision: 0 },
      ],
      success: [{ request_put: { key, value: Buffer.from(livenessValue(me)), lease: leaseId } }],
      failure: [],
    });
    if (res.succeeded) return 'held';
    if (attempt >= 10) throw new Error(`liveness key of ${nodeId} keeps changing`);
  }
}
