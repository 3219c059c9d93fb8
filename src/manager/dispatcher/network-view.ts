import * as grpc from '@grpc/grpc-js';
import type { Network, Task } from '../../cluster/types.js';
import type { Empty, NetworkViewMessage, PeerIdentity } from '../../cluster/rpc.js';
import type { Store, StoreEvent } from '../store/store.js';
import { registryAuthOf, withoutRegistryAuth } from '../secrets/registry-auth.js';

/** Coalesces a burst of store changes into one message; well under the 1 s the data path must follow. */
const VIEW_DEBOUNCE_MS = 50;

/** Task states in which a task holds its network addresses (agents wire what they see here). */
const HOLDS_ADDRESSES = new Set(['assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

/**
 * The cluster as one node's data path needs it: every node's address (and routing-mesh
 * attachment), the allocated overlay networks, services with their VIPs and ports, and the
 * tasks that hold addresses on those networks. Swarmkit spreads this over gossip (NetworkDB);
 * here the dispatcher streams it, resent whole on every relevant change.
 */
export function networkView(store: Store): NetworkViewMessage {
  const networks = store
    .view('networks')
    .filter((n: Network) => n.DriverState?.Options && n.IPAMOptions?.Configs?.length);
  // A task the managers want down but that still runs is draining: out of the load balancers,
  // still reachable for the connections it has, until its agent reports it stopped.
  const tasks = store
    .view('tasks')
    .filter(
      (t: Task) =>
        t.NodeID &&
        t.NetworksAttachments?.length &&
        HOLDS_ADDRESSES.has(t.Status.State) &&
        (t.DesiredState === 'running' || t.Status.State === 'running'),
    );
  return {
    nodes: store.view('nodes').map((n) => ({ ...n, Description: undefined })),
    networks,
    // Every node gets this view: a service's registry credentials go only with its tasks.
    services: store
      .view('services')
      .map((s) =>
        registryAuthOf(s.Spec) || registryAuthOf(s.PreviousSpec)
          ? { ...s, Spec: withoutRegistryAuth(s.Spec), PreviousSpec: withoutRegistryAuth(s.PreviousSpec) }
          : s,
      ),
    overlayKeyEpoch: store.view('cluster')[0]?.OverlayKeys?.Epoch ?? 0,
    // Attachments carry the whole network object: the view has it once already.
    // A standalone container's attachment keeps its container ID: a restarted agent finds its own again.
    tasks: tasks.map((t) => ({
      ...t,
      Spec: {
        Networks: t.Spec.Networks,
        ...(t.Spec.NetworkAttachmentSpec ? { NetworkAttachmentSpec: t.Spec.NetworkAttachmentSpec } : {}),
      },
      NetworksAttachments: t.NetworksAttachments!.map((a) => ({
        Network: { ID: a.Network.ID } as Network,
        Addresses: a.Addresses,
      })),
    })),
  };
}

const RELEVANT = new Set(['nodes', 'networks', 'services', 'tasks', 'cluster']);

/**
 * Whether an event can change the view: a task matters only if it holds addresses (the
 * allocator gives them before the task is scheduled and they stay), so the status reports of
 * tasks without networks, most of the events at scale, do not rebuild it.
 */
function relevant(e: StoreEvent): boolean {
  return RELEVANT.has(e.kind) && (e.kind !== 'tasks' || !!(e.object as Task).NetworksAttachments?.length);
}

/**
 * The dispatcher's `NetworkView` stream: a view now, and again after every change that matters.
 * `close()` ends every open stream, so the manager's server shuts down without waiting on them.
 */
export function networkViewHandler(
  store: Store,
  identify: (call: grpc.ServerWritableStream<unknown, unknown>) => PeerIdentity | undefined,
) {
  const open = new Set<() => void>();
  /** Each open stream's "the view changed" callback. */
  const changed = new Set<() => void>();
  // One view per store change, shared by every node's stream (not one whole-state pass each),
  // and one look at each batch of events for all of them.
  let current: { view: NetworkViewMessage; body: string } | undefined;
  const unwatchShared = store.watch((evs: StoreEvent[]) => {
    if (!evs.some(relevant)) return;
    current = undefined;
    for (const fn of changed) fn();
  });
  const latest = () => {
    if (!current) {
      const view = networkView(store);
      current = { view, body: JSON.stringify(view) };
    }
    return current;
  };
  const handler = (call: grpc.ServerWritableStream<Empty, NetworkViewMessage>): void => {
    const id = identify(call);
    if (!id || !store.get('nodes', id.nodeId)) {
      call.destroy(Object.assign(new Error('no valid swarm certificate'), { code: grpc.status.UNAUTHENTICATED }));
      return;
    }
    let last = '';
    const send = () => {
      const { view, body } = latest();
      if (body === last) return;
      last = body;
      call.write(view);
    };
    send();
    let timer: NodeJS.Timeout | undefined;
    let sentAt = Date.now();
    // Leading edge: a change after a quiet spell goes out on the next tick; a burst at most every VIEW_DEBOUNCE_MS.
    const onChange = () => {
      if (!timer)
        timer = setTimeout(
          () => {
            timer = undefined;
            sentAt = Date.now();
            send();
          },
          Math.max(0, sentAt + VIEW_DEBOUNCE_MS - Date.now()),
        );
    };
    changed.add(onChange);
    const end = () => {
      if (!open.delete(end)) return;
      changed.delete(onChange);
      clearTimeout(timer);
      call.end();
    };
    open.add(end);
    call.on('cancelled', end);
    call.on('error', end);
  };
  return {
    handler,
    close: () => {
      unwatchShared();
      for (const end of [...open]) end();
    },
  };
}
