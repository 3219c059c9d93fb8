import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestLab } from '../helpers/lab.js';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { run } from '../../src/util/run.js';
import { waitFor as poll } from '../helpers/process.js';
import { serviceCreate } from '../helpers/service-cli.js';

// Needs root: a three-machine lab (namespaces, shoald, etcd, runc, the lab registry) driven by the real docker CLI.

const MACHINES = ['m1', 'm2', 'm3'];

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 90_000) => poll(what, fn, ms, 500);

const hostnameOf = (page: string) => /id="hostname">([^<]*)</.exec(page)?.[1];

describe('swarm networks on a three-machine lab', () => {
  let swarm: SwarmLab;
  let lab: TestLab;
  let image: string;
  let addrs: Map<string, string>;
  let nodeIds: Map<string, string>;
  const d = (m: string, args: string[]) => swarm.d(m, args);
  const replicas = (svc: string) => swarm.replicas(svc);
  /** curl from the lab's hub namespace (outside every machine). */
  const fromHub = (url: string) =>
    run('ip', ['netns', 'exec', `${lab.prefix}-hub`, 'curl', '-s', '-m', '3', url], { allowFail: true });
  const taskContainer = async (m: string, svc: string) =>
    (await d(m, ['ps', '-q', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${svc}`])).stdout
      .trim()
      .split('\n')[0];

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2', 'm3'], micro: true });
    ({ lab, image, ip: addrs, nodeIds } = swarm);
  });

  after(async () => {
    // Leaving tears each node's overlay data path down; prune removes whatever is left (sandboxes are named after the machine).
    await swarm?.cleanup();
  });

  it('swarm init made the ingress overlay; network ls shows it beside bridge, host and none', async () => {
    const ls = await d('m1', ['network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}']);
    assert.equal(ls.code, 0, ls.stderr);
    const lines = ls.stdout.trim().split('\n');
    for (const want of ['bridge bridge local', 'host host local', 'none null local', 'ingress overlay swarm'])
      assert.ok(lines.includes(want), `${want} in ${ls.stdout}`);
    const ingress = JSON.parse((await d('m1', ['network', 'inspect', 'ingress'])).stdout)[0];
    assert.equal(ingress.Ingress, true);
    assert.deepEqual(ingress.IPAM.Config, [{ Subnet: '10.0.0.0/24', Gateway: '10.0.0.1' }]);
    assert.ok(Number(ingress.Options['com.docker.network.driver.overlay.vxlanid_list']) >= 4096);
  });

  it('network create -d overlay micro-net: subnet from the default pool, a VNI; bad input refused', async () => {
    const c = await d('m1', ['network', 'create', '-d', 'overlay', '--label', 'team=a', 'micro-net']);
    assert.equal(c.code, 0, c.stderr);
    const id = c.stdout.trim();
    const n = await waitFor('micro-net allocated', async () => {
      const x = JSON.parse((await d('m1', ['network', 'inspect', 'micro-net'])).stdout)[0];
      return x.IPAM.Config.length ? x : undefined;
    });
    assert.equal(n.Id, id);
    assert.equal(n.Scope, 'swarm');
    assert.equal(n.Driver, 'overlay');
    assert.deepEqual(n.Labels, { team: 'a' });
    assert.deepEqual(n.IPAM.Config, [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }]);
    const vnis = new Set(
      [n, JSON.parse((await d('m1', ['network', 'inspect', 'ingress'])).stdout)[0]].map(
        (x) => x.Options['com.docker.network.driver.overlay.vxlanid_list'],
      ),
    );
    assert.equal(vnis.size, 2, 'distinct VNIs');

    const dup = await d('m1', ['network', 'create', '-d', 'overlay', 'micro-net']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /network with name micro-net already exists/);
    const clash = await d('m1', ['network', 'create', '-d', 'overlay', '--subnet', '10.0.1.0/25', 'clash']);
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, /Pool overlaps with other one on this address space/);
    const own = await d('m1', [
      'network',
      'create',
      '-d',
      'overlay',
      '--subnet',
      '10.9.0.0/24',
      '--gateway',
      '10.9.0.254',
      '--attachable',
      'mine',
    ]);
    assert.equal(own.code, 0, own.stderr);
    const mine = JSON.parse((await d('m1', ['network', 'inspect', 'mine'])).stdout)[0];
    assert.deepEqual(mine.IPAM.Config, [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.254' }]);
    assert.equal(mine.Attachable, true);
    assert.equal((await d('m1', ['network', 'rm', 'mine'])).code, 0);
    const gone = await d('m1', ['network', 'inspect', 'mine']);
    assert.notEqual(gone.code, 0);
    const unknown = await d('m1', ['service', 'create', '--name', 'nonet', '--network', 'no-such-net', image]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /network no-such-net not found/);
  });

  it('service with -p 8000 on micro-net: port 30000 and VIPs in service inspect; every machine answers on :30000', async () => {
    const c = await d(
      'm1',
      serviceCreate('micro', ['-p', '8000', '--replicas', '1', '--network', 'micro-net', '--detach'], [image]),
    );
    assert.equal(c.code, 0, c.stderr);
    await waitFor('micro 1/1', async () => (await replicas('micro')) === '1/1');
    const s = JSON.parse((await d('m1', ['service', 'inspect', 'micro'])).stdout)[0];
    assert.deepEqual(s.Endpoint.Ports, [
      { Protocol: 'tcp', TargetPort: 8000, PublishedPort: 30000, PublishMode: 'ingress' },
    ]);
    const idOf = async (name: string) =>
      (await d('m1', ['network', 'inspect', '--format', '{{.Id}}', name])).stdout.trim();
    const vipNets = s.Endpoint.VirtualIPs.map((v: { NetworkID: string }) => v.NetworkID).sort();
    assert.deepEqual(vipNets, [await idOf('ingress'), await idOf('micro-net')].sort());
    for (const v of s.Endpoint.VirtualIPs) assert.match(v.Addr, /^10\.0\.[01]\.\d+\/24$/);
    for (const m of MACHINES) {
      const page = await waitFor(
        `micro page at ${m}:30000`,
        async () => {
          const r = await fromHub(`http://${addrs.get(m)}:30000/`);
          return r.code === 0 && hostnameOf(r.stdout) ? r.stdout : undefined;
        },
        30_000,
      );
      assert.match(page, /<h1>micro<\/h1>/);
    }
  });

  it('scale to 7: requests through the mesh reach all 7 containers', async () => {
    const r = await d('m1', ['service', 'scale', '--detach', 'micro=7']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('micro 7/7', async () => (await replicas('micro')) === '7/7');
    const want = new Set<string>();
    for (const m of MACHINES) {
      const ids = (await d(m, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=micro'])).stdout
        .trim()
        .split('\n')
        .filter(Boolean);
      for (const id of ids) want.add(id.slice(0, 12));
    }
    assert.equal(want.size, 7);
    const seen = new Set<string>();
    await waitFor(
      'all 7 hostnames through :30000',
      async () => {
        for (let i = 0; i < 21; i++) {
          const m = MACHINES[i % 3];
          const h = hostnameOf((await fromHub(`http://${addrs.get(m)}:30000/`)).stdout);
          if (h) seen.add(h);
        }
        return seen.size === 7;
      },
      60_000,
    );
    assert.deepEqual([...seen].sort(), [...want].sort());
  });

  it('scale 7 → 3: every request through the mesh is answered, by the 3 remaining containers only', async () => {
    const r = await d('m1', ['service', 'scale', '--detach', 'micro=3']);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('micro 3/3 with 3 containers', async () => {
      if ((await replicas('micro')) !== '3/3') return false;
      let n = 0;
      for (const m of MACHINES)
        n += (await d(m, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=micro'])).stdout
          .trim()
          .split('\n')
          .filter(Boolean).length;
      return n === 3;
    });
    const want = new Set<string>();
    for (const m of MACHINES)
      for (const id of (await d(m, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=micro'])).stdout
        .trim()
        .split('\n')
        .filter(Boolean))
        want.add(id.slice(0, 12));
    // The old tasks' rules go with their tasks: once only three containers exist, no request may reach a stopped one.
    await waitFor('mesh settled on 3 backends', async () => {
      const r = await fromHub(`http://${addrs.get('m1')}:30000/`);
      return want.has(hostnameOf(r.stdout) ?? '');
    });
    const seen = new Set<string>();
    for (let i = 0; i < 18; i++) {
      const r = await fromHub(`http://${addrs.get(MACHINES[i % 3])}:30000/`);
      const h = hostnameOf(r.stdout);
      assert.ok(h && want.has(h), `request ${i} answered by one of ${[...want]}: ${r.stdout || r.stderr}`);
      seen.add(h!);
    }
    assert.equal(seen.size, 3);
  });

  it('host-mode publish: each machine answers on 8080 with its own task', async () => {
    const c = await d(
      'm1',
      serviceCreate(
        'hm',
        ['--mode', 'global', '--publish', 'published=8080,target=8000,mode=host', '--detach'],
        [image],
      ),
    );
    assert.equal(c.code, 0, c.stderr);
    await waitFor('hm 3/3', async () => (await replicas('hm')) === '3/3');
    const s = JSON.parse((await d('m1', ['service', 'inspect', 'hm'])).stdout)[0];
    assert.deepEqual(s.Endpoint.Ports, [
      { Protocol: 'tcp', TargetPort: 8000, PublishedPort: 8080, PublishMode: 'host' },
    ]);
    for (const m of MACHINES) {
      const own = (await taskContainer(m, 'hm')).slice(0, 12);
      const page = await waitFor(
        `hm at ${m}:8080`,
        async () => {
          const r = await fromHub(`http://${addrs.get(m)}:8080/`);
          return hostnameOf(r.stdout);
        },
        30_000,
      );
      assert.equal(page, own, `${m} answers with its own task`);
    }
    assert.equal((await d('m1', ['service', 'rm', 'hm'])).code, 0);
  });

  it('a task on m1 reaches a service whose only task runs on m2, by VIP name and by tasks.<name>', async () => {
    const b = await d(
      'm1',
      serviceCreate(
        'back',
        ['--network', 'micro-net', '--constraint', `node.id==${nodeIds.get('m2')}`, '--detach'],
        [image],
      ),
    );
    assert.equal(b.code, 0, b.stderr);
    const f = await d(
      'm1',
      serviceCreate(
        'front',
        ['--network', 'micro-net', '--constraint', `node.id==${nodeIds.get('m1')}`, '--detach'],
        [image],
      ),
    );
    assert.equal(f.code, 0, f.stderr);
    await waitFor(
      'back and front 1/1',
      async () => (await replicas('back')) === '1/1' && (await replicas('front')) === '1/1',
    );
    const backHost = (await taskContainer('m2', 'back')).slice(0, 12);
    const front = await taskContainer('m1', 'front');
    assert.ok(backHost && front);
    const vip = JSON.parse((await d('m1', ['service', 'inspect', 'back'])).stdout)[0].Endpoint.VirtualIPs[0].Addr.split(
      '/',
    )[0];
    const ping = await waitFor(
      'back resolves',
      async () => {
        const p = await d('m1', ['exec', front, 'ping', '-c', '1', '-W', '1', 'back']);
        return /PING back \(/.test(p.stdout) ? p.stdout : undefined;
      },
      30_000,
    );
    assert.match(ping, new RegExp(`PING back \\(${vip.replace(/\./g, '\\.')}\\)`), 'the name is the VIP');
    // HTTP by hand with nc: the image's static busybox wget crashes in its service lookup.
    const get = (host: string) =>
      d('m1', ['exec', front, 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} 8000`]);
    const viaVip = await waitFor(
      'back by VIP',
      async () => {
        const w = await get('back');
        return hostnameOf(w.stdout) ? w.stdout : undefined;
      },
      30_000,
    );
    assert.equal(hostnameOf(viaVip), backHost);
    const direct = await get(vip);
    assert.equal(hostnameOf(direct.stdout), backHost, 'by the VIP address itself');
    const viaTasks = await get('tasks.back');
    assert.equal(hostnameOf(viaTasks.stdout), backHost);
    // The worker m2 lists the swarm network its task uses; inspect shows that container and the peers.
    assert.match((await d('m2', ['network', 'ls', '--format', '{{.Name}} {{.Scope}}'])).stdout, /^micro-net swarm$/m);
    const onM2 = JSON.parse((await d('m2', ['network', 'inspect', 'micro-net'])).stdout)[0];
    const backId = await taskContainer('m2', 'back');
    assert.ok(onM2.Containers[backId], JSON.stringify(onM2.Containers));
    assert.match(onM2.Containers[backId].IPv4Address, /^10\.0\.1\.\d+\/24$/);
    const peerIps = onM2.Peers.map((p: { IP: string }) => p.IP);
    assert.ok(peerIps.includes(addrs.get('m1')) && peerIps.includes(addrs.get('m2')), JSON.stringify(onM2.Peers));
    const tasksPing = await d('m1', ['exec', front, 'ping', '-c', '1', '-W', '1', 'tasks.back']);
    assert.doesNotMatch(
      tasksPing.stdout,
      new RegExp(`\\(${vip.replace(/\./g, '\\.')}\\)`),
      'tasks.back is the task address, not the VIP',
    );
  });

  it('a daemon restart on m2 keeps its tasks and their traffic; the new daemon adopts the data path', async () => {
    const front = await taskContainer('m1', 'front');
    const backId = await taskContainer('m2', 'back');
    const get = async (host: string) =>
      hostnameOf(
        (await d('m1', ['exec', front, 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} 8000`]))
          .stdout,
      );
    const machineJson = JSON.parse(fs.readFileSync(`${lab.labDir}/machines/m2/machine.json`, 'utf8')) as {
      pid: number;
    };
    // nsenter execs the daemon, so the recorded PID is shoald itself.
    const daemonPid = machineJson.pid;
    assert.match(fs.readFileSync(`/proc/${daemonPid}/cmdline`, 'utf8'), /shoald\.js/);
    const argv = fs.readFileSync(`/proc/${daemonPid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const cwd = fs.readlinkSync(`/proc/${daemonPid}/cwd`);
    const netns = `/run/netns/${lab.prefix}-m-m2`;
    /** m2's sandbox namespaces, name → namespace inode (a sandbox made afresh has a new one). */
    const sandboxesOfM2 = () =>
      Object.fromEntries(
        fs
          .readdirSync('/run/netns')
          .filter((n) => n.startsWith(`${lab.prefix}-m-m2-sb-`))
          .map((n) => [n, fs.statSync(`/run/netns/${n}`).ino]),
      );
    const sandboxesBefore = sandboxesOfM2();
    assert.ok(Object.keys(sandboxesBefore).length >= 2, JSON.stringify(sandboxesBefore));
    process.kill(daemonPid, 'SIGTERM');
    await waitFor('m2 daemon gone', async () => !fs.existsSync(`/proc/${daemonPid}`), 30_000);
    // Kernel state outlives the daemon: VIP and mesh traffic keep flowing.
    assert.equal(await get('back'), backId.slice(0, 12), 'VIP while the daemon is down');
    assert.ok(
      hostnameOf((await fromHub(`http://${addrs.get('m2')}:30000/`)).stdout),
      'mesh on m2 while its daemon is down',
    );
    const log = fs.openSync(`${cwd}/shoald.log`, 'a');
    const child = spawn('nsenter', [`--net=${netns}`, '--', ...argv], {
      cwd,
      detached: true,
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    child.unref();
    await waitFor('m2 daemon back', async () => (await d('m2', ['version'])).code === 0, 60_000);
    await waitFor(
      'm2 back in the swarm',
      async () => (await d('m2', ['info', '--format', '{{.Swarm.LocalNodeState}}'])).stdout.trim() === 'active',
      60_000,
    );
    assert.equal(await taskContainer('m2', 'back'), backId, 'the task kept its container');
    await waitFor('VIP after the restart', async () => (await get('back')) === backId.slice(0, 12), 30_000);
    assert.ok(hostnameOf((await fromHub(`http://${addrs.get('m2')}:30000/`)).stdout), 'mesh on m2 after the restart');
    // The new daemon opens its data path at its first network view: it found the old sandboxes in the kernel.
    const adopted = await waitFor(
      'the new daemon read the kernel',
      async () =>
        fs
          .readFileSync(`${cwd}/shoald.log`, 'utf8')
          .split('\n')
          .find((l) => l.includes('overlay state read from the kernel') && l.includes(`"pid":${child.pid},`)),
      30_000,
    );
    assert.ok(Number(/"sandboxes":(\d+)/.exec(adopted)?.[1]) >= 2, `sandboxes adopted: ${adopted}`);
    // Adopted, not rebuilt: a first pass without the node's tasks tore the sandboxes down and made them again.
    assert.deepEqual(sandboxesOfM2(), sandboxesBefore, 'the sandboxes of m2 are the ones from before the restart');
  });

  it('egress through the gateway bridge; --endpoint-mode dnsrr names resolve to task addresses', async () => {
    const front = await taskContainer('m1', 'front');
    const registry = swarm.registry;
    const [host, port] = registry.split(':');
    const out = await d('m1', [
      'exec',
      front,
      'sh',
      '-c',
      `printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} ${port}`,
    ]);
    assert.match(out.stdout, /^HTTP\/1\.[01] 200/, `the lab registry from a task: ${out.stdout}${out.stderr}`);

    const c = await d(
      'm1',
      serviceCreate(
        'rr',
        ['--endpoint-mode', 'dnsrr', '--replicas', '2', '--network', 'micro-net', '--detach'],
        [image],
      ),
    );
    assert.equal(c.code, 0, c.stderr);
    await waitFor('rr 2/2', async () => (await replicas('rr')) === '2/2');
    const s = JSON.parse((await d('m1', ['service', 'inspect', 'rr'])).stdout)[0];
    assert.equal((s.Endpoint.VirtualIPs ?? []).length, 0, 'no VIP in dnsrr mode');
    const taskIps = new Set<string>();
    for (const id of (await d('m1', ['service', 'ps', 'rr', '-q', '--filter', 'desired-state=running'])).stdout
      .trim()
      .split('\n')) {
      const t = JSON.parse((await d('m1', ['inspect', '--type', 'task', id])).stdout)[0];
      taskIps.add(
        t.NetworksAttachments.find(
          (a: { Network: { Spec: { Name: string } } }) => a.Network.Spec.Name === 'micro-net',
        ).Addresses[0].split('/')[0],
      );
    }
    const resolved = await waitFor(
      'rr resolves to a task',
      async () => {
        const p = await d('m1', ['exec', front, 'ping', '-c', '1', '-W', '1', 'rr']);
        return /PING rr \(([\d.]+)\)/.exec(p.stdout)?.[1];
      },
      30_000,
    ).catch(async (e: Error) => {
      // What m1's resolver knows (its last applied plan) and what the names give from the task.
      const lines = [
        e.message,
        `task addresses: ${[...taskIps]}`,
        (await d('m1', ['service', 'ps', 'rr', '--no-trunc'])).stdout,
      ];
      for (const n of ['rr', 'tasks.rr', 'back', 'tasks.back']) {
        const p = await d('m1', ['exec', front, 'ping', '-c', '1', '-W', '1', n]);
        lines.push(`ping ${n}: ${p.stdout.split('\n')[0]}${p.stderr.trim()}`);
      }
      const verbose = JSON.parse((await d('m1', ['network', 'inspect', '--verbose', 'micro-net'])).stdout || '[{}]')[0];
      lines.push(`m1 network inspect --verbose micro-net Services: ${JSON.stringify(verbose.Services)}`);
      throw new Error(lines.join('\n'));
    });
    assert.ok(taskIps.has(resolved), `${resolved} in ${[...taskIps]}`);
    assert.equal((await d('m1', ['service', 'rm', 'rr'])).code, 0);
  });

  it('network rm is refused while a service uses the network; works once it is gone', async () => {
    const id = JSON.parse((await d('m1', ['network', 'inspect', 'micro-net'])).stdout)[0].Id;
    const rm = await d('m1', ['network', 'rm', 'micro-net']);
    assert.notEqual(rm.code, 0);
    assert.match(
      rm.stderr,
      new RegExp(`rpc error: code = FailedPrecondition desc = network ${id} is in use by service [a-z0-9]{25}`),
    );
    for (const s of ['micro', 'back', 'front']) assert.equal((await d('m1', ['service', 'rm', s])).code, 0);
    await waitFor(
      'network rm after the services are gone',
      async () => (await d('m1', ['network', 'rm', 'micro-net'])).code === 0,
      60_000,
    );
    assert.notEqual((await d('m1', ['network', 'inspect', 'micro-net'])).code, 0);
  });

  it('a machine lost: the mesh on the others keeps answering, from the tasks that replaced it', async () => {
    const c = await d('m1', serviceCreate('mesh', ['-p', '8000', '--replicas', '3', '--detach'], [image]));
    assert.equal(c.code, 0, c.stderr);
    await waitFor('mesh 3/3', async () => (await replicas('mesh')) === '3/3');
    const port = JSON.parse((await d('m1', ['service', 'inspect', 'mesh'])).stdout)[0].Endpoint.Ports[0].PublishedPort;
    assert.ok(
      fs.readdirSync('/run/netns').some((n) => n.startsWith(`${lab.prefix}-m-m3-sb-`)),
      'm3 has its ingress sandbox',
    );
    await lab.machine(['stop', 'm3']);
    assert.deepEqual(
      fs.readdirSync('/run/netns').filter((n) => n.startsWith(`${lab.prefix}-m-m3-sb-`)),
      [],
      'a stopped machine leaves no sandbox',
    );
    await waitFor(
      'm3 down and mesh 3/3 on m1, m2',
      async () => {
        const nodes = (await d('m1', ['node', 'ls', '--format', '{{.Hostname}} {{.Status}}'])).stdout;
        if (!/m3 Down/.test(nodes)) return false;
        const ps = (
          await d('m1', [
            'service',
            'ps',
            'mesh',
            '--filter',
            'desired-state=running',
            '--format',
            '{{.Node}} {{.CurrentState}}',
          ])
        ).stdout
          .trim()
          .split('\n');
        return ps.length === 3 && ps.every((l) => /^m[12] Running/.test(l));
      },
      120_000,
    );
    const want = new Set<string>();
    for (const m of ['m1', 'm2'])
      for (const id of (await d(m, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=mesh'])).stdout
        .trim()
        .split('\n')
        .filter(Boolean))
        want.add(id.slice(0, 12));
    await waitFor('mesh settled on the replacements', async () =>
      want.has(hostnameOf((await fromHub(`http://${addrs.get('m1')}:${port}/`)).stdout) ?? ''),
    );
    for (let i = 0; i < 12; i++) {
      const m = i % 2 ? 'm2' : 'm1';
      const r = await fromHub(`http://${addrs.get(m)}:${port}/`);
      assert.ok(want.has(hostnameOf(r.stdout) ?? ''), `request ${i} via ${m}: ${r.stdout || r.stderr}`);
    }
  });

  it("leaving the swarm removes the node's overlay sandboxes", async () => {
    assert.ok(
      fs.readdirSync('/run/netns').some((n) => n.startsWith(`${lab.prefix}-m-m2-sb-`)),
      'm2 has its ingress sandbox',
    );
    assert.equal((await d('m2', ['swarm', 'leave', '--force'])).code, 0);
    await waitFor(
      'm2 sandboxes gone',
      async () => !fs.readdirSync('/run/netns').some((n) => n.startsWith(`${lab.prefix}-m-m2-sb-`)),
      30_000,
    );
    await waitFor(
      'gateway bridge gone',
      async () =>
        (
          await run('ip', ['netns', 'exec', `${lab.prefix}-m-m2`, 'ip', 'link', 'show', 'shoal_gwbridge'], {
            allowFail: true,
          })
        ).code !== 0,
      30_000,
    );
  });
});
