import type { Service, Task } from '../../cluster/types.js';
import { nodeMatches, parseConstraints, type Constraint } from './constraint.js';
import { hostPorts, type NodeInfo } from './node-info.js';

/**
 * The scheduler's filter pipeline (swarmkit scheduler/filter.go, in its order). Each filter
 * says whether it applies to a task, whether a node passes, and how to explain failures;
 * the first failing filter stops the check and counts one failure for "no suitable node (…)".
 */
export interface Filter {
  /** Returns false when the filter has nothing to check for this task. */
  setTask(t: Task, service: Service | undefined): boolean;
  check(n: NodeInfo): boolean;
  explain(nodes: number): string;
}

const plural = (n: number, one: string, many: string) => (n === 1 ? one : many.replace('%d', String(n)));

class ReadyFilter implements Filter {
  setTask(): boolean {
    return true;
  }
  check(n: NodeInfo): boolean {
    return n.node.Status.State === 'ready' && n.node.Spec.Availability === 'active';
  }
  explain(nodes: number): string {
    return plural(nodes, '1 node not available for new tasks', '%d nodes not available for new tasks');
  }
}

class ResourceFilter implements Filter {
  private cpu = 0;
  private mem = 0;
  setTask(t: Task): boolean {
    const r = t.Spec.Resources?.Reservations;
    this.cpu = r?.NanoCPUs ?? 0;
    this.mem = r?.MemoryBytes ?? 0;
    return this.cpu > 0 || this.mem > 0;
  }
  check(n: NodeInfo): boolean {
    return this.cpu <= n.availableCpu && this.mem <= n.availableMemory;
  }
  explain(nodes: number): string {
    return plural(nodes, 'insufficient resources on 1 node', 'insufficient resources on %d nodes');
  }
}

class ConstraintFilter implements Filter {
  private constraints: Constraint[] = [];
  setTask(t: Task): boolean {
    const exprs = t.Spec.Placement?.Constraints ?? [];
    if (!exprs.length) return false;
    try {
      this.constraints = parseConstraints(exprs);
    } catch {
      // Validated at create time; an unparsable one matches nothing rather than everything.
      this.constraints = [{ key: '', op: '==', value: '' }];
    }
    return true;
  }
  check(n: NodeInfo): boolean {
    return nodeMatches(this.constraints, n.node);
  }
  explain(nodes: number): string {
    return plural(
      nodes,
      'scheduling constraints not satisfied on 1 node',
      'scheduling constraints not satisfied on %d nodes',
    );
  }
}

function normArch(a = ''): string {
  return a === 'x86_64' ? 'amd64' : a === 'aarch64' ? 'arm64' : a;
}

class PlatformFilter implements Filter {
  private platforms: { Architecture?: string; OS?: string }[] = [];
  setTask(t: Task): boolean {
    this.platforms = t.Spec.Placement?.Platforms ?? [];
    return this.platforms.length > 0;
  }
  check(n: NodeInfo): boolean {
    const p = n.node.Description?.Platform;
    if (!p) return false;
    return this.platforms.some(
      (w) => (!w.Architecture || normArch(w.Architecture) === normArch(p.Architecture)) && (!w.OS || w.OS === p.OS),
    );
  }
  explain(nodes: number): string {
    return plural(nodes, 'unsupported platform on 1 node', 'unsupported platform on %d nodes');
  }
}

class HostPortFilter implements Filter {
  private ports: string[] = [];
  setTask(_t: Task, service: Service | undefined): boolean {
    this.ports = hostPorts(service);
    return this.ports.length > 0;
  }
  check(n: NodeInfo): boolean {
    return !this.ports.some((p) => n.usedHostPorts.has(p));
  }
  explain(nodes: number): string {
    return plural(nodes, 'host-mode port already in use on 1 node', 'host-mode port already in use on %d nodes');
  }
}

class MaxReplicasFilter implements Filter {
  private max = 0;
  private serviceId = '';
  setTask(t: Task): boolean {
    this.max = t.Spec.Placement?.MaxReplicas ?? 0;
    this.serviceId = t.ServiceID;
    return this.max > 0;
  }
  check(n: NodeInfo): boolean {
    return n.serviceCount(this.serviceId) < this.max;
  }
  explain(): string {
    return 'max replicas per node limit exceed';
  }
}

/** Runs the filters for one task at a time and remembers why nodes failed. */
export class Pipeline {
  private readonly filters: Filter[] = [
    new ReadyFilter(),
    new ResourceFilter(),
    new ConstraintFilter(),
    new PlatformFilter(),
    new HostPortFilter(),
    new MaxReplicasFilter(),
  ];
  private active: Filter[] = [];
  private failures = new Map<Filter, number>();

  setTask(t: Task, service: Service | undefined): void {
    this.active = this.filters.filter((f) => f.setTask(t, service));
    this.failures = new Map();
  }

  process(n: NodeInfo): boolean {
    for (const f of this.active) {
      if (!f.check(n)) {
        this.failures.set(f, (this.failures.get(f) ?? 0) + 1);
        return false;
      }
    }
    return true;
  }

  /** Failures, most frequent first, as Docker words them. */
  explain(): string {
    return [...this.failures.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([f, n]) => f.explain(n))
      .join('; ');
  }
}
