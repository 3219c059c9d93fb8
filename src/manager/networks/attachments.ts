import * as grpc from '@grpc/grpc-js';
import type { Task } from '../../cluster/types.js';
import type { AttachNetworkRequest, AttachNetworkResponse, DetachNetworkRequest, PeerIdentity } from '../../cluster/rpc.js';
import { newSwarmId } from '../../util/ids.js';
import { AddressPool } from '../allocator/ipam.js';
import { status } from '../orchestrator/task.js';
import type { Store } from '../store/store.js';
import { findSwarmNetwork } from './swarm-networks.js';

/**
 * Network attachments of standalone containers (`docker run --network <attachable overlay>`),
 * as swarmkit's resourceapi does them: the node asks a manager, which writes a task-like
 * object holding the container's address (`Spec.NetworkAttachmentSpec.ContainerID`), running on
 * that node. The NetworkView carries it like any task; DetachNetwork deletes it.
 */

export interface NetworkAttachmentSpec { ContainerID: string }

export function attachmentSpec(t: Task): NetworkAttachmentSpec | undefined {
  return (t.Spec as { NetworkAttachmentSpec?: NetworkAttachmentSpec }).NetworkAttachmentSpec;
}

export const isNetworkAttachment = (t: Task): boolean => !!attachmentSpec(t);

const ENDED = new Set(['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned']);

/** A free address on the network: everything services, nodes and live tasks hold is taken (as the allocator counts). */
function freeAddress(store: Store, networkId: string): string {
  const n = store.get('networks', networkId);
  const c = n?.IPAMOptions?.Configs?.find((x) => x.Subnet);
  if (!c) throw rpcFailure(grpc.status.FAILED_PRECONDITION, `network ${networkId} is not allocated yet`);
  const pool = new AddressPool(c.Subnet, c.Gateway);
  for (const s of store.list('services')) for (const v of s.Endpoint?.VirtualIPs ?? []) if (v.NetworkID === networkId) pool.mark(v.Addr);
  for (const node of store.list('nodes')) for (const a of node.Attachments ?? []) if (a.Network.ID === networkId) for (const x of a.Addresses) pool.mark(x);
  for (const t of store.list('tasks')) {
    if (t.Status.State === 'new' || ENDED.has(t.Status.State)) continue;
    for (const a of t.NetworksAttachments ?? []) if (a.Network.ID === networkId) for (const x of a.Addresses) pool.mark(x);
  }
  return pool.allocate();
}

function rpcFailure(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/** Serialises attachments on this manager: two at once must not take the same address. */
let chain: Promise<unknown> = Promise.resolve();

export async function attachNetwork(store: Store, nodeId: string, req: AttachNetworkRequest): Promise<Task> {
  const run = chain.then(async () => {
    let n;
    try {
      n = findSwarmNetwork(store.list('networks'), req.network);
    } catch (e) {
      throw rpcFailure(grpc.status.INVALID_ARGUMENT, (e as Error).message);
    }
    if (!n) throw rpcFailure(grpc.status.NOT_FOUND, `network ${req.network} not found`);
    if (!n.Spec.Attachable) throw rpcFailure(grpc.status.PERMISSION_DENIED, `network ${req.network} not manually attachable`);
    // A restart of the same container keeps its attachment.
    const existing = store.list('tasks').find((t) => t.NodeID === nodeId && attachmentSpec(t)?.ContainerID === req.containerId && t.NetworksAttachments?.[0]?.Network.ID === n.ID);
    if (existing) return existing;
    const now = new Date().toISOString();
    const task: Task = {
      ID: newSwarmId(), Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now,
      Spec: { NetworkAttachmentSpec: { ContainerID: req.containerId }, Networks: [{ Target: n.ID, Aliases: [req.containerName, req.containerId.slice(0, 12)] }] },
      ServiceID: '',
      NodeID: nodeId,
      Status: status('running', 'network attachment'),
      DesiredState: 'running',
      NetworksAttachments: [{ Network: n, Addresses: [freeAddress(store, n.ID)] }],
    };
    await store.commit([{ kind: 'tasks', op: 'create', object: task }]);
    return task;
  });
  chain = run.catch(() => undefined);
  return run;
}

export async function detachNetwork(store: Store, nodeId: string, req: DetachNetworkRequest): Promise<void> {
  const ids = store.list('tasks').filter((t) => t.NodeID === nodeId && attachmentSpec(t)?.ContainerID === req.containerId).map((t) => t.ID);
  if (ids.length) await store.commit(ids.map((id) => ({ kind: 'tasks' as const, op: 'delete' as const, id })));
}

type Identify = (call: grpc.ServerUnaryCall<unknown, unknown>) => PeerIdentity | undefined;

/** The dispatcher methods a node calls: AttachNetwork, DetachNetwork. */
export function attachmentHandlers(store: Store, identify: Identify) {
  const wrap = <Req, Res>(fn: (nodeId: string, req: Req) => Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
      const id = identify(call as grpc.ServerUnaryCall<unknown, unknown>);
      if (!id || !store.get('nodes', id.nodeId)) return cb(rpcFailure(grpc.status.UNAUTHENTICATED, 'no valid swarm certificate'));
      fn(id.nodeId, call.request).then((r) => cb(null, r), (e: grpc.ServiceError) => cb(e.code !== undefined ? e : rpcFailure(grpc.status.INTERNAL, String(e?.message ?? e))));
    };
  return {
    AttachNetwork: wrap<AttachNetworkRequest, AttachNetworkResponse>(async (nodeId, req) => ({ task: await attachNetwork(store, nodeId, req) })),
    DetachNetwork: wrap<DetachNetworkRequest, object>(async (nodeId, req) => {
      await detachNetwork(store, nodeId, req);
      return {};
    }),
  };
}

/** A removed node's attachments become ORPHANED (swarmkit controlapi RemoveNode): the reaper deletes them, their addresses go back. */
export function orphanAttachments(tasks: Task[], nodeId: string): Task[] {
  const now = new Date().toISOString();
  return tasks.filter((t) => t.NodeID === nodeId && isNetworkAttachment(t)).map((t) => ({ ...t, Status: status('orphaned', 'node removed'), UpdatedAt: now }));
}
