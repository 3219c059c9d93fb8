import { EtcdLeaseInvalidError, type Etcd3, type Lease, type Watcher } from 'etcd3';
import type { Logger } from '../../util/log.js';
import { LIVENESS_PREFIX } from './liveness.js';
import { claimLiveness, parseLivenessValue, type LivenessHolder } from './liveness-claim.js';

/** One agent session of this manager. */
export interface Session {
  id: string;
  nodeId: string;
  /** The agent's registration attempt: the later attempt owns the node's liveness key. */
  epoch: number;
  lease: Lease;
  /** A claim of the liveness key in flight (heartbeats restore a key that is not this session's). */
  claiming?: Promise<void>;
  /** Ends the session's stream (the agent then registers again). */
  end?: () => void;
}

/**
 * Sessions' hold on their node's liveness key: the lease each heartbeat renews, and which
 * session holds each node's key (from one watch of every key).
 */
export class SessionLiveness {
  /** Node ID → who holds its liveness key, from a watch (heartbeats compare their session with it). */
  readonly holders = new Map<string, LivenessHolder>();
  private watch?: Promise<Watcher | undefined>;
  /** Lease renewals that failed since the last warning (at most one warning per 5 s). */
  private renewFailures = { count: 0, since: 0 };

  constructor(
    private readonly client: Etcd3,
    private readonly log: Logger,
    private readonly isOpen: (sessionId: string) => boolean,
  ) {}

  /** A heartbeat: the session's lease renewed behind the answer, its key kept its own. */
  renew(s: Session): void {
    s.lease.keepaliveOnce().then(
      () => this.keepLiveness(s),
      (err) => {
        // Gone (expired): the agent must register again. Anything else (etcd busy): the next
        // heartbeat renews it; ending the session would only add a registration's writes.
        if (!(err instanceof EtcdLeaseInvalidError)) return this.renewalFailed(err);
        this.log.warn({ node: s.nodeId }, 'session lease expired; ending the session');
        s.end?.();
      },
    );
  }

  close(): void {
    this.watch?.then((w) => w?.cancel()).catch(() => undefined);
    this.watch = undefined;
  }

  private renewalFailed(err: unknown): void {
    const f = this.renewFailures;
    f.count++;
    if (Date.now() - f.since < 5000) return;
    this.log.warn({ err, failures: f.count }, 'session lease renewals failed');
    f.count = 0;
    f.since = Date.now();
  }

  /**
   * After a renewal: the node's liveness key must be this session's. Missing (deleted, or put by
   * an earlier session whose lease expired) or an earlier session's: it is put back on this
   * session's lease. A later session's: this one is stale and ends (its agent registered since).
   */
  private keepLiveness(s: Session): void {
    const h = this.holders.get(s.nodeId);
    if (h?.sessionId === s.id || s.claiming || !this.isOpen(s.id)) return;
    if (h && h.epoch > s.epoch) {
      this.log.warn(
        { node: s.nodeId, session: s.id, holder: h.sessionId },
        'a later session of this node holds its liveness; ending this one',
      );
      s.end?.();
      return;
    }
    s.claiming = claimLiveness(this.client, s.nodeId, s.lease, { epoch: s.epoch, sessionId: s.id })
      .then(
        (r) => {
          if (r === 'superseded') return s.end?.();
          if (!this.isOpen(s.id)) return;
          if (this.holders.get(s.nodeId)?.sessionId !== s.id)
            this.log.warn(
              { node: s.nodeId, session: s.id, was: h?.sessionId ?? null },
              'liveness key restored by the live session',
            );
          this.holders.set(s.nodeId, { epoch: s.epoch, sessionId: s.id });
        },
        (err) => this.renewalFailed(err),
      )
      .finally(() => {
        s.claiming = undefined;
      });
  }

  /** One watch of every node's liveness key, so a heartbeat knows without a read whether its key is its own. */
  startWatch(): void {
    if (this.watch) return;
    const w = this.client
      .watch()
      .prefix(LIVENESS_PREFIX)
      .create()
      .then(
        (watcher) => {
          const nodeOf = (key: Buffer) => key.toString().slice(LIVENESS_PREFIX.length);
          watcher.on('put', (kv) => {
            const h = parseLivenessValue(kv.value.toString());
            if (h) this.holders.set(nodeOf(kv.key), h);
            else this.holders.delete(nodeOf(kv.key));
          });
          watcher.on('delete', (kv) => this.holders.delete(nodeOf(kv.key)));
          return watcher;
        },
        (err) => {
          this.log.warn({ err }, 'liveness watch failed; retrying with the next session');
          this.watch = undefined;
          return undefined;
        },
      );
    this.watch = w;
  }
}
