import { EventEmitter } from 'node:events';

/** One message of `GET /events`, in the Engine API's shape (with the legacy status/id/from fields). */
export interface EngineEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local' | 'swarm';
  time: number;
  timeNano: number;
  status?: string;
  id?: string;
  from?: string;
}

const KEEP = 1000;

/** The node's event log: recent events for `since`, and a live feed for `docker events`. */
export class EventLog {
  private readonly recent: EngineEvent[] = [];
  private readonly feed = new EventEmitter();

  constructor() {
    this.feed.setMaxListeners(0);
  }

  emit(type: string, action: string, id: string, attributes: Record<string, string> = {}): void {
    const nano = BigInt(Date.now()) * 1_000_000n + BigInt(Math.floor((performance.now() % 1) * 1e6));
    const e: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(nano / 1_000_000_000n),
      timeNano: Number(nano),
      ...(type === 'container' ? { status: action, id, from: attributes.image ?? '' } : {}),
    };
    this.publish(e);
  }

  /** An event made elsewhere (the swarm's, from a manager's store), kept and fed like the node's own. */
  publish(e: EngineEvent): void {
    this.recent.push(e);
    if (this.recent.length > KEEP) this.recent.splice(0, this.recent.length - KEEP);
    this.feed.emit('event', e);
  }

  /** Events at or after `sinceSec`, then live ones through `fn` until the returned function is called. */
  subscribe(sinceSec: number | undefined, fn: (e: EngineEvent) => void): () => void {
    if (sinceSec !== undefined) for (const e of this.recent) if (e.timeNano >= sinceSec * 1e9) fn(e);
    this.feed.on('event', fn);
    return () => this.feed.off('event', fn);
  }

  history(sinceSec: number, untilSec: number): EngineEvent[] {
    return this.recent.filter((e) => e.timeNano >= sinceSec * 1e9 && e.timeNano <= untilSec * 1e9);
  }
}

/** Docker's `docker events --filter` keys, each matching any of its values. */
export function eventMatches(e: EngineEvent, filters: Map<string, string[]>): boolean {
  for (const [k, vs] of filters) {
    if (vs.length === 0) continue;
    const a = e.Actor.Attributes;
    const ok = vs.some((v) => {
      switch (k) {
        case 'type':
          return e.Type === v;
        case 'event':
          return e.Action === v || e.Action.startsWith(`${v}:`);
        case 'container':
          return e.Type === 'container' && (e.Actor.ID.startsWith(v) || a.name === v);
        case 'image':
          return a.image === v || e.Actor.ID === v;
        case 'label': {
          const i = v.indexOf('=');
          return i < 0 ? v in a : a[v.slice(0, i)] === v.slice(i + 1);
        }
        case 'scope':
          return e.scope === v;
        case 'volume':
          return e.Type === 'volume' && e.Actor.ID === v;
        // dockerd's fuzzyMatchName: the ID or the name, a prefix of either.
        case 'network':
        case 'node':
        case 'service':
        case 'secret':
        case 'config':
          return e.Type === k && (e.Actor.ID.startsWith(v) || (a.name ?? '').startsWith(v));
        default:
          return true;
      }
    });
    if (!ok) return false;
  }
  return true;
}
