import { orphanAttachments } from '../../manager/networks/attachments.js';
import type { Router } from '../router.js';
import type { SwarmNode } from '../../cluster/swarm-node.js';
import type { Node } from '../../cluster/types.js';
import type { Manager } from '../../manager/manager.js';
import { VersionConflict } from '../../manager/store/store.js';
import { ApiError, badRequest, notFound } from '../../util/errors.js';
import { versionParam } from '../query.js';

/**
 * A node as the API shows it: leader and reachability are live facts, not stored ones.
 * Attachments (the node's ingress address) is internal to the allocator and network view:
 * Docker's Node object has no such field.
 */
export function present(m: Pick<Manager, 'election' | 'isReachable'>, stored: Node): Node {
  const { Attachments: _internal, ...n } = stored;
  if (n.Spec.Role === 'manager' && n.ManagerStatus) {
    const leader = m.election.leaderId === n.ID;
    n.ManagerStatus = { ...(leader ? { Leader: true } : {}), Reachability: m.isReachable(n.ID) ? 'reachable' : 'unreachable', Addr: n.ManagerStatus.Addr };
  } else {
    delete n.ManagerStatus;
  }
  return n;
}

/** By full ID, then hostname, then unique ID prefix: Docker's lookup order. */
export function findNode(m: Manager, ref: string): Node {
  const nodes = m.store.list('nodes');
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

export function nodeRoutes(router: Router, swarm: SwarmNode): void {
  router.get('/nodes', (ctx) => {
    const m = swarm.requireManager();
    const f = ctx.filters();
    let nodes = m.store.list('nodes').map((n) => present(m, n));
    const match = (key: string, pred: (n: Node, v: string) => boolean) => {
      const vals = f.get(key);
      if (vals?.length) nodes = nodes.filter((n) => vals.some((v) => pred(n, v)));
    };
    match('id', (n, v) => n.ID.startsWith(v));
    match('name', (n, v) => (n.Description?.Hostname ?? '').includes(v));
    match('role', (n, v) => n.Spec.Role === v);
    match('membership', (n, v) => v === 'accepted');
    match('node.label', (n, v) => labelMatch(n.Spec.Labels, v));
    match('label', (n, v) => labelMatch(n.Description?.Engine.Labels, v));
    return { body: nodes };
  });

  router.get('/nodes/:id', (ctx) => {
    const m = swarm.requireManager();
    return { body: present(m, findNode(m, ctx.params.id)) };
  });

  router.post('/nodes/:id/update', async (ctx) => {
    const m = swarm.requireManager();
    const spec = await ctx.body('NodeSpec');
    const version = versionParam(ctx.query, (raw, why) => `invalid node version '${raw}': ${why}`);
    const n = findNode(m, ctx.params.id);
    if (n.Version.Index !== version) throw new ApiError(500, 'rpc error: code = Unknown desc = update out of sequence');
    if (spec.Role && !['worker', 'manager'].includes(spec.Role)) throw badRequest(`invalid role "${spec.Role}", only worker and manager are supported`);
    // Availability and labels are an operator's; the role is swarm membership, an admin's.
    if (spec.Role && spec.Role !== n.Spec.Role) ctx.requireRole('admin', spec.Role === 'manager' ? 'nodes promote' : 'nodes demote');
    if (spec.Availability && !['active', 'pause', 'drain'].includes(spec.Availability)) throw badRequest(`invalid availability "${spec.Availability}", only active, drain and pause are supported`);
    const role = spec.Role || n.Spec.Role;
    if (n.Spec.Role === 'manager' && role === 'worker') {
      const managers = m.store.list('nodes').filter((x) => x.Spec.Role === 'manager');
      if (managers.length === 1) throw new ApiError(400, `rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm`);
    }
    n.Spec = { ...spec, Role: role, Availability: spec.Availability || n.Spec.Availability };
    if (role === 'manager' && !n.ManagerStatus) n.ManagerStatus = { Reachability: 'unknown', Addr: `${n.Status.Addr}:2377` };
    if (role === 'worker') delete n.ManagerStatus;
    try {
      await m.store.commit([{ kind: 'nodes', op: 'update', object: n }]);
    } catch (e) {
      if (e instanceof VersionConflict) throw new ApiError(500, 'rpc error: code = Unknown desc = update out of sequence');
      throw e;
    }
    return { status: 200 };
  });

  router.delete('/nodes/:id', async (ctx) => {
    const m = swarm.requireManager();
    const n = findNode(m, ctx.params.id);
    const force = ctx.bool('force');
    if (n.Spec.Role === 'manager') {
      throw new ApiError(400, `rpc error: code = FailedPrecondition desc = node ${n.ID} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal`);
    }
    if (!force && n.Status.State === 'ready') {
      throw new ApiError(400, `rpc error: code = FailedPrecondition desc = node ${n.ID} is not down and can't be removed`);
    }
    const orphans = orphanAttachments(m.store.list('tasks'), n.ID).map((object) => ({ kind: 'tasks' as const, op: 'update' as const, object }));
    await m.store.commit([{ kind: 'nodes', op: 'delete', id: n.ID }, ...orphans]);
    return { status: 200 };
  });
}

function labelMatch(labels: Record<string, string> | undefined, v: string): boolean {
  const i = v.indexOf('=');
  if (i < 0) return !!labels && v in labels;
  return labels?.[v.slice(0, i)] === v.slice(i + 1);
}
