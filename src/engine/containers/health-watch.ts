import { saveRecord, type ContainerRecord } from './record.js';
import { HealthMonitor } from './health.js';
import type { ContainerTable } from './table.js';

/** The health checks of running containers; status changes are saved and become events. */
export class HealthWatch {
  private readonly monitors = new Map<string, HealthMonitor>();

  constructor(private readonly table: ContainerTable) {}

  /** Runs the container's health check, if it has one. */
  watch(rec: ContainerRecord): void {
    const t = this.table;
    const mon = new HealthMonitor(rec, t.runc.root, t.paths(rec.id), (changed) => {
      if (!t.records.has(rec.id)) return;
      saveRecord(t.paths(rec.id).record, rec);
      if (changed && rec.state.Health) {
        t.event(rec, `health_status: ${rec.state.Health.Status}`);
        t.emitter.emit(`health:${rec.id}`);
      }
    });
    this.monitors.set(rec.id, mon);
    mon.start();
  }

  stop(id: string): void {
    this.monitors.get(id)?.stop();
    this.monitors.delete(id);
  }

  stopAll(): void {
    for (const m of this.monitors.values()) m.stop();
  }
}
