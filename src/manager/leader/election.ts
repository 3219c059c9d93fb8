import { EventEmitter } from 'node:events';
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from '../../util/log.js';
import type { Fence } from '../store/etcd-store.js';

export const LEADER_KEY = '/shoal/leader';
/**
 * Lease TTL in seconds: how long a leader that no one can prove dead keeps the key (its shoald
 * alive but cut off from etcd, or its machine gone without a trace). A leader whose manager
 * refuses connections is replaced sooner (HOLDER_CHECK_MS). README.md (here) has the timings.
 */
export const LEADER_TTL_S = 5;
/** How often the member that leads etcd's raft checks that the leader key's holder is alive. */
export const HOLDER_CHECK_MS = 100;

/** Whether the manager `nodeId` is certainly gone (its cluster port refuses connections). */
export type HolderGone = (nodeId: string) => Promise<boolean>;

/**
 * Leader election on an etcd lease: whoever creates LEADER_KEY (bound to its lease) leads until
 * the lease ends. The key's create_revision is the fencing token every leader-loop write compares.
 * Emits 'leader' (true|false) on change.
 */
export class LeaderElection extends EventEmitter implements Fence {
  readonly key = LEADER_KEY;
  private lease?: Lease;
  private myRevision?: string;
  /** The lease this manager campaigns on (its key from an earlier life has another). */
  private leaseId?: string;
  private stopped = false;
  /** Node ID of the current leader, as last seen. */
  leaderId?: string;

  constructor(
    private readonly client: Etcd3,
    private readonly nodeId: string,
    private readonly log: Logger,
    private readonly holderGone?: HolderGone,
  ) {
    super();
  }

  get isLeader(): boolean {
    return this.myRevision !== undefined;
  }

  createRevision(): string | undefined {
    return this.myRevision;
  }

  start(): void {
    this.runLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.emit('stopping');
    this.lose();
    const lease = this.lease;
    this.lease = undefined; // a resumed election campaigns on a new lease
    await lease?.revoke().catch(() => undefined);
  }

  /** Campaigns again after stop() (a demotion that did not go through). */
  resume(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (!this.running) this.runLoop();
  }

  private runLoop(): void {
    this.loop().catch((err: unknown) => this.log.warn({ err }, 'election loop failed'));
  }

  private lose(): void {
    if (this.myRevision === undefined) return;
    this.myRevision = undefined;
    this.log.warn('lost leadership');
    this.emit('leader', false);
  }

  private running = false;
  private async loop(): Promise<void> {
    this.running = true;
    while (!this.stopped) {
      try {
        await this.campaign();
      } catch (err) {
        this.lose();
        this.log.debug({ err }, 'election round failed');
        await sleep(1000);
      }
    }
    this.running = false;
  }

  /** One round: try to take the key; if someone holds it, wait until it is gone. */
  private async campaign(): Promise<void> {
    if (!this.lease) {
      this.lease = this.client.lease(LEADER_TTL_S);
      this.lease.on('lost', () => {
        this.lease = undefined;
        this.lose();
      });
    }
    const leaseId = await this.lease.grant();
    this.leaseId = leaseId;
    const key = Buffer.from(LEADER_KEY);
    const res = await this.client.kv.txn({
      compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key, value: Buffer.from(this.nodeId), lease: leaseId } }],
      failure: [{ request_range: { key } }],
    });
    if (res.succeeded) {
      this.myRevision = res.header.revision;
      this.leaderId = this.nodeId;
      this.log.info({ revision: this.myRevision }, 'became leader');
      this.emit('leader', true);
    } else {
      const kv = res.responses[0].response_range.kvs[0];
      this.leaderId = kv?.value.toString();
      if (kv && kv.lease === leaseId) {
        // Our own key from before a reconnect: still ours.
        this.myRevision = kv.create_revision;
        this.emit('leader', true);
      }
    }
    await this.waitForChange();
  }

  /** Resolves when the leader key is deleted (or our lease is lost). */
  private async waitForChange(): Promise<void> {
    const w = await this.client.watch().key(LEADER_KEY).create();
    let timer: NodeJS.Timeout | undefined;
    try {
      const still = await this.client.get(LEADER_KEY).exec();
      const kv = still.kvs[0];
      if (!kv) return;
      this.leaderId = kv.value.toString();
      if (this.myRevision && kv.create_revision !== this.myRevision) this.lose();
      const holder = { id: kv.value.toString(), rev: kv.create_revision, lease: kv.lease };
      timer = setInterval(() => {
        this.checkHolder(holder).catch(() => undefined);
      }, HOLDER_CHECK_MS);
      await new Promise<void>((resolve) => {
        w.on('delete', () => {
          this.leaderId = undefined;
          resolve();
        });
        w.on('put', (kv) => {
          this.leaderId = kv.value.toString();
          Object.assign(holder, { id: this.leaderId, rev: kv.create_revision, lease: kv.lease });
        });
        w.on('disconnected', () => resolve());
        w.on('error', () => resolve());
        this.once('stopping', resolve);
        this.lease?.once('lost', () => resolve());
      });
      this.lose();
    } finally {
      clearInterval(timer);
      await w.cancel().catch(() => undefined);
    }
  }

  private checking = false;
  /**
   * Removes the leader key of a holder that is certainly gone, without waiting out its lease
   * (which etcd even extends by a full TTL when its raft leader changes). Only the member that
   * leads etcd's raft judges: it has a quorum behind it, and one judge means no contest. The
   * delete compares the holder's create_revision, so it removes that term's key and no other;
   * the fencing that guards every leader-loop write is unchanged: a holder that was alive after
   * all can no longer write and steps down when it sees the key change.
   */
  private async checkHolder(holder: { id: string; rev: string; lease: string }): Promise<void> {
    if (this.checking || this.stopped || this.myRevision || !this.holderGone) return;
    this.checking = true;
    try {
      const st = await this.client.maintenance.status({ deadline: new Date(Date.now() + 1000) });
      if (st.leader !== st.header.member_id) return;
      // Our own key from an earlier life of this manager (another lease): gone for sure.
      const ours = holder.id === this.nodeId && holder.lease !== this.leaseId;
      if (!ours && (holder.id === this.nodeId || !(await this.holderGone(holder.id)))) return;
      const key = Buffer.from(LEADER_KEY);
      const res = await this.client.kv.txn({
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: holder.rev }],
        success: [{ request_delete_range: { key } }],
        failure: [],
      });
      if (res.succeeded)
        this.log.warn({ holder: holder.id }, 'leader gone: its key removed without waiting for its lease');
    } catch (err) {
      this.log.debug({ err }, 'leader holder check failed');
    } finally {
      this.checking = false;
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
