import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../src/util/run.js';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { waitFor } from '../helpers/process.js';

// Needs root: a two-machine lab (namespaces, shoald, etcd, runc) driven by the real docker CLI.
// Swarm network create options across nodes: the VNI `vxlanid_list` asks for on every node's
// VXLAN device (and traffic between the nodes over it), and `--scope swarm` bridges, which are
// each node's own.

const VXLAN = 'com.docker.network.driver.overlay.vxlanid_list';
const IMG = 'busybox:latest';

describe('swarm network options on a two-machine lab', () => {
  let swarm: SwarmLab;
  const d = (m: string, ...args: string[]) => swarm.d(m, args);
  const ok = async (m: string, ...args: string[]) => {
    const r = await d(m, ...args);
    assert.equal(r.code, 0, `docker ${args.join(' ')} on ${m}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** The running task containers of a service on one machine. */
  const containers = async (m: string, svc: string) =>
    (await ok(m, 'ps', '-q', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${svc}`))
      .split('\n')
      .filter(Boolean);
  const oneRunningOnEach = (svc: string) =>
    waitFor(
      `a running task of ${svc} on m1 and m2`,
      async () => {
        const [a, b] = [await containers('m1', svc), await containers('m2', svc)];
        return a.length === 1 && b.length === 1 && { m1: a[0], m2: b[0] };
      },
      120_000,
      500,
    );

  /** A global service of sleeping tasks on `network`, once a task of it runs on each node. */
  const globalOn = async (svc: string, network: string) => {
    await ok(
      'm1',
      'service',
      'create',
      '--detach',
      '--name',
      svc,
      '--mode',
      'global',
      '--network',
      network,
      IMG,
      'sleep',
      '1000',
    );
    return oneRunningOnEach(svc);
  };

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2'], busybox: true });
  });
  after(async () => {
    await swarm?.cleanup();
  });

  it('vxlanid_list=4097: both nodes’ VXLAN devices of the network carry VNI 4097, and tasks on the two nodes reach each other', async () => {
    const id = await ok('m1', 'network', 'create', '-d', 'overlay', '--opt', `${VXLAN}=4097`, 'vx-net');
    const c = await globalOn('vx-glob', 'vx-net');
    assert.equal(await ok('m1', 'network', 'inspect', 'vx-net', '--format', `{{index .Options "${VXLAN}"}}`), '4097');
    for (const m of ['m1', 'm2']) {
      const sandbox = `${swarm.lab.prefix}-m-${m}-sb-${id.slice(0, 12)}`;
      const vni = await waitFor(
        `${m}'s VXLAN device of vx-net`,
        async () => {
          const r = await run('ip', ['-n', sandbox, '-j', '-d', 'link', 'show', 'vxlan0'], { allowFail: true });
          return r.code === 0 && (JSON.parse(r.stdout)[0]?.linkinfo?.info_data?.id as number | undefined);
        },
        60_000,
        500,
      );
      assert.equal(vni, 4097, m);
    }
    // The m2 task's address on vx-net, from the manager's task object.
    const tasks = (await ok('m1', 'service', 'ps', '-q', '--filter', 'desired-state=running', 'vx-glob')).split('\n');
    const m2Node = await ok('m2', 'info', '--format', '{{.Swarm.NodeID}}');
    let m2Ip = '';
    for (const t of tasks) {
      const [node, addr] = (
        await ok(
          'm1',
          'inspect',
          '--type',
          'task',
          '--format',
          '{{.NodeID}} {{index (index .NetworksAttachments 0).Addresses 0}}',
          t,
        )
      ).split(' ');
      if (node === m2Node) m2Ip = addr.split('/')[0];
    }
    assert.match(m2Ip, /^\d+\.\d+\.\d+\.\d+$/);
    await waitFor(
      `m1's task pings ${m2Ip} on m2 over VNI 4097`,
      async () => (await d('m1', 'exec', c.m1, 'ping', '-c', '1', '-W', '2', m2Ip)).code === 0,
      60_000,
      500,
    );
    await ok('m1', 'service', 'rm', 'vx-glob');
    await waitFor('vx-net removable', async () => (await d('m1', 'network', 'rm', 'vx-net')).code === 0, 60_000, 500);
  });

  it('bridge --scope swarm: a task on each node gets that node’s own bridge of the network; the worker lists it as swarm-scoped', async () => {
    const id = await ok('m1', 'network', 'create', '-d', 'bridge', '--scope', 'swarm', 'sw-br');
    const c = await globalOn('br-glob', 'sw-br');
    for (const m of ['m1', 'm2'] as const) {
      const net = JSON.parse(await ok(m, 'network', 'inspect', 'sw-br'))[0];
      assert.deepEqual([net.Id, net.Scope, net.Driver], [id, 'swarm', 'bridge'], m);
      assert.deepEqual(Object.keys(net.Containers), [c[m]], `${m}: only its own task on its bridge`);
      const ip = JSON.parse(await ok(m, 'inspect', '--format', '{{json .NetworkSettings.Networks}}', c[m]))['sw-br']
        .IPAddress;
      assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/, m);
      const link = await run('ip', ['-n', `${swarm.lab.prefix}-m-${m}`, 'link', 'show', `br-${id.slice(0, 12)}`], {
        allowFail: true,
      });
      assert.equal(link.code, 0, `${m} has the bridge`);
    }
    assert.ok(
      (await ok('m2', 'network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}'))
        .split('\n')
        .includes('sw-br bridge swarm'),
    );
    await ok('m1', 'service', 'rm', 'br-glob');
    await waitFor(
      'the worker’s bridge of sw-br gone with its task',
      async () => !(await ok('m2', 'network', 'ls', '--format', '{{.Name}}')).split('\n').includes('sw-br'),
      60_000,
      500,
    );
    await waitFor('sw-br removable', async () => (await d('m1', 'network', 'rm', 'sw-br')).code === 0, 60_000, 500);
  });
});
