import { run } from '../../src/util/run.js';
import { createNetns, deleteNetns, uniqueName } from './netns.js';

/**
 * A small private network for multi-node tests until the lab lands: a hub netns holding a
 * bridge, and one netns per node joined to it by a veth, addresses 10.99.0.N/24. Everything
 * lives inside namespaces this helper creates, so tests never collide or leak traffic.
 */
export interface TestNetNode {
  ns: string;
  ip: string;
  /** The veth end on the hub: down = node cut off. */
  hubIf: string;
}

export interface TestNet {
  hub: string;
  nodes: TestNetNode[];
  addNode(): Promise<TestNetNode>;
  /** Cuts a node off the network (or reconnects it). */
  setLink(node: TestNetNode, up: boolean): Promise<void>;
  destroy(): Promise<void>;
}

export async function createTestNet(count: number): Promise<TestNet> {
  const hub = await createNetns('shhub');
  await run('ip', ['-n', hub, 'link', 'add', 'br0', 'type', 'bridge']);
  await run('ip', ['-n', hub, 'link', 'set', 'br0', 'up']);
  const net: TestNet = {
    hub,
    nodes: [],
    async addNode() {
      const ns = await createNetns('shnode');
      const i = net.nodes.length + 1;
      const hubIf = uniqueName('h').replace('-', '');
      await run('ip', ['-n', hub, 'link', 'add', hubIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await run('ip', ['-n', hub, 'link', 'set', hubIf, 'master', 'br0', 'up']);
      const ip = `10.99.0.${10 + i}`;
      await run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      const node = { ns, ip, hubIf };
      net.nodes.push(node);
      return node;
    },
    async setLink(node, up) {
      await run('ip', ['-n', hub, 'link', 'set', node.hubIf, up ? 'up' : 'down']);
    },
    async destroy() {
      for (const n of net.nodes) await deleteNetns(n.ns);
      await deleteNetns(hub);
    },
  };
  try {
    for (let i = 0; i < count; i++) await net.addNode();
  } catch (e) {
    await net.destroy();
    throw e;
  }
  return net;
}
