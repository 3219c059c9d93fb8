import type { Task } from '../../cluster/types.js';
import type { Logger } from '../../util/log.js';
import type { Store } from '../store/store.js';
import { StoreLoop } from '../loop.js';
import { RestartSupervisor } from './restart.js';
import { UpdateTracker } from './update.js';

/**
 * What the replicated and global orchestrators share: the restart supervisor and the updater's
 * memory, a pass debounced 10 ms (at most 200 ms after the first event), and task lookups by
 * ID in the store's cache without copies.
 */
export abstract class ServiceOrchestrator extends StoreLoop {
  readonly restarts = new RestartSupervisor();
  readonly updates = new UpdateTracker();
  /** Task by ID as the cache holds it (what the restart supervisor checks old tasks against). */
  protected readonly taskById = {
    get: (id: string): Task | undefined => this.store.viewOne('tasks', id),
    has: (id: string): boolean => !!this.store.viewOne('tasks', id),
  };

  constructor(store: Store, log: Logger, name: string) {
    super(store, log.child({ loop: name }), 10, 200);
  }
}
