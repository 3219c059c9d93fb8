/**
 * One simulated node joined to a test daemon's swarm, for tests that speak the dispatcher's
 * RPCs raw. Port 2377 listens inside the daemon's netns; a unix socket (not bound to a netns)
 * bridged by socat in there lets the test process be the node.
 */
import path from 'node:path';
import { clientCredentials, RpcClient } from '../../src/cluster/rpc.js';
import type { TestDaemon } from './daemon.js';
import { startProcess, stopProcess, waitFor } from './process.js';
import { fetchRootCA, joinSimNode, type SimNodeTls } from './sim-node.js';

export interface BridgedSimNode {
  /** The gRPC target of the daemon's swarm port (`unix:` + the bridged socket). */
  manager: string;
  rootPem: string;
  /** The node's hostname, unique to the daemon. */
  name: string;
  nodeId: string;
  tls: SimNodeTls;
  /** A dispatcher client with the node's certificate. */
  client: RpcClient<'Dispatcher'>;
  /** Closes the client and ends the bridge. */
  close(): Promise<void>;
}

/** Joins a simulated node to `d`'s swarm with the worker `token`, through the bridge. */
export async function joinBridgedSimNode(d: TestDaemon, token: string): Promise<BridgedSimNode> {
  const sock = path.join(d.dir, 'swarm-port.sock');
  const bridgePid = startProcess(
    'nsenter',
    [`--net=/run/netns/${d.ns}`, '--', 'socat', `UNIX-LISTEN:${sock},fork`, 'TCP:127.0.0.1:2377'],
    path.join(d.dir, 'socat.log'),
  ).pid;
  try {
    const manager = `unix:${sock}`;
    const rootPem = await waitFor(
      'the swarm CA through the bridge',
      () => fetchRootCA(manager, token).catch(() => undefined),
      20_000,
      200,
    );
    const name = `${d.name}-sim`;
    const { nodeId, tls } = await joinSimNode(manager, token, rootPem, name);
    const client = new RpcClient('Dispatcher', manager, clientCredentials(tls.ca, tls.cert, tls.key));
    return {
      manager,
      rootPem,
      name,
      nodeId,
      tls,
      client,
      close: async () => {
        client.close();
        await stopProcess(bridgePid);
      },
    };
  } catch (e) {
    await stopProcess(bridgePid);
    throw e;
  }
}
