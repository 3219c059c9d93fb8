import type { Node, Service, Task, UpdateConfig } from '../../cluster/types.js';
import type { PassChanges } from './changes.js';
import type { RestartSupervisor } from './restart.js';
import { isGlobal, isTaskDirty, newTask } from './task.js';
import { rank, withDesired } from '../../cluster/task-state.js';

/** What the updater remembers about one service's update between passes. */
interface UpdateProgress {
  specVersion: number;
  /** Slots that were dirty when the update started: the failure ratio's denominator. */
  dirtySlots: number;
  /** Tasks this update created → when they were first seen RUNNING (0 = not yet). */
  updated: Map<string, number>;
  failed: Set<string>;
  /** When the last batch finished (all its tasks running), for UpdateConfig.Delay. */
  batchDoneAt?: number;
}

/** The updater's memory, one per orchestrator (swarmkit keeps it in its Updater goroutines). */
export class UpdateTracker {
  private readonly progress = new Map<string, UpdateProgress>();

  get(service: Service, dirtySlots: number): UpdateProgress {
    const v = service.SpecVersion?.Index ?? 0;
    let p = this.progress.get(service.ID);
    if (!p || p.specVersion !== v)
      this.progress.set(service.ID, (p = { specVersion: v, dirtySlots, updated: new Map(), failed: new Set() }));
    return p;
  }

  forget(serviceId: string): void {
    this.progress.delete(serviceId);
  }
}

const DEFAULTS: Required<UpdateConfig> = {
  Parallelism: 1,
  Delay: 0,
  FailureAction: 'pause',
  Monitor: 5e9,
  MaxFailureRatio: 0,
  Order: 'stop-first',
};

/**
 * Rolling update (swarmkit updater): slots whose task runs an older spec are replaced
 * `Parallelism` at a time (0 = all at once), `Delay` apart. stop-first: the old task is set
 * SHUTDOWN and its replacement waits in READY until it stopped; start-first: the replacement
 * starts at once and the old task is shut down when the new one runs. A task this update
 * made that ends before running or within `Monitor` of it is a failure; once failures / dirty
 * slots exceed MaxFailureRatio, FailureAction applies: pause, continue, or roll back to the
 * previous spec (a failing rollback pauses). UpdateStatus tells the CLI where it stands.
 * Returns when the updater wants to look again (the end of a delay), if it does.
 */
export function rollingUpdate(
  pass: PassChanges,
  service: Service,
  slots: Task[][],
  restarts: RestartSupervisor,
  nodes: Map<string, Node> = new Map(),
  now = Date.now(),
  tracker = new UpdateTracker(),
  allTasks: Task[] = [],
): number | undefined {
  const state = service.UpdateStatus?.State;
  const rollingBack = state === 'rollback_started';
  const cfg = { ...DEFAULTS, ...((rollingBack ? service.Spec.RollbackConfig : service.Spec.UpdateConfig) ?? {}) };
  const inUpdate = state === 'updating' || rollingBack;
  const { dirty, inFlight, startFirstOld } = classifySlots(pass, service, slots, nodes, inUpdate);
  for (const t of startFirstOld) {
    const down = withDesired(t, 'shutdown');
    if (down) pass.update(down);
  }
  if (!inUpdate && !dirty.length) return undefined;
  if (state === 'paused' || state === 'rollback_paused') return undefined;

  const progress = tracker.get(service, dirty.length + inFlight);
  if (inUpdate && cfg.FailureAction !== 'continue') {
    if (applyFailureAction(pass, service, cfg, progress, allTasks, now, rollingBack)) return undefined;
  } else {
    for (const t of allTasks)
      if (t.Status.State === 'running' && progress.updated.get(t.ID) === 0) progress.updated.set(t.ID, now);
  }

  if (!dirty.length) {
    if (!inFlight && inUpdate) {
      pass.updateService({
        ...service,
        UpdateStatus: {
          ...service.UpdateStatus!,
          State: rollingBack ? 'rollback_completed' : 'completed',
          CompletedAt: new Date(now).toISOString(),
          Message: rollingBack ? 'rollback completed' : 'update completed',
        },
      });
    }
    return undefined;
  }
  if (!inUpdate) {
    pass.updateService({
      ...service,
      UpdateStatus: { State: 'updating', StartedAt: new Date(now).toISOString(), Message: 'update in progress' },
    });
  }

  // Delay between batches, counted from when the previous batch was all running.
  if (inFlight) {
    progress.batchDoneAt = undefined;
  } else if (progress.updated.size && progress.batchDoneAt === undefined) {
    progress.batchDoneAt = now;
  }
  const delayMs = cfg.Delay / 1e6;
  if (!inFlight && progress.batchDoneAt !== undefined && delayMs > 0 && now < progress.batchDoneAt + delayMs)
    return progress.batchDoneAt + delayMs;

  const budget = cfg.Parallelism === 0 ? dirty.length : Math.max(0, cfg.Parallelism - inFlight);
  replaceBatch(pass, service, dirty.slice(0, budget), cfg, restarts, progress, now);
  if (budget > 0) progress.batchDoneAt = undefined;
  return undefined;
}

/**
 * Slots running an older spec (dirty), slots whose replacement is not running yet (in flight,
 * counted during an update), and start-first old tasks whose replacement runs (to shut down).
 */
function classifySlots(
  pass: PassChanges,
  service: Service,
  slots: Task[][],
  nodes: Map<string, Node>,
  inUpdate: boolean,
): { dirty: Task[][]; inFlight: number; startFirstOld: Task[] } {
  const dirty: Task[][] = [];
  let inFlight = 0;
  const startFirstOld: Task[] = [];
  for (const slot of slots) {
    const current = slot.map((t) => pass.current(t)).filter((t) => rank(t.DesiredState) <= rank('running'));
    if (!current.length) continue;
    const fresh = current.filter((t) => !isTaskDirty(service, t, t.NodeID ? nodes.get(t.NodeID) : undefined));
    if (!fresh.length) {
      dirty.push(current);
      continue;
    }
    if (fresh.some((t) => rank(t.Status.State) < rank('running'))) {
      if (inUpdate) inFlight++;
    } else if (fresh.length < current.length) {
      // start-first: the replacement runs, so the old task can go now.
      startFirstOld.push(...current.filter((t) => !fresh.includes(t)));
    }
  }
  return { dirty, inFlight, startFirstOld };
}

/**
 * Failures of tasks this update made: once they pass MaxFailureRatio, FailureAction applies
 * (roll back, or pause). Returns true when it stopped the update.
 */
function applyFailureAction(
  pass: PassChanges,
  service: Service,
  cfg: Required<UpdateConfig>,
  progress: UpdateProgress,
  allTasks: Task[],
  now: number,
  rollingBack: boolean,
): boolean {
  for (const t of allTasks) {
    if (!progress.updated.has(t.ID) || progress.failed.has(t.ID)) continue;
    if (t.Status.State === 'running' && !progress.updated.get(t.ID)) progress.updated.set(t.ID, now);
    if (rank(t.Status.State) <= rank('running')) continue;
    const ranAt = progress.updated.get(t.ID)!;
    if (ranAt && now - ranAt > cfg.Monitor / 1e6) continue;
    progress.failed.add(t.ID);
    if (progress.failed.size / Math.max(1, progress.dirtySlots) <= cfg.MaxFailureRatio) continue;
    const cause = `due to failure or early termination of task ${t.ID}`;
    if (cfg.FailureAction === 'rollback' && !rollingBack && service.PreviousSpec) {
      pass.updateService({
        ...service,
        Spec: service.PreviousSpec,
        PreviousSpec: undefined,
        SpecVersion: { Index: service.Version.Index },
        UpdateStatus: { ...service.UpdateStatus, State: 'rollback_started', Message: `update rolled back ${cause}` },
      });
    } else {
      pass.updateService({
        ...service,
        UpdateStatus: {
          ...service.UpdateStatus,
          State: rollingBack ? 'rollback_paused' : 'paused',
          Message: `${rollingBack ? 'rollback' : 'update'} paused ${cause}`,
        },
      });
    }
    return true;
  }
  return false;
}

/** One batch: each dirty slot gets a replacement task (stop-first: its old tasks go down first). */
function replaceBatch(
  pass: PassChanges,
  service: Service,
  batch: Task[][],
  cfg: Required<UpdateConfig>,
  restarts: RestartSupervisor,
  progress: UpdateProgress,
  now: number,
): void {
  for (const slot of batch) {
    const old = slot[0];
    const replacement = isGlobal(service) ? newTask(service, undefined, old.NodeID) : newTask(service, old.Slot);
    if (cfg.Order === 'start-first') {
      replacement.DesiredState = 'running';
    } else {
      for (const t of slot) {
        const down = withDesired(t, 'shutdown');
        if (down) pass.update(down);
      }
      replacement.DesiredState = 'ready';
      restarts.delayStart(replacement.ID, old.ID, 0, now);
    }
    pass.create(replacement);
    progress.updated.set(replacement.ID, 0);
  }
}
