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

/** Runs the manager's leader loops (built by it: manager.ts) for one term of leadership. */
export class LeaderLoops {
  private controller?: AbortController;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly nodeId: string,
    private readonly loops: Map<string, LeaderLoop>,
  ) {}

  start(): void {
    this.stop();
    const controller = (this.controller = new AbortController());
    for (const [name, loop] of this.loops) {
      const log = this.log.child({ loop: name });
      Promise.resolve()
        .then(() => loop({ store: this.store, log, signal: controller.signal, nodeId: this.nodeId }))
        .catch((err) => {
          if (!controller.signal.aborted) log.error({ err }, 'leader loop failed');
        });
    }
  }

  stop(): void {
    this.controller?.abort();
    this.controller = undefined;
  }
}
