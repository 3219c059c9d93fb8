import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../src/util/run.js';
import { TEST_ROOT } from '../helpers/daemon.js';
import { busyboxRootfsTar } from '../helpers/busybox.js';
import { newTestLab, pushLabMicro, type TestLab } from '../helpers/lab.js';
import type { ChildProcess } from 'node:child_process';
import { alive, startProcess, stopProcess, waitFor } from '../helpers/process.js';

// Needs root: namespaces, veths, shoald daemons and a registry.

interface Row {
  name: string;
  active: string;
  state: string;
  address: string;
  network: string;
  url: string;
}

async function ls(lab: TestLab): Promise<Map<string, Row>> {
  const lines = (await lab.machine(['ls'])).stdout.trim().split('\n');
  assert.match(lines[0], /^NAME\s+ACTIVE\s+STATE\s+ADDRESS\s+NETWORK\s+URL$/);
  return new Map(
    lines.slice(1).map((l) => {
      const [name, active, state, address, network, url] = l.split(/\s+/);
      return [name, { name, active, state, address, network, url }];
    }),
  );
}

const canPing = async (lab: TestLab, from: string, to: string) =>
  (await lab.ssh(from, ['busybox', 'ping', '-c', '1', '-W', '2', to], { allowFail: true })).code === 0;

const canReachRegistry = async (lab: TestLab, from: string, registry: string) =>
  (await lab.ssh(from, ['curl', '-sf', '-m', '3', '-o', '/dev/null', `http://${registry}/v2/`], { allowFail: true }))
    .code === 0;

/** The hub's address: the lab subnet's first. */
function registryHost(lab: TestLab): string {
  const [a, b, c, d] = lab.subnet.split('/')[0].split('.').map(Number);
  return `${a}.${b}.${c}.${d + 1}`;
}

/** The inode of each of the lab's namespaces, to prove afterwards that nothing holds them any more. */
function netnsInodes(names: string[]): Map<string, number> {
  return new Map(names.map((n) => [n, fs.statSync(`/run/netns/${n}`).ino]));
}

async function labNetns(prefix: string): Promise<string[]> {
  const r = await run('ip', ['-json', 'netns', 'list']);
  const all = r.stdout.trim() ? (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name) : [];
  return all.filter((n) => n === `${prefix}-hub` || n.startsWith(`${prefix}-m-`));
}

/** Every process that names the lab directory, works in it, or lives in one of the given network namespaces. */
function processesOf(labDir: string, inodes: Set<number>): string[] {
  const found: string[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const net = fs.readlinkSync(`/proc/${d}/ns/net`);
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const cwd = fs.readlinkSync(`/proc/${d}/cwd`);
      if (
        inodes.has(Number(/\[(\d+)\]/.exec(net)?.[1])) ||
        cmd.some((a) => a.includes(`${labDir}/`) || a.endsWith(labDir)) ||
        cwd.startsWith(labDir)
      ) {
        found.push(`${d}: ${cmd.join(' ')}`);
      }
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/** What `prune` must leave: no namespace, bridge, mount, process or nft table of the lab, and no lab directory. */
async function assertNothingLeft(lab: TestLab, inodes: Map<string, number>): Promise<void> {
  assert.deepEqual(await labNetns(lab.prefix), [], 'namespaces left');
  const held = new Set(inodes.values());
  assert.deepEqual(processesOf(lab.labDir, held), [], 'processes left');
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  assert.deepEqual(
    mountinfo.filter((l) => l.includes(lab.labDir)),
    [],
    'mounts left',
  );
  // A namespace (with its bridge, veths and nftables tables) lives on only while a mount or a process holds it.
  assert.deepEqual(
    mountinfo.filter((l) => [...held].some((i) => l.includes(`net:[${i}]`))),
    [],
    'namespace mounts left',
  );
  const hostLinks = (JSON.parse((await run('ip', ['-json', 'link', 'show'])).stdout) as { ifname: string }[]).map(
    (l) => l.ifname,
  );
  assert.ok(!hostLinks.includes('labbr0'), 'a lab bridge in the host namespace');
  const hostTables = (await run('nft', ['list', 'tables'])).stdout;
  assert.ok(!hostTables.includes(lab.prefix), `nft tables of the lab in the host: ${hostTables}`);
  assert.ok(!fs.existsSync(lab.labDir), 'lab directory left');
}

describe('shoal machine: a lab of three machines', { timeout: 600_000 }, () => {
  const lab = newTestLab();
  const work = path.join(TEST_ROOT, `${lab.prefix}-work`);
  const machines = ['sw1', 'sw2', 'sw3'];
  const addr = new Map<string, string>();
  let registry = '';
  let busyboxTar = '';

  before(async () => {
    fs.mkdirSync(work, { recursive: true });
    busyboxTar = await busyboxRootfsTar(work);
  });
  after(async () => {
    await lab.prune();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('creates three machines, each with its own address, all running', async () => {
    // At once: the lab lock keeps their addresses apart.
    await Promise.all(machines.map((m) => lab.machine(['create', m, '--engine-label', `lab.machine=${m}`])));
    const rows = await ls(lab);
    assert.deepEqual([...rows.keys()], machines);
    for (const m of machines) {
      const row = rows.get(m)!;
      assert.equal(row.state, 'Running');
      assert.equal(row.network, 'connected');
      assert.equal(row.address, (await lab.machine(['ip', m])).stdout.trim());
      assert.equal(row.url, await lab.dockerHost(m));
      assert.equal((await lab.machine(['url', m])).stdout.trim(), row.url);
      assert.equal((await lab.machine(['status', m])).stdout.trim(), 'Running');
      addr.set(m, row.address);
    }
    assert.equal(new Set(addr.values()).size, 3);
    // The host's own network is left alone: no lab route, no lab interface.
    const hub = registryHost(lab);
    const hostRoutes = (await run('ip', ['route', 'show'])).stdout;
    assert.ok(
      !hostRoutes.includes(lab.subnet.split('/')[0]) && !hostRoutes.includes(hub),
      `lab routes in the host: ${hostRoutes}`,
    );
    const hostLinks = (await run('ip', ['-o', 'link', 'show'])).stdout;
    assert.ok(!/ labbr0[:@]/.test(hostLinks), 'the lab bridge is in the host namespace');
    for (const m of machines) {
      const route = JSON.parse((await lab.ssh(m, ['ip', '-json', 'route', 'show', 'default'])).stdout) as {
        gateway?: string;
      }[];
      assert.equal(route[0]?.gateway, hub, `${m} has no default route via the hub`);
    }
    const again = await lab.machine(['create', 'sw1'], { allowFail: true });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /Host already exists: "sw1"/);
  });

  it("answers the docker CLI on each machine's DOCKER_HOST, as that machine", async () => {
    for (const m of machines) {
      const r = await lab.docker(m, ['info', '--format', '{{.Name}} {{json .Labels}}']);
      assert.equal(r.stdout.trim(), `${m} ["lab.machine=${m}"]`);
    }
    // ssh: the command runs with DOCKER_HOST set, its options are its own, its exit code comes back.
    const ssh = await lab.machine(['ssh', 'sw1', 'sh', '-c', 'echo $DOCKER_HOST; exit 3'], { allowFail: true });
    assert.equal(ssh.code, 3);
    assert.equal(ssh.stdout.trim(), await lab.dockerHost('sw1'));
    assert.equal(
      (await lab.machine(['active'], { env: { DOCKER_HOST: await lab.dockerHost('sw2') } })).stdout.trim(),
      'sw2',
    );
    const unknown = await lab.machine(['env', 'nope'], { allowFail: true });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Host does not exist: "nope"/);
  });

  it('runs the lab registry, trusted by every daemon', async () => {
    registry = (await lab.machine(['registry'])).stdout.trim();
    assert.equal(registry, `${registryHost(lab)}:5000`);
    // A second call finds it running.
    assert.equal((await lab.machine(['registry'])).stdout.trim(), registry);
    for (const m of machines) {
      const r = await lab.docker(m, ['info', '--format', '{{json .RegistryConfig.IndexConfigs}}']);
      assert.ok(JSON.parse(r.stdout)[registry], `${m} does not trust ${registry}: ${r.stdout}`);
    }
  });

  it("reaches the others' addresses and the registry from each machine", async () => {
    for (const from of machines) {
      for (const to of machines)
        if (to !== from) assert.ok(await canPing(lab, from, addr.get(to)!), `${from} cannot reach ${to}`);
      assert.ok(await canReachRegistry(lab, from, registry), `${from} cannot reach the registry`);
    }
  });

  it('pushes micro to the lab registry from one machine and pulls it on every machine', async () => {
    const micro = await pushLabMicro(lab, 'sw1', registry);
    for (const m of machines) {
      if (m !== 'sw1') await lab.docker(m, ['pull', micro]);
      const r = await lab.docker(m, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
      assert.ok(r.stdout.split('\n').includes(micro), `${m} lacks ${micro}: ${r.stdout}`);
    }
    // sw1 pulls it back from the registry too, after forgetting its own copy.
    await lab.docker('sw1', ['rmi', micro]);
    await lab.docker('sw1', ['pull', micro]);
  });

  it('partitions a machine and joins it again, its daemon running throughout', async () => {
    await lab.machine(['disconnect', 'sw3']);
    assert.equal((await ls(lab)).get('sw3')!.network, 'disconnected');
    assert.ok(!(await canPing(lab, 'sw1', addr.get('sw3')!)), 'sw1 still reaches sw3');
    assert.ok(!(await canPing(lab, 'sw3', addr.get('sw1')!)), 'sw3 still reaches sw1');
    assert.ok(!(await canReachRegistry(lab, 'sw3', registry)), 'sw3 still reaches the registry');
    assert.ok(await canPing(lab, 'sw1', addr.get('sw2')!), 'the rest of the lab lost its way too');
    assert.equal((await lab.docker('sw3', ['info', '--format', '{{.Name}}'])).stdout.trim(), 'sw3');

    await lab.machine(['connect', 'sw3']);
    assert.equal((await ls(lab)).get('sw3')!.network, 'connected');
    await waitFor('sw1 to reach sw3 again', () => canPing(lab, 'sw1', addr.get('sw3')!));
    assert.ok(await canPing(lab, 'sw3', addr.get('sw2')!));
    assert.ok(await canReachRegistry(lab, 'sw3', registry));
  });

  it('stops a machine (daemon and namespace gone) and starts it again with its images, containers and swarm membership', async () => {
    const ns = `${lab.prefix}-m-sw2`;
    // sw2 is a worker of a swarm managed by sw1.
    await lab.docker('sw1', ['swarm', 'init', '--advertise-addr', addr.get('sw1')!]);
    const token = (await lab.docker('sw1', ['swarm', 'join-token', '-q', 'worker'])).stdout.trim();
    await lab.docker('sw2', ['swarm', 'join', '--token', token, `${addr.get('sw1')}:2377`]);
    const nodeId = (await lab.docker('sw2', ['info', '--format', '{{.Swarm.NodeID}}'])).stdout.trim();
    assert.ok(nodeId);
    // An image of its own, so the check does not depend on the registry, and a running container.
    await lab.docker('sw2', ['import', '-c', 'CMD ["sh"]', busyboxTar, 'lab/kept:1']);
    await lab.docker('sw2', ['run', '-d', '--name', 'cut', 'lab/kept:1', 'sleep', '1000']);
    await lab.docker('sw2', ['run', '-d', '--name', 'always', '--restart', 'always', 'lab/kept:1', 'sleep', '1000']);
    const machineDir = path.join(lab.labDir, 'machines', 'sw2');
    assert.ok(processesOf(machineDir, new Set()).length > 1, 'no daemon or container processes to stop');
    await lab.machine(['stop', 'sw2']);
    assert.equal((await ls(lab)).get('sw2')!.state, 'Stopped');
    assert.equal((await lab.machine(['status', 'sw2'])).stdout.trim(), 'Stopped');
    assert.deepEqual(processesOf(machineDir, new Set()), [], 'processes of sw2 survived the power cut');
    assert.deepEqual(
      fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.includes(machineDir)),
      [],
      'mounts of sw2 survived',
    );
    assert.ok(!(await labNetns(lab.prefix)).includes(ns));
    assert.notEqual((await lab.docker('sw2', ['info'], { allowFail: true })).code, 0);
    assert.ok(!(await canPing(lab, 'sw1', addr.get('sw2')!)));
    const ssh = await lab.ssh('sw2', ['true'], { allowFail: true });
    assert.equal(ssh.code, 1);
    assert.match(ssh.stderr, /Host "sw2" is not running/);

    await lab.machine(['start', 'sw2']);
    const row = (await ls(lab)).get('sw2')!;
    assert.equal(row.state, 'Running');
    assert.equal(row.address, addr.get('sw2'));
    const r = await lab.docker('sw2', ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    assert.ok(r.stdout.split('\n').includes('lab/kept:1'), `sw2 lost lab/kept:1: ${r.stdout}`);
    // The container is still known, no longer running, as after a power cut.
    const c = await lab.docker('sw2', ['ps', '-a', '--filter', 'name=cut', '--format', '{{.Names}} {{.State}}']);
    assert.equal(c.stdout.trim(), 'cut exited');
    // One that asks to be restarted is started again at boot, as dockerd does.
    await waitFor(
      'always running again',
      async () =>
        (await lab.docker('sw2', ['inspect', '--format', '{{.State.Status}}', 'always'])).stdout.trim() === 'running',
      30_000,
      200,
    );
    // Still the same swarm node, and its manager sees it come back.
    assert.equal(
      (await lab.docker('sw2', ['info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}'])).stdout.trim(),
      `active ${nodeId}`,
    );
    await waitFor(
      'sw1 to see sw2 Ready',
      async () => {
        const nodes = (await lab.docker('sw1', ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).stdout;
        return nodes.split('\n').includes('sw2 Ready');
      },
      60_000,
      500,
    );
    assert.ok(await canPing(lab, 'sw2', addr.get('sw1')!));
    assert.ok(await canReachRegistry(lab, 'sw2', registry));
  });

  it('removes a machine for good', async () => {
    await lab.docker('sw3', ['import', '-c', 'CMD ["sh"]', busyboxTar, 'lab/gone:1']);
    await lab.docker('sw3', ['run', '-d', 'lab/gone:1', 'sleep', '1000']);
    const machineDir = path.join(lab.labDir, 'machines', 'sw3');
    await lab.machine(['rm', 'sw3']);
    assert.deepEqual(processesOf(machineDir, new Set()), [], 'processes of sw3 survived');
    assert.deepEqual(
      fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.includes(machineDir)),
      [],
      'mounts of sw3 survived',
    );
    assert.deepEqual([...(await ls(lab)).keys()], ['sw1', 'sw2']);
    assert.ok(!(await labNetns(lab.prefix)).includes(`${lab.prefix}-m-sw3`));
    assert.ok(!fs.existsSync(path.join(lab.labDir, 'machines', 'sw3')));
    const ip = await lab.machine(['ip', 'sw3'], { allowFail: true });
    assert.match(ip.stderr, /Host does not exist: "sw3"/);
    assert.ok(!(await canPing(lab, 'sw1', addr.get('sw3')!)));
  });

  it('prunes the lab: no namespace, bridge, mount, process or nft table left', async () => {
    const namespaces = await labNetns(lab.prefix);
    // Swarm nodes also hold overlay sandboxes named after their machine (<machine ns>-sb-<network>): prune takes them too.
    assert.deepEqual(
      namespaces.filter((n) => !n.includes('-sb-')).sort(),
      [`${lab.prefix}-hub`, `${lab.prefix}-m-sw1`, `${lab.prefix}-m-sw2`].sort(),
    );
    const inodes = netnsInodes(namespaces);
    // A container running at prune time: its conmon, its process and its overlay mount must go too.
    await lab.docker('sw1', ['import', '-c', 'CMD ["sh"]', busyboxTar, 'lab/pruned:1']);
    await lab.docker('sw1', ['run', '-d', 'lab/pruned:1', 'sleep', '1000']);
    assert.ok(
      fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(lab.labDir, 'machines', 'sw1')),
      'the container has no mount to prune',
    );
    // The daemons made nftables tables in their machines: prune must take them away with the namespaces.
    const tables = (await run('nsenter', [`--net=/run/netns/${lab.prefix}-m-sw1`, '--', 'nft', 'list', 'tables']))
      .stdout;
    assert.match(tables, /table ip shoal/);
    assert.ok(
      processesOf(lab.labDir, new Set(inodes.values())).length > 0,
      'no lab process found before prune: the check below would prove nothing',
    );

    await lab.machine(['prune']);
    await assertNothingLeft(lab, inodes);
    // Pruning nothing is fine.
    await lab.machine(['prune']);
    assert.ok(!fs.existsSync(lab.labDir));
  });
});

describe('shoal machine prune after a crash', { timeout: 300_000 }, () => {
  const lab = newTestLab();
  let stray: ChildProcess | undefined;
  after(async () => {
    await lab.prune();
    await stopProcess(stray?.pid, 'SIGKILL');
  });

  it('removes what a lab left behind even when its records are lost', async () => {
    await lab.machine(['create', 'c1']);
    await lab.machine(['registry']);
    const machineNs = `${lab.prefix}-m-c1`;
    const hubNs = `${lab.prefix}-hub`;
    // Debris a crash can leave: a namespace a create made before recording it, a process living
    // in a machine's namespace without naming the lab, a mount, an nft table, and lost records.
    const ghostNs = `${lab.prefix}-m-ghost`;
    await run('ip', ['netns', 'add', ghostNs]);
    await run('nsenter', [`--net=/run/netns/${ghostNs}`, '--', 'nft', 'add', 'table', 'ip', 'leftover']);
    await run('nsenter', [`--net=/run/netns/${hubNs}`, '--', 'nft', 'add', 'table', 'ip', 'leftover']);
    stray = startProcess('nsenter', [`--net=/run/netns/${machineNs}`, '--', 'sleep', '1000'], '/dev/null');
    const mnt = path.join(lab.labDir, 'machines', 'c1', 'data', 'leftover-mount');
    fs.mkdirSync(mnt, { recursive: true });
    await run('mount', ['-t', 'tmpfs', 'leftover', mnt]);
    fs.rmSync(path.join(lab.labDir, 'lab.json'));
    fs.rmSync(path.join(lab.labDir, 'machines', 'c1', 'machine.json'));
    const inodes = netnsInodes([hubNs, machineNs, ghostNs]);
    await waitFor(
      'the stray process to enter the namespace',
      () => processesOf('/nonexistent', new Set([inodes.get(machineNs)!])).length > 0,
    );

    await lab.machine(['prune']);

    await assertNothingLeft(lab, inodes);
    assert.ok(!alive(stray.pid!), 'the stray process survived');
  });
});
