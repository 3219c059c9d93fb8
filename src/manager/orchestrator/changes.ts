import type { Service, Task } from '../../cluster/types.js';
import type { Change } from '../store/store.js';

/**
 * The writes one orchestration pass wants: later edits of the same task in the pass build
 * on earlier ones, so the batch holds one change per object.
 */
export class PassChanges {
  private readonly created = new Map<string, Task>();
  /** Service ID → IDs of the tasks this pass created for it (lookups per service, not scans). */
  private readonly createdByService = new Map<string, Set<string>>();
  private readonly updated = new Map<string, Task>();
  private readonly deleted = new Set<string>();
  private readonly services = new Map<string, Service>();

  /** The task as this pass last left it. */
  current(t: Task): Task {
    return this.created.get(t.ID) ?? this.updated.get(t.ID) ?? t;
  }

  create(t: Task): void {
    this.created.set(t.ID, t);
    let ids = this.createdByService.get(t.ServiceID);
    if (!ids) this.createdByService.set(t.ServiceID, (ids = new Set()));
    ids.add(t.ID);
  }

  hasCreated(id: string): boolean {
    return this.created.has(id);
  }

  get createdCount(): number {
    return this.created.size;
  }

  /** The tasks this pass created for one service, as it last left them. */
  createdFor(serviceId: string): Task[] {
    return [...(this.createdByService.get(serviceId) ?? [])].map((id) => this.created.get(id)!);
  }

  update(t: Task): void {
    if (this.created.has(t.ID)) this.created.set(t.ID, t);
    else this.updated.set(t.ID, t);
  }

  delete(id: string): void {
    this.updated.delete(id);
    this.deleted.add(id);
  }

  updateService(s: Service): void {
    this.services.set(s.ID, s);
  }

  get size(): number {
    return this.created.size + this.updated.size + this.deleted.size + this.services.size;
  }

  createdTasks(): Task[] {
    return [...this.created.values()];
  }

  toChanges(): Change[] {
    return [
      ...[...this.services.values()].map((o): Change => ({ kind: 'services', op: 'update', object: o })),
      ...[...this.updated.values()].map((o): Change => ({ kind: 'tasks', op: 'update', object: o })),
      ...[...this.created.values()].map((o): Change => ({ kind: 'tasks', op: 'create', object: o })),
      ...[...this.deleted].map((id): Change => ({ kind: 'tasks', op: 'delete', id })),
    ];
  }
}
