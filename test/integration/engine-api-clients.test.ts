import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import Docker from 'dockerode';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { importBusybox } from '../helpers/busybox.js';
import { waitFor } from '../helpers/process.js';

/**
 * Clients other than the docker CLI against a real shoald in its own namespace (swarm init):
 * dockerode (npm), and raw HTTP as hand-written clients send it (lowercase keys, extra fields).
 * Also the service/network/swarm details docker-py's suite checks (npm run compat). Root.
 */

let d: TestDaemon;

interface Answer {
  status: number;
  body: unknown;
  raw: string;
}

/** One request on the daemon's socket; a JSON body is sent as given (a string is sent verbatim). */
function api(method: string, path: string, body?: unknown): Promise<Answer> {
  const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: d.socket,
        method,
        path: `/v1.41${path}`,
        headers: data ? { 'Content-Type': 'application/json' } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString();
          let parsed: unknown = raw;
          try {
            parsed = raw ? JSON.parse(raw) : undefined;
          } catch {
            /* not JSON: kept as text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, raw });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

// A JSON answer's fields, for assertions (the tests check the shape they read).
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers of many shapes

const sleeper = (name: string, replicas = 1) => ({
  Name: name,
  TaskTemplate: { ContainerSpec: { Image: 'busybox:latest', Command: ['sleep', '300'] } },
  Mode: { Replicated: { Replicas: replicas } },
});

before(async () => {
  d = await startDaemon({ prefix: 'shapicl' });
  await importBusybox(d.docker, d.dir, 'busybox:latest');
});

after(async () => {
  await d?.destroy();
});

test('swarm init refuses an unknown data-path interface, and a port in the data-path address, as dockerd; nothing is created', async () => {
  for (const DataPathAddr of ['nosuchif0', '127.0.0.1:4789', '0.0.0.0']) {
    const r = await api('POST', '/swarm/init', {
      ListenAddr: '0.0.0.0:2377',
      AdvertiseAddr: '127.0.0.1',
      DataPathAddr,
    });
    assert.equal(r.status, 400, `${DataPathAddr}: ${r.raw}`);
    assert.deepEqual(r.body, {
      message: 'data path address must be a non-zero IP address or network interface (without a port number)',
    });
  }
  assert.equal((await api('GET', '/swarm')).status, 503, 'no swarm was made');
  const ok = await api('POST', '/swarm/init', { ListenAddr: '0.0.0.0:2377', AdvertiseAddr: '127.0.0.1' });
  assert.equal(ok.status, 200, ok.raw);
});

test("once swarm init answers, the node's Version holds: a list then an inspect read the same one (docker-py's test_inspect_node)", async () => {
  const listed = (await api('GET', '/nodes')).body as Json[];
  assert.equal(listed.length, 1);
  // Past the agent's first image report (a 2 s tick before) and the allocator's first pass.
  await new Promise((r) => setTimeout(r, 3000));
  const inspected = (await api('GET', `/nodes/${listed[0].ID}`)).body as Json;
  assert.deepEqual(inspected.Version, listed[0].Version);
});

test('dockerode: lists nodes, creates a service, scales it, reads its tasks', async () => {
  const docker = new Docker({ socketPath: d.socket, version: 'v1.41' });
  const nodes = await docker.listNodes();
  assert.equal(nodes.length, 1);
  assert.equal(nodes[0].Spec?.Role, 'manager');
  assert.equal(nodes[0].ManagerStatus?.Leader, true);

  const created = await docker.createService(sleeper('dode') as Docker.CreateServiceOptions);
  const service = docker.getService(created.id);
  const info = (await service.inspect()) as Json;
  await service.update({ ...info.Spec, Mode: { Replicated: { Replicas: 3 } }, version: info.Version.Index });
  assert.equal(((await service.inspect()) as Json).Spec.Mode.Replicated.Replicas, 3);
  const tasks = await waitFor(
    '3 running tasks of dode',
    async () => {
      const all = await docker.listTasks({
        filters: JSON.stringify({ service: ['dode'], 'desired-state': ['running'] }),
      });
      return all.length === 3 && all.every((t) => t.Status?.State === 'running') && all;
    },
    90_000,
    500,
  );
  assert.deepEqual(tasks.map((t) => t.Slot).sort(), [1, 2, 3]);
  assert.ok(tasks.every((t) => t.ServiceID === created.id && t.NodeID === nodes[0].ID));
  await service.remove();
});

test('dockerode on the routes that check Content-Type (volume, network, container create, exec, connect): all accepted', async () => {
  const docker = new Docker({ socketPath: d.socket, version: 'v1.41' });
  await docker.createVolume({ Name: 'dode-vol' });
  const net = await docker.createNetwork({ Name: 'dode-net' });
  const c = await docker.createContainer({
    name: 'dode-box',
    Image: 'busybox:latest',
    Cmd: ['sleep', '60'],
    HostConfig: { Binds: ['dode-vol:/data'] },
  });
  await c.start();
  await net.connect({ Container: c.id });
  const exec = await c.exec({ Cmd: ['sh', '-c', 'echo hi > /data/f'], AttachStdout: true });
  await exec.start({ Detach: true });
  await waitFor('the exec ran', async () => (await exec.inspect()).Running === false);
  assert.equal((await exec.inspect()).ExitCode, 0);
  await net.disconnect({ Container: c.id });
  await c.remove({ force: true });
  await net.remove();
  await docker.getVolume('dode-vol').remove();
});

test('service: ForceUpdate shown from create; the version read right after create stays valid; update answers {"Warnings":null}', async () => {
  const c = await api('POST', '/services/create', sleeper('fu'));
  assert.equal(c.status, 201, c.raw);
  const id = (c.body as Json).ID as string;
  const first = (await api('GET', `/services/${id}`)).body as Json;
  assert.equal(first.Spec.TaskTemplate.ForceUpdate, 0, 'TaskSpec.ForceUpdate has no omitempty in Docker');
  // Once the leader loops have handled the new service (its task is past NEW), its version is unchanged.
  await waitFor(
    'the task of fu allocated',
    async () => {
      const tasks = (await api('GET', `/tasks?filters=${encodeURIComponent(JSON.stringify({ service: [id] }))}`))
        .body as Json[];
      return tasks.length === 1 && tasks[0].Status.State !== 'new';
    },
    30_000,
  );
  const later = (await api('GET', `/services/${id}`)).body as Json;
  assert.equal(later.Version.Index, first.Version.Index, 'no write to a service with nothing to allocate');

  const spec = { ...first.Spec, TaskTemplate: { ...first.Spec.TaskTemplate, ForceUpdate: 10 } };
  const u = await api('POST', `/services/${id}/update?version=${first.Version.Index}`, spec);
  assert.equal(u.status, 200, u.raw);
  assert.equal(u.raw.trim(), '{"Warnings":null}');
  const after = (await api('GET', `/services/${id}`)).body as Json;
  assert.equal(after.Spec.TaskTemplate.ForceUpdate, 10);
  assert.ok(after.Version.Index > first.Version.Index);
  assert.equal((await api('DELETE', `/services/${id}`)).status, 200);
});

test('networks: a name with spaces; IPAM Options null unless given; aux addresses kept', async () => {
  const spaced = await api('POST', '/networks/create', { Name: 'test 01', Driver: 'bridge' });
  assert.equal(spaced.status, 201, spaced.raw);
  const id = (spaced.body as Json).Id as string;
  const n = (await api('GET', `/networks/${id}`)).body as Json;
  assert.equal(n.Name, 'test 01');
  assert.equal(n.IPAM.Options, null);
  assert.equal((await api('GET', `/networks/${encodeURIComponent('test 01')}`)).status, 200);
  assert.equal((await api('DELETE', `/networks/${id}`)).status, 204);

  const ipam = {
    Driver: 'default',
    Options: { 'com.example.opt': 'x' },
    Config: [
      {
        Subnet: '172.28.0.0/16',
        IPRange: '172.28.5.0/24',
        Gateway: '172.28.5.254',
        AuxiliaryAddresses: { a: '172.28.1.5', b: '172.28.1.6' },
      },
    ],
  };
  const withIpam = await api('POST', '/networks/create', { Name: 'shapicl-ipam', IPAM: ipam });
  assert.equal(withIpam.status, 201, withIpam.raw);
  const m = (await api('GET', '/networks/shapicl-ipam')).body as Json;
  assert.deepEqual(m.IPAM, ipam);
  const bad = await api('POST', '/networks/create', {
    Name: 'shapicl-badaux',
    IPAM: { Config: [{ Subnet: '172.29.0.0/16', AuxiliaryAddresses: { a: '10.1.1.1' } }] },
  });
  assert.equal(bad.status, 403, bad.raw);
  assert.equal((await api('GET', '/networks/shapicl-badaux')).status, 404, 'a refused network is not stored');
  assert.equal((await api('DELETE', '/networks/shapicl-ipam')).status, 204);
});

test("endpoint settings: DriverOpts and link-local IPs at create, MAC address and links at connect, kept and shown; the MAC is the interface's", async () => {
  const c = await api('POST', '/containers/create', {
    Image: 'busybox:latest',
    Cmd: ['sleep', '300'],
    HostConfig: { NetworkMode: 'bridge' },
    NetworkingConfig: {
      EndpointsConfig: {
        bridge: { DriverOpts: { 'com.docker-py.setting': 'on' }, IPAMConfig: { LinkLocalIPs: ['169.254.8.8'] } },
      },
    },
  });
  assert.equal(c.status, 201, c.raw);
  const id = (c.body as Json).Id as string;
  const bridge = ((await api('GET', `/containers/${id}/json`)).body as Json).NetworkSettings.Networks.bridge;
  assert.deepEqual(bridge.DriverOpts, { 'com.docker-py.setting': 'on' });
  assert.deepEqual(bridge.IPAMConfig, { LinkLocalIPs: ['169.254.8.8'] });

  assert.equal((await api('POST', '/networks/create', { Name: 'shapicl-ep' })).status, 201);
  const badMac = await api('POST', '/networks/shapicl-ep/connect', {
    Container: id,
    EndpointConfig: { MacAddress: 'not-a-mac' },
  });
  assert.equal(badMac.status, 400, badMac.raw);
  const con = await api('POST', '/networks/shapicl-ep/connect', {
    Container: id,
    EndpointConfig: { MacAddress: '02:42:ac:11:00:02', Links: ['upstream:bar'] },
  });
  assert.equal(con.status, 200, con.raw);
  const before = ((await api('GET', `/containers/${id}/json`)).body as Json).NetworkSettings.Networks['shapicl-ep'];
  assert.equal(before.MacAddress, '02:42:ac:11:00:02');
  assert.deepEqual(before.Links, ['upstream:bar']);
  assert.equal((await api('POST', `/containers/${id}/start`)).status, 204);
  const running = ((await api('GET', `/containers/${id}/json`)).body as Json).NetworkSettings.Networks;
  assert.equal(running['shapicl-ep'].MacAddress, '02:42:ac:11:00:02');
  assert.ok(running['shapicl-ep'].IPAddress, 'connected with an address');
  assert.deepEqual(running.bridge.DriverOpts, { 'com.docker-py.setting': 'on' });
  const inside = await d.docker(['exec', id, 'cat', '/sys/class/net/eth1/address']);
  assert.equal(inside.stdout.trim(), '02:42:ac:11:00:02');
  assert.equal((await api('DELETE', `/containers/${id}?force=1`)).status, 204);
  assert.equal((await api('DELETE', '/networks/shapicl-ep')).status, 204);
});

test('container create: one network per create at API 1.41, as dockerd 20.10; no aliases shows null', async () => {
  assert.equal((await api('POST', '/networks/create', { Name: 'shapicl-one' })).status, 201);
  const two = await api('POST', '/containers/create?name=shapicl-two', {
    Image: 'busybox:latest',
    Cmd: ['sleep', '300'],
    HostConfig: { NetworkMode: 'shapicl-one' },
    NetworkingConfig: { EndpointsConfig: { 'shapicl-one': { Aliases: ['hello'] }, bar: { Aliases: ['test'] } } },
  });
  assert.equal(two.status, 400, two.raw);
  assert.deepEqual(two.body, { message: 'Container cannot be connected to network endpoints: shapicl-one, bar' });
  assert.equal((await api('GET', '/containers/shapicl-two/json')).status, 404, 'nothing created');
  const one = await api('POST', '/containers/create?name=shapicl-one-c', {
    Image: 'busybox:latest',
    Cmd: ['sleep', '300'],
    HostConfig: { NetworkMode: 'shapicl-one' },
  });
  assert.equal(one.status, 201, one.raw);
  assert.equal((await api('POST', '/containers/shapicl-one-c/start')).status, 204);
  const ep = ((await api('GET', '/containers/shapicl-one-c/json')).body as Json).NetworkSettings.Networks[
    'shapicl-one'
  ];
  assert.equal(ep.Aliases, null);
  assert.equal(ep.DriverOpts, null);
  assert.equal((await api('DELETE', '/containers/shapicl-one-c?force=1')).status, 204);
  assert.equal((await api('DELETE', '/networks/shapicl-one')).status, 204);
});

test('links on a user network: the alias resolves for the linking container only, also for a container started later', async () => {
  assert.equal((await api('POST', '/networks/create', { Name: 'shapicl-links' })).status, 201);
  const run = async (name: string, ec: Json = {}) => {
    const c = await api('POST', `/containers/create?name=${name}`, {
      Image: 'busybox:latest',
      Cmd: ['sleep', '300'],
      HostConfig: { NetworkMode: 'shapicl-links' },
      NetworkingConfig: { EndpointsConfig: { 'shapicl-links': ec } },
    });
    assert.equal(c.status, 201, c.raw);
    assert.equal((await api('POST', `/containers/${name}/start`)).status, 204);
    return ((await api('GET', `/containers/${name}/json`)).body as Json).NetworkSettings.Networks['shapicl-links'];
  };
  const linking = await run('shapicl-linking', { Links: ['shapicl-upstream:bar'] });
  assert.deepEqual(linking.Links, ['shapicl-upstream:bar']);
  const other = await run('shapicl-other');
  const upstream = await run('shapicl-upstream');
  const seen = await d.docker(['exec', 'shapicl-linking', 'nslookup', 'bar'], { allowFail: true });
  assert.equal(seen.code, 0, seen.stdout + seen.stderr);
  assert.match(seen.stdout, new RegExp(`Address:\\s+${upstream.IPAddress.replace(/\./g, '\\.')}\\b`));
  const notSeen = await d.docker(['exec', 'shapicl-other', 'nslookup', 'bar'], { allowFail: true });
  assert.notEqual(notSeen.code, 0, `another container must not resolve the link alias: ${notSeen.stdout}`);
  assert.ok(other.IPAddress);
  for (const c of ['shapicl-linking', 'shapicl-other', 'shapicl-upstream'])
    assert.equal((await api('DELETE', `/containers/${c}?force=1`)).status, 204);
  assert.equal((await api('DELETE', '/networks/shapicl-links')).status, 204);
});

test('raw HTTP: extra fields a hand-written client sends are ignored, as dockerd does', async () => {
  const c = await api('POST', '/services/create', {
    ...sleeper('extra'),
    Extra: { nested: [1, 2] },
    Comment: 'ignored',
  });
  assert.equal(c.status, 201, c.raw);
  const s = (await api('GET', '/services/extra')).body as Json;
  assert.equal(s.Spec.Extra, undefined);
  assert.equal(s.Spec.Comment, undefined);
  const n = await api('POST', '/networks/create', { Name: 'shapicl-extra', CheckDuplicate: true, Whatever: 'x' });
  assert.equal(n.status, 201, n.raw);
  assert.equal((await api('DELETE', '/networks/shapicl-extra')).status, 204);
  assert.equal((await api('DELETE', '/services/extra')).status, 200);
});

test('raw HTTP: docker-py scale() sends {"Mode": {"replicated": {"Replicas": 3}}}: the service scales', async () => {
  const c = await api('POST', '/services/create', sleeper('micro', 1));
  assert.equal(c.status, 201, c.raw);
  const s = (await api('GET', '/services/micro')).body as Json;
  const u = await api('POST', `/services/micro/update?version=${s.Version.Index}`, {
    ...s.Spec,
    Mode: { replicated: { Replicas: 3 } },
  });
  try {
    assert.equal(u.status, 200, u.raw);
    const after = (await api('GET', '/services/micro')).body as Json;
    assert.deepEqual(after.Spec.Mode, { Replicated: { Replicas: 3 } });
    // A scale replaces nothing: the first task is still the one from create.
    assert.equal(after.Spec.TaskTemplate.ForceUpdate, s.Spec.TaskTemplate.ForceUpdate);
  } finally {
    await api('DELETE', '/services/micro');
  }
});

test('raw HTTP: lowercase and mixed-case keys are matched as Go matches them', async () => {
  const n = await api('POST', '/networks/create', {
    name: 'shapicl-lower',
    driver: 'bridge',
    labels: { 'Keep.Case': 'v' },
  });
  assert.equal(n.status, 201, n.raw);
  const net = (await api('GET', '/networks/shapicl-lower')).body as Json;
  assert.deepEqual(net.Labels, { 'Keep.Case': 'v' }, 'map keys stay as sent');
  await api('DELETE', '/networks/shapicl-lower');
  const cfg = await api('POST', '/configs/create', {
    name: 'shapicl-tpl',
    data: Buffer.from('x').toString('base64'),
    templating: { name: 'golang' },
  });
  assert.equal(cfg.status, 201, cfg.raw);
  const got = (await api('GET', '/configs/shapicl-tpl')).body as Json;
  assert.deepEqual(got.Spec.Templating, { Name: 'golang' });
  await api('DELETE', '/configs/shapicl-tpl');
});
