import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMachines, labRegistry, newTestLab, pushLabMicro, type TestLab } from '../helpers/lab.js';
import { run } from '../../src/util/run.js';
import { waitFor as poll } from '../helpers/process.js';
import { serviceCreate } from '../helpers/service-cli.js';

// Needs root. The walkthrough of the README / `npm run demo`, step for step, on a three-machine
// lab with the real docker CLI; every step's result is asserted.

const MACHINES = ['sw1', 'sw2', 'sw3'];

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 120_000) => poll(what, fn, ms, 500);

const field = (page: string, id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(page)?.[1];

describe('the walkthrough', () => {
  let lab: TestLab;
  let image = '';
  let port = 0;
  const ip = new Map<string, string>();
  const d = (m: string, args: string[]) => lab.docker(m, args, { allowFail: true });
  const ok = async (m: string, args: string[]) => {
    const r = await d(m, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')} on ${m}: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** A client on the lab network, outside every machine: the hub namespace. */
  const get = async (addr: string) =>
    (
      await run('ip', ['netns', 'exec', `${lab.prefix}-hub`, 'curl', '-s', '-m', '5', `http://${addr}:${port}/`], {
        allowFail: true,
      })
    ).stdout;
  const replicas = () => ok('sw1', ['service', 'ls', '--filter', 'name=micro', '--format', '{{.Replicas}}']);
  const runningTasks = async () =>
    (
      await ok('sw1', [
        'service',
        'ps',
        'micro',
        '--no-trunc',
        '--filter',
        'desired-state=running',
        '--format',
        '{{.ID}} {{.Node}} {{.CurrentState}}',
      ])
    )
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f[2] === 'Running');

  before(async () => {
    lab = newTestLab();
    await createMachines(lab, MACHINES);
    for (const m of MACHINES) ip.set(m, (await lab.machine(['ip', m])).stdout.trim());
    image = await pushLabMicro(lab, 'sw1', await labRegistry(lab));
  });

  after(async () => {
    await lab?.prune();
  });

  it('swarm init prints the join command; sw2 and sw3 join; node ls shows three Ready nodes', async () => {
    const init = await ok('sw1', ['swarm', 'init', '--advertise-addr', ip.get('sw1')!]);
    const join = /docker swarm join --token (SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}) ([\d.]+):2377/.exec(init);
    assert.ok(join, init);
    assert.equal(join[2], ip.get('sw1'));
    for (const m of ['sw2', 'sw3'])
      assert.match(
        await ok(m, ['swarm', 'join', '--token', join[1], `${ip.get('sw1')}:2377`]),
        /This node joined a swarm as a worker\./,
      );
    const nodes = await waitFor('three Ready nodes', async () => {
      const out = (
        await ok('sw1', ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'])
      )
        .split('\n')
        .map((l) => l.trimEnd())
        .sort();
      return out.length === 3 && out.every((l) => l.includes(' Ready Active')) && out;
    });
    assert.deepEqual(nodes, ['sw1 Ready Active Leader', 'sw2 Ready Active', 'sw3 Ready Active']);
  });

  it('an overlay network and a service with -p 8000: published as 30000', async () => {
    await ok('sw1', ['network', 'create', '-d', 'overlay', 'micro-net']);
    await ok('sw1', serviceCreate('micro', ['-p', '8000', '--replicas', '1', '--network', 'micro-net'], [image]));
    const ports = JSON.parse(await ok('sw1', ['service', 'inspect', 'micro', '--format', '{{json .Endpoint.Ports}}']));
    assert.deepEqual(ports, [{ Protocol: 'tcp', TargetPort: 8000, PublishedPort: 30000, PublishMode: 'ingress' }]);
    port = ports[0].PublishedPort;
    await waitFor('1/1', async () => (await replicas()) === '1/1');
  });

  it("every machine's address on :30000 reaches the app, a page with the container's IP", async () => {
    const hosts = new Set<string>();
    for (const m of MACHINES) {
      const page = await waitFor(`micro via ${m}`, async () => (await get(ip.get(m)!)) || undefined, 30_000);
      assert.match(field(page, 'ip') ?? '', /^10\.0\.\d+\.\d+/, page);
      hosts.add(field(page, 'hostname')!);
    }
    assert.equal(hosts.size, 1, 'one task answers on every machine');
  });

  it('scale micro=7 spreads over the machines and requests rotate over all seven containers', async () => {
    await ok('sw1', ['service', 'scale', 'micro=7']);
    await waitFor('7/7', async () => (await replicas()) === '7/7');
    const perNode = new Map<string, number>();
    for (const [, node] of await runningTasks()) perNode.set(node, (perNode.get(node) ?? 0) + 1);
    assert.deepEqual([...perNode.keys()].sort(), MACHINES, `spread: ${[...perNode]}`);
    for (const n of perNode.values()) assert.ok(n >= 2 && n <= 3, `spread: ${[...perNode]}`);
    const seen = await waitFor(
      'all seven containers answering',
      async () => {
        const s = new Set<string>();
        for (let i = 0; i < 21; i++) s.add(field(await get(ip.get('sw2')!), 'hostname') ?? '');
        return s.size === 7 && s;
      },
      30_000,
    );
    // Round robin: seven consecutive requests reach seven different containers.
    const seven = new Set<string>();
    for (let i = 0; i < 7; i++) seven.add(field(await get(ip.get('sw1')!), 'hostname') ?? '');
    assert.equal(seven.size, 7, `round robin over ${[...seen]}`);
  });

  it('docker inspect <task> gives the container ID; rm -f of it on its machine and the swarm is back at 7/7', async () => {
    const [taskId, node] = (await runningTasks())[0];
    const cid = await ok('sw1', ['inspect', taskId, '--format', '{{.Status.ContainerStatus.ContainerID}}']);
    assert.match(cid, /^[0-9a-f]{64}$/);
    assert.equal(await ok(node, ['inspect', cid, '--format', '{{.Id}}']), cid);
    await ok(node, ['rm', '-fv', cid]);
    await waitFor('a replacement task and 7/7', async () => {
      const tasks = await runningTasks();
      return tasks.length === 7 && !tasks.some(([id]) => id === taskId) && (await replicas()) === '7/7';
    });
    const failed = await ok('sw1', ['inspect', taskId, '--format', '{{.DesiredState}} {{.Status.State}}']);
    assert.match(failed, /^shutdown (failed|shutdown)$/);
  });

  it('removing a whole machine: its tasks come back on the others', async () => {
    await lab.machine(['rm', '-f', 'sw3']);
    await waitFor(
      '7/7 on sw1 and sw2',
      async () => {
        const tasks = await runningTasks();
        return tasks.length === 7 && tasks.every(([, node]) => node !== 'sw3') && (await replicas()) === '7/7';
      },
      180_000,
    );
    assert.match(await ok('sw1', ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}']), /sw3 Down/);
    const seen = new Set<string>();
    for (let i = 0; i < 14; i++) seen.add(field(await get(ip.get('sw1')!), 'hostname') ?? '');
    assert.equal(seen.size, 7, `after the loss of sw3: ${[...seen]}`);
  });

  it('cluster traffic is mutual TLS: the node certificate on 2377 names the node, its role and the cluster', async () => {
    const nodeId = await ok('sw1', ['info', '--format', '{{.Swarm.NodeID}}']);
    const clusterId = await ok('sw1', ['info', '--format', '{{.Swarm.Cluster.ID}}']);
    const hello = await run(
      'ip',
      ['netns', 'exec', `${lab.prefix}-hub`, 'openssl', 's_client', '-connect', `${ip.get('sw1')}:2377`],
      { input: '', allowFail: true },
    );
    const cert = await run('openssl', ['x509', '-noout', '-subject', '-issuer'], { input: hello.stdout });
    assert.match(cert.stdout, new RegExp(`subject=CN = ${nodeId}, OU = swarm-manager, O = ${clusterId}`));
    assert.match(cert.stdout, /issuer=CN = swarm-ca/);
  });
});
