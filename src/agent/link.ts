import type { Task, TaskStatus } from '../cluster/types.js';
import type { AssignedFile } from '../cluster/rpc.js';

/** The secrets and configs the assigned tasks reference, data in the clear: kept in memory only. */
export interface AssignedFiles {
  secrets?: AssignedFile[];
  configs?: AssignedFile[];
}

/**
 * What the agent's session to a manager gives the worker: the node's assigned tasks and a way
 * to report their observed state. The session (mTLS gRPC, failover between managers) owns
 * the transport; the worker owns turning tasks into containers.
 */
/** What one assignments message changed, after the complete set (swarmkit's incremental Update). */
export interface AssignmentChanges {
  /** New tasks and tasks whose assignment changed. */
  tasks: Task[];
  /** Tasks no longer assigned. */
  removes: string[];
}

export interface AgentLink {
  /**
   * Called with the complete set of tasks assigned to this node whenever it changes, and after
   * every (re)connect; `changes` says what changed since the previous call, when the session
   * knows (absent for a complete set: the first after a connect).
   */
  onAssignments(fn: (tasks: Task[], files?: AssignedFiles, changes?: AssignmentChanges) => void): void;
  /** Best effort in order; the session retries on another manager if its manager goes away. */
  reportStatus(updates: { taskId: string; status: TaskStatus }[]): Promise<void>;
}

/** How to reach the managers: the node's TLS material and the managers' addresses. */
export interface ManagerEndpoints {
  /** Current TLS material (re-read per connection, so renewed certificates are picked up). */
  tls(): { ca: Buffer; cert: Buffer; key: Buffer };
  /** Manager addresses (host:2377) to try in order, this node's own first when it is a manager. */
  managers(): string[];
}

/** Where agent-side streams besides the session (the network view, logs) reach a manager. */
export interface ManagerTarget extends ManagerEndpoints {
  nodeId: string;
}

/**
 * What the agent needs of the node's swarm membership (node/ implements it): the session's
 * link, and where to reach a manager while in a swarm (undefined outside one).
 */
export interface SwarmMembership {
  readonly link: AgentLink;
  agentTarget(): ManagerTarget | undefined;
}
