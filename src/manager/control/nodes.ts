import type { Node, NodeSpec } from '../../cluster/types.js';
import { badRequest, notFound, rpcError } from '../../util/errors.js';
import { orphanAttachments } from '../networks/attachments.js';
import type { Store } from '../store/store.js';
import { checkVersion, commitVersioned } from './versioned.js';

/**
 * Nodes (swarmkit controlapi/node.go): role and availability changes with the rules that keep
 * the swarm alive (never demote the last manager, remove only a worker that is down).
 */

/** By full ID, then hostname, then unique ID prefix: Docker's lookup order. */
export function getNode(store: Store, ref: string): Node {
  const nodes = store.list('nodes');
  const exact = nodes.find((n) => n.ID === ref);
  if (exact) return exact;
  const byName = nodes.filter((n) => n.Description?.Hostname === ref);
  if (byName.length === 1) return byName[0];
  if (byName.length > 1) throw badRequest(`node ${ref} is ambiguous (${byName.length} matches found)`);
  const byPrefix = nodes.filter((n) => n.ID.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw badRequest(`node ${ref} is ambiguous (${byPrefix.length} matches found)`);
  throw notFound(`node ${ref} not found`);
}

/** `docker node update / promote / demote`: the spec given replaces the node's, at `version`. */
export async function updateNode(store: Store, ref: string, version: number, spec: NodeSpec): Promise<Node> {
  const n = getNode(store, ref);
  checkVersion(n, version);
  if (spec.Role && !['worker', 'manager'].includes(spec.Role))
    throw badRequest(`invalid role "${spec.Role}", only worker and manager are supported`);
  if (spec.Availability && !['active', 'pause', 'drain'].includes(spec.Availability)) {
    throw badRequest(`invalid availability "${spec.Availability}", only active, drain and pause are supported`);
  }
  const role = spec.Role || n.Spec.Role;
  if (n.Spec.Role === 'manager' && role === 'worker') {
    const managers = store.list('nodes').filter((x) => x.Spec.Role === 'manager');
    if (managers.length === 1)
      throw rpcError('FailedPrecondition', 'attempting to demote the last manager of the swarm');
  }
  const next: Node = { ...n, Spec: { ...spec, Role: role, Availability: spec.Availability || n.Spec.Availability } };
  if (role === 'manager' && !next.ManagerStatus)
    next.ManagerStatus = { Reachability: 'unknown', Addr: `${n.Status.Addr}:2377` };
  if (role === 'worker') delete next.ManagerStatus;
  await commitVersioned(store, 'nodes', version, n, next);
  return next;
}

/** `docker node rm [--force]`: a manager must be demoted first, a live node needs force. */
export async function removeNode(store: Store, ref: string, force: boolean): Promise<void> {
  const n = getNode(store, ref);
  if (n.Spec.Role === 'manager') {
    throw rpcError(
      'FailedPrecondition',
      `node ${n.ID} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`,
    );
  }
  if (!force && n.Status.State === 'ready')
    throw rpcError('FailedPrecondition', `node ${n.ID} is not down and can't be removed`);
  // Its standalone containers' network attachments go with it (their addresses are freed).
  const orphans = orphanAttachments(store.list('tasks'), n.ID).map((object) => ({
    kind: 'tasks' as const,
    op: 'update' as const,
    object,
  }));
  // The images it reported go too: nobody fetches from a node that left.
  const images = store.viewOne('nodeImages', n.ID)
    ? [{ kind: 'nodeImages' as const, op: 'delete' as const, id: n.ID }]
    : [];
  await store.commit([{ kind: 'nodes', op: 'delete', id: n.ID }, ...orphans, ...images]);
}
