import * as grpc from '@grpc/grpc-js';
import type { Task } from '../../cluster/types.js';
import type {
  AttachNetworkRequest,
  AttachNetworkResponse,
  DetachNetworkRequest,
  Empty,
  PeerIdentity,
  RpcHandlers,
} from '../../cluster/rpc.js';
import { newSwarmId } from '../../util/ids.js';
import { status } from '../../cluster/task-state.js';
import type { Store } from '../store/store.js';
import { attachmentSpec, isNetworkAttachment } from '../../cluster/attachment-task.js';
import { findSwarmNetwork } from './swarm-networks.js';

export { attachmentSpec, isNetworkAttachment, type NetworkAttachmentSpec } from '../../cluster/attachment-task.js';

/**
 * Network attachments of standalone containers (`docker run --network <attachable overlay>`),
 * as swarmkit's resourceapi does them: the node asks any manager, which writes a task for the
 * container (`Spec.NetworkAttachmentSpec.ContainerID`) on that node, NEW and without an
 * address; the leader's allocator gives it its address in its normal pass, and the manager
 * answers once it sees the address. DetachNetwork deletes the task, which frees the address.
 */

/** How long AttachNetwork waits for the allocator (below the node's 20 s call deadline). */
export const ATTACH_WAIT_MS = 15_000;

function rpcFailure(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/** The task once it holds its addresses; fails when it is gone, ended, or could not be allocated. */
function allocated(store: Store, id: string, network: string, waitMs: number): Promise<Task> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let unwatch: (() => void) | undefined;
    const settle = (fn: () => void) => {
      clearTimeout(timer);
      unwatch?.();
      fn();
    };
    const check = (): boolean => {
      const t = store.get('tasks', id);
      if (t?.Status.State === 'running' && t.NetworksAttachments?.length) settle(() => resolve(t));
      else if (!t || t.Status.State !== 'new')
        settle(() =>
          reject(
            rpcFailure(
              grpc.status.ABORTED,
              `network attachment ${id} to ${network} was removed before it got an address`,
            ),
          ),
        );
      else if (t.Status.Err) settle(() => reject(rpcFailure(grpc.status.RESOURCE_EXHAUSTED, t.Status.Err!)));
      else return false;
      return true;
    };
    unwatch = store.watch((evs) => {
      if (evs.some((e) => e.kind === 'tasks' && (e.object as Task).ID === id)) check();
    });
    if (check()) return;
    timer = setTimeout(
      () =>
        settle(() =>
          reject(
            rpcFailure(
              grpc.status.DEADLINE_EXCEEDED,
              `no address allocated for network attachment ${id} to ${network} within ${waitMs / 1000}s`,
            ),
          ),
        ),
      waitMs,
    );
  });
}

export async function attachNetwork(
  store: Store,
  nodeId: string,
  req: AttachNetworkRequest,
  waitMs = ATTACH_WAIT_MS,
): Promise<Task> {
  let n;
  try {
    n = findSwarmNetwork(store.list('networks'), req.network);
  } catch (e) {
    throw rpcFailure(grpc.status.INVALID_ARGUMENT, (e as Error).message);
  }
  if (!n) throw rpcFailure(grpc.status.NOT_FOUND, `network ${req.network} not found`);
  if (!n.Spec.Attachable)
    throw rpcFailure(grpc.status.PERMISSION_DENIED, `network ${req.network} not manually attachable`);
  // A restart of the same container keeps its attachment.
  let task = store
    .list('tasks')
    .find(
      (t) =>
        t.NodeID === nodeId &&
        attachmentSpec(t)?.ContainerID === req.containerId &&
        t.Spec.Networks?.[0]?.Target === n.ID &&
        (t.Status.State === 'new' || t.Status.State === 'running'),
    );
  if (!task) {
    const now = new Date().toISOString();
    task = {
      ID: newSwarmId(),
      Version: { Index: 0 },
      CreatedAt: now,
      UpdatedAt: now,
      Spec: {
        NetworkAttachmentSpec: { ContainerID: req.containerId },
        Networks: [{ Target: n.ID, Aliases: [req.containerName, req.containerId.slice(0, 12)] }],
      },
      ServiceID: '',
      NodeID: nodeId,
      Status: status('new', 'network attachment'),
      DesiredState: 'running',
    };
    await store.commit([{ kind: 'tasks', op: 'create', object: task }]);
  }
  try {
    return await allocated(store, task.ID, req.network, waitMs);
  } catch (e) {
    // Nothing half-made stays behind: the node starts no container on a failed attach.
    if (store.get('tasks', task.ID))
      await store.commit([{ kind: 'tasks', op: 'delete', id: task.ID }]).catch(() => undefined);
    throw e;
  }
}

export async function detachNetwork(store: Store, nodeId: string, req: DetachNetworkRequest): Promise<void> {
  const ids = store
    .list('tasks')
    .filter(
      (t) =>
        t.NodeID === nodeId &&
        attachmentSpec(t)?.ContainerID === req.containerId &&
        (!req.networkId || t.Spec.Networks?.[0]?.Target === req.networkId),
    )
    .map((t) => t.ID);
  if (ids.length) await store.commit(ids.map((id) => ({ kind: 'tasks' as const, op: 'delete' as const, id })));
}

type Identify = (call: grpc.ServerUnaryCall<unknown, unknown>) => PeerIdentity | undefined;

/** The dispatcher methods a node calls: AttachNetwork, DetachNetwork. */
export function attachmentHandlers(
  store: Store,
  identify: Identify,
): Pick<RpcHandlers<'Dispatcher'>, 'AttachNetwork' | 'DetachNetwork'> {
  const wrap =
    <Req, Res>(fn: (nodeId: string, req: Req) => Promise<Res>) =>
    (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => {
      const id = identify(call as grpc.ServerUnaryCall<unknown, unknown>);
      if (!id || !store.get('nodes', id.nodeId))
        return cb(rpcFailure(grpc.status.UNAUTHENTICATED, 'no valid swarm certificate'));
      fn(id.nodeId, call.request).then(
        (r) => cb(null, r),
        (e: grpc.ServiceError) =>
          cb(e.code !== undefined ? e : rpcFailure(grpc.status.INTERNAL, String(e?.message ?? e))),
      );
    };
  return {
    AttachNetwork: wrap<AttachNetworkRequest, AttachNetworkResponse>(async (nodeId, req) => ({
      task: await attachNetwork(store, nodeId, req),
    })),
    DetachNetwork: wrap<DetachNetworkRequest, Empty>(async (nodeId, req) => {
      await detachNetwork(store, nodeId, req);
      return {};
    }),
  };
}

/** A removed node's attachments become ORPHANED (swarmkit controlapi RemoveNode): the reaper deletes them, their addresses go back. */
export function orphanAttachments(tasks: Task[], nodeId: string): Task[] {
  const now = new Date().toISOString();
  return tasks
    .filter((t) => t.NodeID === nodeId && isNetworkAttachment(t))
    .map((t) => ({ ...t, Status: status('orphaned', 'node removed'), UpdatedAt: now }));
}
