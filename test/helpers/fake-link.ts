import type { Task, TaskStatus } from '../../src/cluster/types.js';
import type { AgentLink } from '../../src/agent/link.js';

type AssignmentsListener = Parameters<AgentLink['onAssignments']>[0];

/** The session side of a Worker for unit tests: records status reports, assignments pushed by hand. */
export class FakeLink implements AgentLink {
  fn: AssignmentsListener = () => {};
  readonly reports: { taskId: string; status: TaskStatus }[] = [];
  onAssignments(fn: AssignmentsListener) {
    this.fn = fn;
  }
  async reportStatus(u: { taskId: string; status: TaskStatus }[]) {
    this.reports.push(...u);
  }
  states(id: string) {
    return this.reports.filter((r) => r.taskId === id).map((r) => r.status.State);
  }
  last(id: string) {
    return this.reports.filter((r) => r.taskId === id).at(-1)?.status;
  }
}
