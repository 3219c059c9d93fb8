import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestLab } from '../helpers/lab.js';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { waitFor as poll } from '../helpers/process.js';

// Needs root: a two-machine lab (namespaces, shoald, etcd, runc, the lab registry) driven by the real docker CLI.

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 90_000) => poll(what, fn, ms, 500);

/** Containers started at once, half through each manager (once m2 is promoted). */
const CONCURRENT = Array.from({ length: 8 }, (_, i) => ({ name: `cc${i}`, machine: i % 2 ? 'm2' : 'm1' }));

const hostnameOf = (page: string) => /id="hostname">([^<]*)</.exec(page)?.[1];

describe('standalone containers on attachable overlay networks (two-machine lab)', () => {
  let swarm: SwarmLab;
  let lab: TestLab;
  let image: string;
  let addrs: Map<string, string>;
  let nodeIds: Map<string, string>;
  const d = (m: string, args: string[]) => lab.docker(m, args, { allowFail: true });
  const replicas = async (svc: string) =>
    (await d('m1', ['service', 'ls', '--filter', `name=${svc}`, '--format', '{{.Replicas}}'])).stdout.trim();
  const taskContainer = async (m: string, svc: string) =>
    (await d(m, ['ps', '-q', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${svc}`])).stdout
      .trim()
      .split('\n')[0];
  /** HTTP by hand with nc (the image's static busybox wget crashes in its service lookup). */
  const get = (m: string, from: string, host: string) =>
    d(m, ['exec', from, 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} 8000`]);
  const pingAddr = async (m: string, from: string, name: string) => {
    const p = await d(m, ['exec', from, 'ping', '-c', '1', '-W', '1', name]);
    return p.code === 0 ? /PING \S+ \(([\d.]+)\)/.exec(p.stdout)?.[1] : undefined;
  };
  const endpointIp = async (m: string, net: string, name: string) => {
    // A worker forgets an overlay once its last container on it is gone (as Docker does): no endpoint then.
    const n = JSON.parse((await d(m, ['network', 'inspect', net])).stdout || '[]')[0];
    if (!n) return undefined;
    const ep = Object.values((n.Containers ?? {}) as Record<string, { Name: string; IPv4Address: string }>).find(
      (c) => c.Name === name,
    );
    return ep?.IPv4Address;
  };

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2'], micro: true });
    ({ lab, image, ip: addrs, nodeIds } = swarm);
  });

  after(async () => {
    for (const m of ['m2', 'm1'])
      if (lab)
        await d(m, ['rm', '-f', 'c1', 'c2', 'c3', 'c0', 'p1', 'b1', 'b2', ...CONCURRENT.map((c) => c.name)]).catch(
          () => undefined,
        );
    await swarm?.cleanup();
  });

  it('a service task on m1 and docker run containers on m2 (worker) and m1 (manager) reach each other by name and address', async () => {
    assert.equal((await d('m1', ['network', 'create', '-d', 'overlay', '--attachable', 'att'])).code, 0);
    const s = await d('m1', [
      'service',
      'create',
      '--name',
      'web',
      '--network',
      'att',
      '--constraint',
      `node.id==${nodeIds.get('m1')}`,
      '--detach',
      image,
    ]);
    assert.equal(s.code, 0, s.stderr);
    await waitFor('web 1/1', async () => (await replicas('web')) === '1/1');
    const web = await taskContainer('m1', 'web');
    assert.ok(web);

    const r = await d('m2', ['run', '-d', '--network', 'att', '--name', 'c1', image]);
    assert.equal(r.code, 0, r.stderr);
    const c1 = r.stdout.trim().split('\n').pop()!;
    // network inspect on m2 lists the container with its cluster-allocated address.
    const cidr = await waitFor('c1 in network inspect att on m2', () => endpointIp('m2', 'att', 'c1'), 30_000);
    const subnet = JSON.parse((await d('m1', ['network', 'inspect', 'att'])).stdout)[0].IPAM.Config[0].Subnet as string;
    assert.equal(cidr.split('/')[1], subnet.split('/')[1]);
    assert.equal(
      cidr.split('.').slice(0, 3).join('.'),
      subnet.split('.').slice(0, 3).join('.'),
      `${cidr} in ${subnet}`,
    );
    const c1Ip = cidr.split('/')[0];
    const own = JSON.parse((await d('m2', ['inspect', 'c1'])).stdout)[0];
    assert.equal(own.HostConfig.NetworkMode, 'att');

    // c1 (m2) → web (m1) by service name (VIP) over the VXLAN.
    const page = await waitFor('web from c1', async () => hostnameOf((await get('m2', c1, 'web')).stdout), 30_000);
    assert.equal(page, web.slice(0, 12));
    // web's task (m1) → c1 (m2) by container name and by address.
    assert.equal(await waitFor('c1 resolves from web', () => pingAddr('m1', web, 'c1'), 30_000), c1Ip);
    assert.equal(hostnameOf((await get('m1', web, 'c1')).stdout), c1.slice(0, 12));
    assert.equal(hostnameOf((await get('m1', web, c1Ip)).stdout), c1.slice(0, 12));

    // On the manager too: c0 on m1 reaches c1 on m2 by name, and c1 reaches c0.
    const r0 = await d('m1', ['run', '-d', '--network', 'att', '--name', 'c0', image]);
    assert.equal(r0.code, 0, r0.stderr);
    const c0Ip = (await waitFor('c0 in network inspect att on m1', () => endpointIp('m1', 'att', 'c0'), 30_000)).split(
      '/',
    )[0];
    assert.notEqual(c0Ip, c1Ip);
    assert.equal(await waitFor('c1 resolves from c0', () => pingAddr('m1', 'c0', 'c1'), 30_000), c1Ip);
    assert.equal(await waitFor('c0 resolves from c1', () => pingAddr('m2', 'c1', 'c0'), 30_000), c0Ip);
    assert.equal((await d('m1', ['rm', '-f', 'c0'])).code, 0);
  });

  it("docker run on a non-attachable overlay (or ingress) is refused with Docker's message", async () => {
    assert.equal((await d('m1', ['network', 'create', '-d', 'overlay', 'plain'])).code, 0);
    const r = await d('m2', ['run', '-d', '--network', 'plain', '--name', 'p1', image]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /Error response from daemon: Could not attach to network plain: rpc error: code = PermissionDenied desc = network plain not manually attachable/,
    );
    const st = JSON.parse((await d('m2', ['inspect', 'p1'])).stdout)[0].State;
    assert.equal(st.Running, false);
    assert.equal((await d('m2', ['rm', '-f', 'p1'])).code, 0);
    const i = await d('m1', ['run', '-d', '--network', 'ingress', '--name', 'p1', image]);
    assert.notEqual(i.code, 0);
    assert.match(
      i.stderr,
      /Could not attach to network ingress: rpc error: code = PermissionDenied desc = network ingress not manually attachable/,
    );
    assert.equal((await d('m1', ['rm', '-f', 'p1'])).code, 0);
  });

  it('rm of the container frees its address: its name stops resolving and the next container gets the address', async () => {
    const web = await taskContainer('m1', 'web');
    const c1Ip = (await endpointIp('m2', 'att', 'c1'))!.split('/')[0];
    assert.ok(c1Ip);
    assert.equal((await d('m2', ['rm', '-f', 'c1'])).code, 0);
    await waitFor('c1 gone from network inspect on m2', async () => !(await endpointIp('m2', 'att', 'c1')), 30_000);
    await waitFor(
      'c1 no longer resolves from web',
      async () => {
        const p = await d('m1', ['exec', web, 'ping', '-c', '1', '-W', '1', 'c1']);
        return p.code !== 0 && !/PING c1 \(/.test(p.stdout);
      },
      30_000,
    );
    const r = await d('m2', ['run', '-d', '--network', 'att', '--name', 'c2', image]);
    assert.equal(r.code, 0, r.stderr);
    const c2Ip = (await waitFor('c2 in network inspect', () => endpointIp('m2', 'att', 'c2'), 30_000)).split('/')[0];
    assert.equal(c2Ip, c1Ip, 'the freed address is taken again (lowest free first)');
    assert.equal(await waitFor('c2 resolves from web', () => pingAddr('m1', web, 'c2'), 30_000), c2Ip);
  });

  it('a daemon restart on m2 keeps c2 attached: the new daemon takes its attachment back from the manager', async () => {
    const web = await taskContainer('m1', 'web');
    const c2Ip = (await endpointIp('m2', 'att', 'c2'))!.split('/')[0];
    const machineJson = JSON.parse(fs.readFileSync(`${lab.labDir}/machines/m2/machine.json`, 'utf8')) as {
      pid: number;
    };
    // nsenter execs the daemon, so the recorded PID is shoald itself.
    const daemonPid = machineJson.pid;
    const argv = fs.readFileSync(`/proc/${daemonPid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    assert.ok(
      argv.some((a) => a.endsWith('shoald.js')),
      argv.join(' '),
    );
    const cwd = fs.readlinkSync(`/proc/${daemonPid}/cwd`);
    process.kill(daemonPid, 'SIGTERM');
    await waitFor('m2 daemon gone', async () => !fs.existsSync(`/proc/${daemonPid}`), 30_000);
    const log = fs.openSync(`${cwd}/shoald.log`, 'a');
    const child = spawn('nsenter', [`--net=/run/netns/${lab.prefix}-m-m2`, '--', ...argv], {
      cwd,
      detached: true,
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    child.unref();
    await waitFor(
      'm2 back in the swarm',
      async () => (await d('m2', ['info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout.trim() === 'active',
      60_000,
    );
    // A new container on m2 makes the new daemon apply a whole plan: c2 must be in it.
    const r = await d('m2', ['run', '-d', '--network', 'att', '--name', 'c3', image]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('c3 in network inspect', () => endpointIp('m2', 'att', 'c3'), 30_000);
    assert.equal(await endpointIp('m2', 'att', 'c2'), `${c2Ip}/24`);
    assert.equal(
      await waitFor('c2 resolves from web after the restart', () => pingAddr('m1', web, 'c2'), 30_000),
      c2Ip,
    );
    const c2 = (await d('m2', ['inspect', '--format', '{{.Id}}', 'c2'])).stdout.trim();
    assert.equal(hostnameOf((await get('m1', web, 'c2')).stdout), c2.slice(0, 12));
    for (const c of ['c2', 'c3']) assert.equal((await d('m2', ['rm', '-f', c])).code, 0);
    await waitFor('c2 no longer resolves from web', async () => !(await pingAddr('m1', web, 'c2')), 30_000);
  });

  it('network connect / disconnect: a running default-bridge container joins att (reachable by name, keeps its bridge), then leaves it', async () => {
    const web = await taskContainer('m1', 'web');
    const r = await d('m2', ['run', '-d', '--name', 'b1', image]);
    assert.equal(r.code, 0, r.stderr);
    const c = await d('m2', ['network', 'connect', 'att', 'b1']);
    assert.equal(c.code, 0, c.stderr);
    const nets = JSON.parse((await d('m2', ['inspect', 'b1'])).stdout)[0].NetworkSettings.Networks;
    assert.deepEqual(Object.keys(nets).sort(), ['att', 'bridge']);
    const ip = nets.att.IPAddress as string;
    assert.ok(ip && nets.bridge.IPAddress, JSON.stringify(nets));
    assert.equal(await waitFor('b1 resolves from web', () => pingAddr('m1', web, 'b1'), 30_000), ip);
    const page = await waitFor('web from b1', async () => hostnameOf((await get('m2', 'b1', 'web')).stdout), 30_000);
    assert.equal(page, web.slice(0, 12));
    const plain = await d('m2', ['network', 'connect', 'plain', 'b1']);
    assert.match(
      plain.stderr,
      /Could not attach to network plain: rpc error: code = PermissionDenied desc = network plain not manually attachable/,
    );
    assert.match((await d('m2', ['network', 'connect', 'att', 'nosuch'])).stderr, /No such container: nosuch/);
    const again = await d('m2', ['network', 'connect', 'att', 'b1']);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /Error response from daemon: endpoint with name b1 already exists in network att/);

    // Kept across a restart, as Docker keeps the container's networks.
    assert.equal((await d('m2', ['restart', 'b1'])).code, 0);
    const restarted = JSON.parse((await d('m2', ['inspect', 'b1'])).stdout)[0].NetworkSettings.Networks;
    assert.deepEqual(Object.keys(restarted).sort(), ['att', 'bridge']);
    assert.equal(
      await waitFor('b1 resolves from web after its restart', () => pingAddr('m1', web, 'b1'), 30_000),
      restarted.att.IPAddress,
    );
    const dc = await d('m2', ['network', 'disconnect', 'att', 'b1']);
    assert.equal(dc.code, 0, dc.stderr);
    const after = JSON.parse((await d('m2', ['inspect', 'b1'])).stdout)[0].NetworkSettings.Networks;
    assert.deepEqual(Object.keys(after), ['bridge']);
    await waitFor('b1 no longer resolves from web', async () => !(await pingAddr('m1', web, 'b1')), 30_000);
    // Its way out is still the default bridge.
    assert.match((await d('m2', ['exec', 'b1', 'ip', 'route'])).stdout, /default via 172\.17\.0\.1/);
    const twice = await d('m2', ['network', 'disconnect', 'att', 'b1']);
    assert.notEqual(twice.code, 0);
    assert.match(twice.stderr, /is not connected to network att/);
    // The address went back to the allocator: the next attachment may take it.
    const r2 = await d('m2', ['run', '-d', '--network', 'att', '--name', 'b2', image]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(
      JSON.parse((await d('m2', ['inspect', 'b2'])).stdout)[0].NetworkSettings.Networks.att.IPAddress,
      restarted.att.IPAddress,
    );
    // A stopped container: connected at its next start.
    assert.equal((await d('m2', ['stop', '-t', '1', 'b1'])).code, 0);
    assert.equal((await d('m2', ['network', 'connect', 'att', 'b1'])).code, 0);
    assert.equal((await d('m2', ['start', 'b1'])).code, 0);
    const ip3 = JSON.parse((await d('m2', ['inspect', 'b1'])).stdout)[0].NetworkSettings.Networks.att
      ?.IPAddress as string;
    assert.ok(ip3 && ip3 !== restarted.att.IPAddress);
    assert.equal(await waitFor('b1 resolves from web once started', () => pingAddr('m1', web, 'b1'), 30_000), ip3);
    for (const n of ['b1', 'b2']) assert.equal((await d('m2', ['rm', '-f', n])).code, 0);
  });

  it("with two managers, containers started at once through both get distinct addresses, all from the leader's allocator", async () => {
    const p = await d('m1', ['node', 'promote', nodeIds.get('m2')!]);
    assert.equal(p.code, 0, p.stderr);
    await waitFor(
      'm2 serves as a manager',
      async () =>
        (await d('m2', ['node', 'ls', '--format', '{{.ManagerStatus}}'])).stdout
          .split('\n')
          .filter((s) => s === 'Leader' || s === 'Reachable').length === 2,
      60_000,
    );
    const runs = await Promise.all(
      CONCURRENT.map((c) => d(c.machine, ['run', '-d', '--network', 'att', '--name', c.name, image])),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const ipOf = async (m: string, name: string) => {
      const info = JSON.parse((await d(m, ['inspect', name])).stdout)[0];
      return info.NetworkSettings.Networks.att as
        { IPAddress: string; IPPrefixLen: number; NetworkID: string } | undefined;
    };
    const attId = JSON.parse((await d('m1', ['network', 'inspect', 'att'])).stdout)[0].Id as string;
    const ips: string[] = [];
    for (const c of CONCURRENT) {
      const ep = await ipOf(c.machine, c.name);
      assert.ok(ep?.IPAddress, `${c.name} has an address on att: ${JSON.stringify(ep)}`);
      assert.equal(ep.NetworkID, attId);
      assert.equal(ep.IPPrefixLen, 24);
      ips.push(ep.IPAddress);
    }
    // The service's task and its VIP are in the same books.
    const web = await taskContainer('m1', 'web');
    ips.push((await ipOf('m1', web))!.IPAddress);
    const vip = JSON.parse((await d('m1', ['service', 'inspect', 'web'])).stdout)[0].Endpoint.VirtualIPs.find(
      (v: { NetworkID: string }) => v.NetworkID === attId,
    ).Addr as string;
    ips.push(vip.split('/')[0]);
    assert.equal(new Set(ips).size, ips.length, `no address twice: ${ips.join(' ')}`);
    // And they reach each other across the nodes by name.
    assert.equal(await waitFor('cc1 (m2) resolves from cc0 (m1)', () => pingAddr('m1', 'cc0', 'cc1'), 30_000), ips[1]);
    for (const c of CONCURRENT) assert.equal((await d(c.machine, ['rm', '-f', c.name])).code, 0);
  });
});
