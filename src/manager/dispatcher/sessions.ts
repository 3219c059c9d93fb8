import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import type { Node } from '../../cluster/types.js';
import type { EtcdStore } from '../store/etcd-store.js';
import { retryOnConflict } from '../store/retry.js';
import type { Logger } from '../../util/log.js';
import type { ManagerAddr, PeerIdentity, SessionMessage, SessionRequest } from '../../cluster/rpc.js';
import { claimLiveness } from './liveness-claim.js';
import { SessionLiveness, type Session } from './session-liveness.js';

/** SwarmKit defaults: heartbeat 5 s, TTL = 3 periods. */
export const DEFAULT_HEARTBEAT_MS = 5000;
export const GRACE_MULTIPLIER = 3;

export function heartbeatPeriodMs(store: EtcdStore): number {
  const c = store.view('cluster')[0];
  const ns = c?.Spec.Dispatcher?.HeartbeatPeriod;
  return ns ? Math.max(100, Math.round(ns / 1e6)) : DEFAULT_HEARTBEAT_MS;
}

export function managerAddrs(store: EtcdStore): ManagerAddr[] {
  return store
    .view('nodes')
    .filter((n) => n.Spec.Role === 'manager' && n.ManagerStatus?.Addr)
    .map((n) => ({ nodeId: n.ID, addr: n.ManagerStatus!.Addr }));
}

export interface SessionsDeps {
  store: EtcdStore;
  client: Etcd3;
  log: Logger;
  /** What every SessionMessage carries beside the node and managers. */
  trust(): Pick<SessionMessage, 'rootCA' | 'signingRoot' | 'apiClientCA'>;
}

interface SessionListener {
  changed(): void;
  removed(): void;
}

/** Agent sessions of this manager: registration, the session stream, the node's description. */
export class Sessions {
  private readonly sessions = new Map<string, Session>();
  private readonly resenders = new Set<() => void>();
  /** node ID → its sessions' listeners (nodeListeners). */
  private readonly sessionListeners = new Map<string, Set<SessionListener>>();
  private unwatchNodes?: () => void;
  /** Sessions registered per node since this dispatcher started (logged with each registration). */
  private readonly registrations = new Map<string, number>();
  readonly liveness: SessionLiveness;

  constructor(
    private readonly d: SessionsDeps,
    private readonly closers: Set<() => void>,
  ) {
    this.liveness = new SessionLiveness(d.client, d.log, (id) => this.sessions.has(id));
  }

  get size(): number {
    return this.sessions.size;
  }

  /** The live session `sessionId` if it is `nodeId`'s. */
  of(nodeId: string, sessionId: string): Session | undefined {
    const s = this.sessions.get(sessionId);
    return s && s.nodeId === nodeId ? s : undefined;
  }

  /** Sends every session its SessionMessage again (the root CA changed). */
  resend(): void {
    for (const r of [...this.resenders]) r();
  }

  close(): void {
    this.unwatchNodes?.();
    this.unwatchNodes = undefined;
    for (const s of this.sessions.values()) s.lease.release();
    this.sessions.clear();
    this.liveness.close();
  }

  /** A registration: the node's description stored, its liveness claimed, then the session stream. */
  async open(call: grpc.ServerWritableStream<SessionRequest, SessionMessage>, id: PeerIdentity): Promise<void> {
    const req = call.request;
    const observed = peerIp(call.getPeer());
    const periodMs = heartbeatPeriodMs(this.d.store);
    const ttl = Math.max(2, Math.ceil((periodMs * GRACE_MULTIPLIER) / 1000));
    const lease = this.d.client.lease(ttl, { autoKeepAlive: false });
    // An agent too old to send an epoch: its registration counts from when it arrived here.
    const epoch = Number.isSafeInteger(req.epoch) && req.epoch! > 0 ? req.epoch! : Date.now();
    const session: Session = { id: randomBytes(12).toString('hex'), nodeId: id.nodeId, epoch, lease };
    // Listened for before the registration's writes: a stream the agent gave up on while they
    // were in flight (an election made them slow) must not become a session.
    let gone = false;
    const early = () => {
      gone = true;
    };
    call.on('cancelled', early);
    call.on('error', early);
    this.liveness.startWatch();
    try {
      await testRegistrationHold(epoch);
      await this.writeNode(id.nodeId, req.description, { State: 'ready', Addr: req.addr || observed });
      if (gone) throw new Error('the agent left before its registration completed');
      if ((await claimLiveness(this.d.client, id.nodeId, lease, { epoch, sessionId: session.id })) === 'superseded')
        throw new Error('a later session of this node holds its liveness');
      this.liveness.holders.set(id.nodeId, { epoch, sessionId: session.id });
      if (gone) throw new Error('the agent left before its registration completed');
    } catch (err) {
      this.d.log.warn({ err, node: id.nodeId, session: session.id, epoch }, 'session registration failed');
      // A key this lease may hold goes with it: only a live session's lease may keep a node alive.
      lease.revoke().catch(() => undefined);
      // emit('error'), not destroy(): grpc-js sends a status to the client only for the former.
      call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: (err as Error).message });
      return;
    } finally {
      call.off('cancelled', early);
      call.off('error', early);
    }
    this.serve(call, session, observed);
  }

  /** A registered session: its SessionMessage now and whenever its node, the cluster or a manager changes. */
  private serve(
    call: grpc.ServerWritableStream<SessionRequest, SessionMessage>,
    session: Session,
    observed: string,
  ): void {
    const nodeId = session.nodeId;
    this.sessions.set(session.id, session);
    const registrations = (this.registrations.get(nodeId) ?? 0) + 1;
    this.registrations.set(nodeId, registrations);
    this.d.log.info({ node: nodeId, addr: observed, session: session.id, registrations }, 'agent session registered');
    const send = () => {
      const node = this.d.store.viewOne('nodes', nodeId);
      if (node)
        call.write({
          sessionId: session.id,
          node,
          managers: managerAddrs(this.d.store),
          heartbeatPeriodMs: heartbeatPeriodMs(this.d.store),
          ...this.d.trust(),
        });
    };
    send();
    this.resenders.add(send);
    const listener = { changed: send, removed: () => end() };
    this.nodeListeners(nodeId).add(listener);
    const end = () => {
      const set = this.nodeListeners(nodeId);
      set.delete(listener);
      if (!set.size) this.sessionListeners.delete(nodeId);
      this.resenders.delete(send);
      this.closers.delete(end);
      // The liveness lease is left to expire: that is how the leader learns the node is gone.
      this.sessions.delete(session.id);
      call.end();
    };
    session.end = end;
    this.closers.add(end);
    call.on('cancelled', end);
    call.on('error', end);
  }

  /**
   * The sessions of a node, told when its node object (or the cluster, or a manager) changes,
   * from one store watch for all of them: one per session made every batch of task events
   * cost sessions × events.
   */
  private nodeListeners(nodeId: string): Set<SessionListener> {
    if (!this.unwatchNodes) {
      this.unwatchNodes = this.d.store.watch((evs) => {
        let all = false;
        const changed = new Set<string>();
        const removed = new Set<string>();
        for (const e of evs) {
          if (e.kind === 'cluster') all = true;
          else if (e.kind === 'nodes') {
            if ((e.object as Node).Spec.Role === 'manager') all = true;
            changed.add(e.object.ID);
            if (e.action === 'delete') removed.add(e.object.ID);
          }
        }
        const notify = all
          ? [...this.sessionListeners.values()]
          : [...changed].map((n) => this.sessionListeners.get(n) ?? new Set<SessionListener>());
        for (const set of notify) for (const l of [...set]) l.changed();
        for (const n of removed) for (const l of [...(this.sessionListeners.get(n) ?? [])]) l.removed();
      });
    }
    let set = this.sessionListeners.get(nodeId);
    if (!set) this.sessionListeners.set(nodeId, (set = new Set()));
    return set;
  }

  /** Stores what the agent says of its node; a write with nothing new is skipped. */
  async writeNode(nodeId: string, description: Node['Description'], status?: Node['Status']): Promise<void> {
    await retryOnConflict(
      async () => {
        const n = this.d.store.get('nodes', nodeId);
        if (!n) throw new Error('node removed');
        // A reconnect with nothing new must not bump the node's version under a client's update.
        if (
          JSON.stringify(description) === JSON.stringify(n.Description) &&
          (!status || JSON.stringify(status) === JSON.stringify(n.Status))
        )
          return;
        n.Description = description;
        if (status) n.Status = status;
        await this.d.store.commit([{ kind: 'nodes', op: 'update', object: n }]);
      },
      { exhausted: () => undefined },
    );
  }
}

/**
 * Tests only: SHOAL_TEST_REGISTRATION_HOLD_FILE names a file holding an epoch; while it exists,
 * registrations of that epoch or earlier wait before their writes (a manager whose store is
 * slow during an election), so a test can hold one back until the agent has a session elsewhere.
 */
async function testRegistrationHold(epoch: number): Promise<void> {
  const f = process.env.SHOAL_TEST_REGISTRATION_HOLD_FILE;
  if (!f) return;
  const { readFileSync } = await import('node:fs');
  const holds = () => {
    try {
      return epoch <= Number(readFileSync(f, 'utf8'));
    } catch {
      return false;
    }
  };
  while (holds()) await new Promise((r) => setTimeout(r, 100));
}

/** "ipv4:10.0.0.2:51234" or "10.0.0.2:51234" → "10.0.0.2". */
function peerIp(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const m = /^\[?([^\]]+?)\]?:\d+$/.exec(p);
  return (m ? m[1] : p).replace(/^::ffff:/, '');
}
