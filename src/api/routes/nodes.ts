import type { Router } from '../router.js';
import type { SwarmNode } from '../../node/node.js';
import type { Node } from '../../cluster/types.js';
import type { Manager } from '../../manager/manager.js';
import { getNode, removeNode, updateNode } from '../../manager/control/nodes.js';
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
    n.ManagerStatus = {
      ...(leader ? { Leader: true } : {}),
      Reachability: m.isReachable(n.ID) ? 'reachable' : 'unreachable',
      Addr: n.ManagerStatus.Addr,
    };
  } else {
    delete n.ManagerStatus;
  }
  return n;
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
    return { body: present(m, getNode(m.store, ctx.params.id)) };
  });

  router.post('/nodes/:id/update', async (ctx) => {
    const m = swarm.requireManager();
    const spec = await ctx.body('NodeSpec');
    const version = versionParam(ctx.query, (raw, why) => `invalid node version '${raw}': ${why}`);
    const n = getNode(m.store, ctx.params.id);
    // Availability and labels are an operator's; the role is swarm membership, an admin's.
    if (spec.Role && spec.Role !== n.Spec.Role && ['worker', 'manager'].includes(spec.Role))
      ctx.requireRole('admin', spec.Role === 'manager' ? 'nodes promote' : 'nodes demote');
    await updateNode(m.store, ctx.params.id, version, spec);
    return { status: 200 };
  });

  router.delete('/nodes/:id', async (ctx) => {
    const m = swarm.requireManager();
    await removeNode(m.store, ctx.params.id, ctx.bool('force'));
    return { status: 200 };
  });
}

function labelMatch(labels: Record<string, string> | undefined, v: string): boolean {
  const i = v.indexOf('=');
  if (i < 0) return !!labels && v in labels;
  return labels?.[v.slice(0, i)] === v.slice(i + 1);
}
