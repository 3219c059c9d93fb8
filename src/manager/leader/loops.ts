import type { Store } from '../store/store.js';
import type { Logger } from '../../util/log.js';

/**
 * Control loops that run on the leader only (orchestrators, allocator, scheduler, node
 * liveness). Each loop is started when this manager becomes leader and stopped (its signal
 * aborted) when it loses leadership; its writes must use `{ fenced: true }`.
 */
export interface LeaderLoopContext {
  store: Store;
  log: Logger;
  /** Aborted when leadership is lost or the manager stops. */
  signal: AbortSignal;
  nodeId: string;
}

export type LeaderLoop = (ctx: LeaderLoopContext) => void | Promise<void>;

const registered = new Map<string, LeaderLoop>();

/** Loops register here once at import time; every manager runs them while it leads. */
export function registerLeaderLoop(name: string, loop: LeaderLoop): void {
  registered.set(name, loop);
}

/** Runs the registered loops for one term of leadership. */
export class LeaderLoops {
  private controller?: AbortController;

  constructor(private readonly store: Store, private readonly log: Logger, private readonly nodeId: string, private readonly extra: Map<string, LeaderLoop> = new Map()) {}

  start(): void {
    this.stop();
    const controller = (this.controller = new AbortController());
    for (const [name, loop] of [...registered, ...this.extra]) {
      const log = this.log.child({ loop: name });
      Promise.resolve()
        .then(() => loop({ store: this.store, log, signal: controller.signal, nodeId: this.nodeId }))
        .catch((err) => { if (!controller.signal.aborted) log.error({ err }, 'leader loop failed'); });
    }
  }

  stop(): void {
    this.controller?.abort();
    this.controller = undefined;
  }
}
