import { EventEmitter } from 'node:events';
import type { Logger } from '../../util/log.js';
import { badRequest, noSuchContainer } from '../../util/errors.js';
import { KeyedLock } from '../../util/serial-queue.js';
import { daemonPaths, type DaemonConfig } from '../config.js';
import type { EventLog } from '../events.js';
import { parseLink } from './links.js';
import { containerPaths, type ContainerRecord } from './record.js';
import { Runc } from './runtime.js';

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

/** Running or paused: its processes exist. */
export function hasProcess(r: ContainerRecord): boolean {
  return r.state.Status === 'running' || r.state.Status === 'paused';
}

/**
 * The node's container records and what every part of the container manager shares: Docker's
 * name lookup, one lock per container, the exit / removal / health notifications and events.
 */
export class ContainerTable {
  readonly runc: Runc;
  readonly records = new Map<string, ContainerRecord>();
  /** name (with slash) → ID; reserved before anything is written so concurrent creates cannot share one. */
  readonly names = new Map<string, string>();
  /** Start, stop, remove, exit handling of one container run one at a time. */
  readonly lock = new KeyedLock();
  /** Where conmon writes `<id>` with the exit code when a container's init exits. */
  readonly exitsDir: string;
  /** `exit:<id>`, `removed:<id>`, `health:<id>`. */
  readonly emitter = new EventEmitter();
  /** Exits seen per container since this daemon started: attach and `logs -f` end on a change. */
  private readonly exitSeq = new Map<string, number>();

  constructor(
    readonly config: DaemonConfig,
    readonly log: Logger,
    /** `docker events`: what happens to containers here. */
    readonly eventLog: EventLog,
  ) {
    const dp = daemonPaths(config);
    this.runc = new Runc(dp.runcRoot);
    this.exitsDir = dp.exits;
    this.emitter.setMaxListeners(0);
  }

  paths(id: string) {
    return containerPaths(this.config.dataRoot, this.config.execRoot, id);
  }

  locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(id, fn);
  }

  /** Docker's lookup: full ID, then exact name, then a unique ID prefix. 404 otherwise. */
  get(ref: string): ContainerRecord {
    const byId = this.records.get(ref);
    if (byId) return byId;
    const byName = this.names.get(ref.startsWith('/') ? ref : '/' + ref);
    if (byName && this.records.has(byName)) return this.records.get(byName)!;
    if (ref.indexOf('/', 1) > 0) {
      const linked = this.byLinkName(ref);
      if (linked) return linked;
    }
    if (/^[a-f0-9]+$/.test(ref)) {
      const matches = [...this.records.keys()].filter((id) => id.startsWith(ref));
      if (matches.length > 1) throw badRequest(`Multiple IDs found with provided prefix: ${ref}`);
      if (matches.length === 1) return this.records.get(matches[0])!;
    }
    throw noSuchContainer(ref);
  }

  find(ref: string): ContainerRecord | undefined {
    try {
      return this.get(ref);
    } catch {
      return undefined;
    }
  }

  all(): ContainerRecord[] {
    return [...this.records.values()];
  }

  isRunning(ref: string): boolean {
    return this.get(ref).state.Status === 'running';
  }

  /** `/<parent>/<alias>` → the linked container, as dockerd's name lookup finds it. */
  private byLinkName(ref: string): ContainerRecord | undefined {
    const name = ref.startsWith('/') ? ref : `/${ref}`;
    const cut = name.lastIndexOf('/');
    if (cut <= 0) return undefined;
    const parentId = this.names.get(name.slice(0, cut));
    const parent = parentId ? this.records.get(parentId) : undefined;
    const links = Array.isArray(parent?.hostConfig.Links) ? (parent!.hostConfig.Links as string[]) : [];
    const link = links.map(parseLink).find((l) => l.name === name);
    const childId = link ? this.names.get(link.child) : undefined;
    return childId ? this.records.get(childId) : undefined;
  }

  /** A container event for `docker events`: image, name and labels as attributes, as dockerd sends them. */
  event(rec: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.eventLog.emit('container', action, rec.id, {
      ...(rec.config.Labels ?? {}),
      image: rec.image,
      name: rec.name.slice(1),
      ...extra,
    });
  }

  // --- exits and removal, as waiters see them ---------------------------------------------------

  /** Number of exits seen for this container since the daemon started. */
  exits(id: string): number {
    return this.exitSeq.get(id) ?? 0;
  }

  /** Counts the exit and wakes its waiters. */
  noteExit(id: string): void {
    this.exitSeq.set(id, this.exits(id) + 1);
    this.emitter.emit(`exit:${id}`);
  }

  /**
   * `POST /containers/{id}/wait`: resolves with the exit code once the condition holds.
   * Register before starting the container (as `docker run` does) to catch fast exits.
   */
  wait(
    ref: string,
    condition: WaitCondition = 'not-running',
    signal?: AbortSignal,
  ): Promise<{ StatusCode: number; Error?: { Message: string } }> {
    const rec = this.get(ref);
    const id = rec.id;
    const result = () => ({
      StatusCode: rec.state.ExitCode,
      ...(rec.state.Error ? { Error: { Message: rec.state.Error } } : {}),
    });
    if (condition === 'not-running' && !hasProcess(rec)) return Promise.resolve(result());
    return new Promise((resolve) => {
      const ev = condition === 'removed' ? `removed:${id}` : `exit:${id}`;
      const done = () => {
        this.emitter.off(ev, done);
        this.emitter.off(`removed:${id}`, done);
        resolve(result());
      };
      this.emitter.on(ev, done);
      if (ev !== `removed:${id}`) this.emitter.on(`removed:${id}`, done);
      signal?.addEventListener('abort', () => {
        this.emitter.off(ev, done);
        this.emitter.off(`removed:${id}`, done);
      });
    });
  }

  /** True once the container is not running (false after `ms`). */
  waitNotRunning(id: string, ms?: number): Promise<boolean> {
    const rec = this.records.get(id);
    if (!rec || !hasProcess(rec)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onExit = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer =
        ms === undefined
          ? undefined
          : setTimeout(() => {
              this.emitter.off(`exit:${id}`, onExit);
              resolve(false);
            }, ms);
      this.emitter.once(`exit:${id}`, onExit);
    });
  }

  /** Subscribes to a container's exits and removal; returns the unsubscribe. */
  onExit(id: string, fn: () => void): () => void {
    this.emitter.on(`exit:${id}`, fn);
    this.emitter.on(`removed:${id}`, fn);
    return () => {
      this.emitter.off(`exit:${id}`, fn);
      this.emitter.off(`removed:${id}`, fn);
    };
  }

  /** Subscribes to a container's health status changes; returns the unsubscribe. */
  onHealth(id: string, fn: () => void): () => void {
    this.emitter.on(`health:${id}`, fn);
    return () => {
      this.emitter.off(`health:${id}`, fn);
    };
  }
}
