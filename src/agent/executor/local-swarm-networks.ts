import type { Network, Task } from '../../cluster/types.js';
import { isNodeLocal } from '../../cluster/network-drivers.js';
import type { Engine } from '../../engine/engine.js';
import type { Logger } from '../../util/log.js';
import { SerialQueue } from '../../util/serial-queue.js';

/**
 * This node's networks of node-local swarm networks (`network create -d bridge --scope
 * swarm`), as dockerd's executor makes them (CreateManagedNetwork / DeleteManagedNetwork): a
 * local bridge with the swarm network's name and ID, made when a task here first joins it, its
 * addresses from this node's own pools, and gone when no container is left on it. One at a
 * time, so a task's prepare never sees the bridge vanish under it.
 */
export class LocalSwarmNetworks {
  private readonly queue = new SerialQueue();

  constructor(
    private readonly engine: Engine,
    private readonly log: Logger,
  ) {}

  /** The task's node-local networks, in its order. */
  static of(task: Task): Network[] {
    return (task.NetworksAttachments ?? []).map((a) => a.Network).filter(isNodeLocal);
  }

  /**
   * Makes sure this node has the network, and runs `use` (the container's create) while no
   * release can take it away. Fails as dockerd does when a local network holds the name.
   */
  withNetworks<T>(networks: Network[], use: () => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      for (const n of networks) await this.ensure(n);
      return use();
    });
  }

  private async ensure(n: Network): Promise<void> {
    const name = n.Spec.Name ?? n.ID;
    const have = this.engine.userBridges.find(n.ID);
    if (have?.id === n.ID) return;
    const req = { Name: name, Labels: n.Spec.Labels ?? {}, Internal: !!n.Spec.Internal };
    await this.engine.userBridges.create(req, () => false, { id: n.ID });
    this.engine.events.emit('network', 'create', n.ID, { name, type: 'bridge' });
    this.log.info({ network: name, id: n.ID }, 'node-local swarm network created');
  }

  /** Removes this node's networks of swarm networks that no container uses (no endpoint, no container to start on it). */
  release(): Promise<void> {
    return this.queue.run(async () => {
      for (const n of this.engine.userBridges.list()) {
        if (!n.swarmScope || Object.keys(n.endpoints).length) continue;
        const waiting = this.engine.containers
          .all()
          .some(
            (r) => r.hostConfig.NetworkMode === n.name && ['created', 'running', 'restarting'].includes(r.state.Status),
          );
        if (waiting) continue;
        try {
          await this.engine.userBridges.remove(n.id);
          this.engine.events.emit('network', 'destroy', n.id, { name: n.name, type: 'bridge' });
        } catch (e) {
          this.log.warn({ err: e, network: n.name }, 'removing a node-local swarm network failed');
        }
      }
    });
  }
}
