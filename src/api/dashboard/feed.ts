import type { Kind } from '../../cluster/types.js';
import type { SwarmNode } from '../../node/node.js';
import type { Manager } from '../../manager/manager.js';
import type { StoreEvent } from '../../manager/store/store.js';
import type { SwarmEvent } from '../../manager/events/swarm-events.js';
import { SHOWN, viewOf } from './view.js';

/** One change the page applies: [kind, id, view] puts, [kind, id, null] removes. */
export type PatchOp = [kind: string, id: string, view: unknown];

/** What a page is sent: the whole picture once, then patches and events as they happen. */
export type FeedMessage =
  | {
      t: 'snapshot';
      manager: boolean;
      self: string;
      nodes: unknown[];
      services: unknown[];
      tasks: unknown[];
      networks: unknown[];
      events: SwarmEvent[];
    }
  | { t: 'patch'; ops: PatchOp[] }
  | { t: 'event'; e: SwarmEvent };

const EVENTS_KEPT = 200;

/**
 * The dashboard's picture of the swarm: the store's watch turned into patches for every open
 * page. Changes are gathered for `flushMs` and sent together, the last change of an object
 * winning, so a burst of 10,000 task updates is one message, not 10,000 re-renders. The
 * manager is looked up every `checkMs` (the node may join, leave, be promoted or demoted):
 * when it changes, every page is sent a fresh snapshot.
 */
export class DashboardFeed {
  private readonly clients = new Set<(m: FeedMessage) => void>();
  private readonly pending = new Map<string, PatchOp>();
  private readonly events: SwarmEvent[] = [];
  private manager: Manager | undefined;
  private leaderId: string | undefined;
  private unwatch?: () => void;
  private flushTimer?: NodeJS.Timeout;
  private checkTimer?: NodeJS.Timeout;

  constructor(
    private readonly swarm: SwarmNode,
    private readonly flushMs = 50,
    private readonly checkMs = 500,
  ) {}

  start(): void {
    this.check();
    this.checkTimer = setInterval(() => this.check(), this.checkMs);
    this.checkTimer.unref();
  }

  stop(): void {
    clearInterval(this.checkTimer);
    clearTimeout(this.flushTimer);
    this.unwatch?.();
    this.clients.clear();
  }

  /** The page's client count, for tests and the bench. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** The current manager, if this node is one with a quorum (its store is readable). */
  currentManager(): Manager | undefined {
    return this.manager;
  }

  /** A swarm event for the feed on the page (the same ones `docker events` shows). */
  event(e: SwarmEvent): void {
    this.events.push(e);
    if (this.events.length > EVENTS_KEPT) this.events.splice(0, this.events.length - EVENTS_KEPT);
    this.broadcast({ t: 'event', e });
  }

  /** Adds a page: it is sent the snapshot now and every message after. Returns the removal. */
  subscribe(send: (m: FeedMessage) => void): () => void {
    send(this.snapshot());
    this.clients.add(send);
    return () => this.clients.delete(send);
  }

  snapshot(): FeedMessage {
    const m = this.manager;
    const all = (kind: Kind) => (m ? m.store.view(kind).map((o) => viewOf(kind, o, this.leaderId)) : []);
    return {
      t: 'snapshot',
      manager: !!m,
      self: this.swarm.nodeId ?? '',
      nodes: all('nodes'),
      services: all('services'),
      tasks: all('tasks'),
      networks: all('networks'),
      events: [...this.events],
    };
  }

  private check(): void {
    let m: Manager | undefined;
    try {
      m = this.swarm.requireManager();
    } catch {
      m = undefined; // not a manager, locked, or without quorum: the page says so
    }
    if (m === this.manager) {
      this.checkLeader();
      return;
    }
    this.unwatch?.();
    this.unwatch = undefined;
    this.manager = m;
    this.leaderId = m?.election.leaderId;
    this.pending.clear();
    if (m) this.unwatch = m.store.watch((evs) => this.onStore(evs));
    const snap = this.snapshot();
    for (const c of this.clients) c(snap);
  }

  /** A new leader changes two node cards: the old one's and the new one's. */
  private checkLeader(): void {
    const m = this.manager;
    const now = m?.election.leaderId;
    if (!m || now === this.leaderId) return;
    const was = this.leaderId;
    this.leaderId = now;
    for (const id of [was, now]) {
      const n = id ? m.store.viewOne('nodes', id) : undefined;
      if (n) this.pending.set(`node/${n.ID}`, ['node', n.ID, viewOf('nodes', n, now)]);
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.pending.size && !this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), this.flushMs);
  }

  private onStore(evs: StoreEvent[]): void {
    for (const ev of evs) {
      const kind = SHOWN[ev.kind];
      if (!kind) continue;
      const id = ev.object.ID;
      this.pending.set(`${kind}/${id}`, [
        kind,
        id,
        ev.action === 'delete' ? null : viewOf(ev.kind, ev.object, this.leaderId),
      ]);
    }
    this.schedule();
  }

  private flush(): void {
    this.flushTimer = undefined;
    if (!this.pending.size) return;
    const ops = [...this.pending.values()];
    this.pending.clear();
    this.broadcast({ t: 'patch', ops });
  }

  private broadcast(m: FeedMessage): void {
    for (const c of this.clients) c(m);
  }
}
