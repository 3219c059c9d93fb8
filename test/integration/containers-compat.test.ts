import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { cliOf } from '../helpers/daemon-cli.js';
import { importBusybox } from '../helpers/busybox.js';
import { waitFor } from '../helpers/process.js';
import { run } from '../../src/util/run.js';

// Needs root: runc, conmon, overlayfs, mount. Container behaviour as dockerd 20.10 shows it to
// docker-py and the docker CLI: log driver, runtime, groups, links, detach keys, exec framing,
// prune, commit parent, refusals, /etc/hosts.
let d: TestDaemon;
const IMG = 'shccbusybox';

before(async () => {
  d = await startDaemon({ prefix: 'shtcc' });
  // getent (glibc, from the host) answers from /etc/hosts as applications do.
  await importBusybox(d.docker, d.dir, IMG, { hostBinaries: ['/usr/bin/getent'] });
});
after(async () => {
  await d?.destroy();
});

const { docker, dockerFail, out } = cliOf(() => d);

// `any`: API answers are read field by field, as a client does.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** One Engine API request on the daemon's socket; the body as JSON (or text when it is not). */
function api(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: Json; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        socketPath: d.socket,
        method,
        path: `/v1.41${urlPath}`,
        headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          let parsed: Json = raw.toString();
          try {
            parsed = raw.length ? JSON.parse(raw.toString()) : null;
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, raw });
        });
      },
    );
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/** A hijacked (upgraded) connection: what arrives after the 101 header, and whether the daemon closed it. */
interface Hijacked {
  sock: net.Socket;
  received: () => Buffer;
  closed: Promise<void>;
}

async function hijack(urlPath: string, body?: unknown): Promise<Hijacked> {
  const sock = net.connect(d.socket);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const data = body === undefined ? '' : JSON.stringify(body);
  sock.write(
    `POST /v1.41${urlPath} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\n\r\n${data}`,
  );
  let buf = Buffer.alloc(0);
  let headerDone = false;
  let payload = Buffer.alloc(0);
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    sock.on('data', (c: Buffer) => {
      if (headerDone) {
        payload = Buffer.concat([payload, c]);
        return;
      }
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      headerDone = true;
      const head = buf.subarray(0, end).toString();
      payload = buf.subarray(end + 4);
      if (!/^HTTP\/1\.1 101/.test(head)) reject(new Error(`not upgraded: ${head}`));
      else resolve();
    });
    sock.once('close', () => {
      if (!headerDone) reject(new Error('closed before the answer'));
    });
  });
  return { sock, received: () => payload, closed };
}

/** Docker's multiplexed frames: [stream, payload] pairs. */
function frames(b: Buffer): [number, string][] {
  const outFrames: [number, string][] = [];
  for (let i = 0; i + 8 <= b.length;) {
    const len = b.readUInt32BE(i + 4);
    outFrames.push([b[i], b.subarray(i + 8, i + 8 + len).toString()]);
    i += 8 + len;
  }
  return outFrames;
}

const closedWithin = (h: Hijacked, ms: number) =>
  Promise.race([h.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

test('LogConfig defaults to json-file and Runtime to runc; an unknown log driver, runtime or a storage size is refused as dockerd does, storing nothing', async () => {
  const c = await api('POST', '/containers/create', {
    Image: IMG,
    Cmd: ['true'],
    HostConfig: { LogConfig: { Type: '', Config: { 'max-file': '3' } } },
  });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const i = (await api('GET', `/containers/${c.body.Id}/json`)).body;
  assert.deepEqual(i.HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-file': '3' } });
  assert.equal(i.HostConfig.Runtime, 'runc');
  const plain = await out('create', IMG, 'true');
  assert.equal(
    await out('inspect', '-f', '{{.HostConfig.LogConfig.Type}} {{.HostConfig.Runtime}}', plain),
    'json-file runc',
  );
  const before = (await api('GET', '/containers/json?all=1')).body.length;
  const bad = await api('POST', '/containers/create', {
    Image: IMG,
    HostConfig: { LogConfig: { Type: 'asdf', Config: {} } },
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, 'error looking up logging plugin asdf: plugin "asdf" not found');
  const opt = await api('POST', '/containers/create', {
    Image: IMG,
    HostConfig: { LogConfig: { Type: 'json-file', Config: { nope: '1' } } },
  });
  assert.equal(opt.status, 400);
  assert.equal(opt.body.message, "unknown log opt 'nope' for json-file log driver");
  const rt = await api('POST', '/containers/create', { Image: IMG, HostConfig: { Runtime: 'kata' } });
  assert.equal(rt.status, 400);
  assert.equal(rt.body.message, 'Unknown runtime specified kata');
  const so = await dockerFail('create', '--storage-opt', 'size=120G', IMG, 'true');
  assert.notEqual(so.code, 0);
  assert.match(so.stderr, /--storage-opt is supported only for overlay over xfs with 'pquota' mount option/);
  assert.equal((await api('GET', '/containers/json?all=1')).body.length, before);
  await docker('rm', c.body.Id, plain);
});

test('GroupAdd: the process has the extra groups, by ID and by name; an unknown name fails the start', async () => {
  // Read from the log after the exit: this checks the groups, not attach timing.
  const g = await out('run', '-d', '--group-add', '1000', '--group-add', 'nogroup', IMG, 'id', '-G');
  await docker('wait', g);
  assert.equal(await out('logs', g), '0 1000 65534');
  await docker('rm', g);
  const bad = await dockerFail('run', '--rm', '--group-add', 'nosuchgroup', IMG, 'true');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /Unable to find group nosuchgroup/);
  // exec gets them too, as dockerd's getUser gives them to every process of the container.
  const id = await out('run', '-d', '--group-add', '1001', IMG, 'sleep', '300');
  assert.equal(await out('exec', id, 'id', '-G'), '0 1001');
  await docker('rm', '-f', id);
});

test('CpuRealtimePeriod/Runtime are kept and shown; a runtime above the period is refused', async () => {
  const c = await api('POST', '/containers/create', {
    Image: IMG,
    Cmd: ['true'],
    HostConfig: { CpuRealtimePeriod: 1000, CpuRealtimeRuntime: 500 },
  });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const i = (await api('GET', `/containers/${c.body.Id}/json`)).body;
  assert.equal(i.HostConfig.CpuRealtimePeriod, 1000);
  assert.equal(i.HostConfig.CpuRealtimeRuntime, 500);
  const bad = await api('POST', '/containers/create', {
    Image: IMG,
    HostConfig: { CpuRealtimePeriod: 500, CpuRealtimeRuntime: 1000 },
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, 'cpu-rt-runtime cannot be higher than cpu-rt-period');
  await docker('rm', c.body.Id);
});

test("a restart=always container between restarts cannot be removed without force (409, dockerd's words)", async () => {
  const id = await out('run', '-d', '--restart', 'always', '--network', 'none', IMG, 'sleep', '1');
  // Catch it after an exit, while the policy brings it back.
  await api('POST', `/containers/${id}/wait`);
  const r = await api('DELETE', `/containers/${id}`);
  assert.equal(r.status, 409, JSON.stringify(r.body));
  assert.match(
    r.body.message,
    new RegExp(
      `^You cannot remove a (running|restarting) container ${id}\\. Stop the container before attempting removal or force remove$`,
    ),
  );
  assert.equal((await api('DELETE', `/containers/${id}?force=1`)).status, 204);
});

test('legacy links: the alias in /etc/hosts, <ALIAS>_ variables, and DELETE ?link=true', async () => {
  await docker(
    'run',
    '-d',
    '--name',
    'lk1',
    '--hostname',
    'lk1host',
    '-e',
    'FOO=1',
    '--expose',
    '6379',
    IMG,
    'sleep',
    '300',
  );
  const ip1 = await out('inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'lk1');
  await docker('create', '--name', 'lk3', '--link', 'lk1:db', IMG, 'sh', '-c', 'env; cat /etc/hosts; sleep 300');
  assert.equal(await out('inspect', '-f', '{{json .HostConfig.Links}}', 'lk3'), '["/lk1:/lk3/db"]');
  await docker('start', 'lk3');
  await waitFor('lk3 output', async () => (await out('logs', 'lk3')).includes('localhost'));
  const logs = await out('logs', 'lk3');
  assert.match(logs, /^DB_NAME=\/lk3\/db$/m);
  assert.match(logs, /^DB_ENV_FOO=1$/m);
  assert.match(logs, new RegExp(`^DB_PORT=tcp://${ip1.replace(/\./g, '\\.')}:6379$`, 'm'));
  assert.match(logs, new RegExp(`^DB_PORT_6379_TCP_ADDR=${ip1.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(logs, new RegExp(`^${ip1.replace(/\./g, '\\.')}\\tdb lk1host lk1$`, 'm'));
  const unknown = await api('POST', '/containers/create', { Image: IMG, HostConfig: { Links: ['nosuch:x'] } });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.message, 'could not get container for nosuch: No such container: nosuch');
  // dockerd looks the name up first: an unknown one is a 404, a container's own name the plain-error 500.
  const absent = await api('DELETE', '/containers/lk-absent?link=true');
  assert.equal(absent.status, 404, JSON.stringify(absent.body));
  assert.equal(absent.body.message, 'No such container: lk-absent');
  const own = await api('DELETE', '/containers/lk1?link=true');
  assert.equal(own.status, 500, JSON.stringify(own.body));
  assert.equal(own.body.message, 'Conflict, cannot remove the default link name of the container');
  const rm = await api('DELETE', '/containers/lk3/db?link=true');
  assert.equal(rm.status, 204, JSON.stringify(rm.body));
  assert.equal(await out('inspect', '-f', '{{json .HostConfig.Links}}', 'lk3'), 'null');
  assert.equal(await out('inspect', '-f', '{{.State.Running}}', 'lk1'), 'true');
  assert.equal((await api('DELETE', '/containers/lk3/db?link=true')).status, 404);
  await docker('rm', '-f', 'lk1', 'lk3');
});

test('detach keys on attach: ctrl-p ctrl-q by default, detachKeys=ctrl-x when asked; the container runs on', async () => {
  const id = await out('run', '-d', '-it', IMG, 'cat');
  const a = await hijack(`/containers/${id}/attach?stream=1&stdin=1&stdout=1`);
  a.sock.write('hello\n');
  await waitFor('echo through the TTY', async () => a.received().toString().includes('hello'));
  a.sock.write(Buffer.from([0x10]));
  assert.equal(await closedWithin(a, 500), false, 'ctrl-p alone is held, not a detach');
  a.sock.write(Buffer.from([0x11]));
  assert.equal(await closedWithin(a, 10_000), true, 'ctrl-p ctrl-q detaches');
  assert.equal(await out('inspect', '-f', '{{.State.Running}}', id), 'true');
  const b = await hijack(`/containers/${id}/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x`);
  b.sock.write(Buffer.from([0x10, 0x11]));
  assert.equal(await closedWithin(b, 500), false, 'the default keys no longer detach');
  b.sock.write(Buffer.from([0x18]));
  assert.equal(await closedWithin(b, 10_000), true, 'ctrl-x detaches');
  assert.equal(await out('inspect', '-f', '{{.State.Running}}', id), 'true');
  const bad = await api('POST', `/containers/${id}/attach?stream=1&stdin=1&detachKeys=ctrl-1`);
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, 'Invalid detach keys (ctrl-1) provided');
  await docker('rm', '-f', id);
});

test('detach keys on exec with a TTY: the session ends, the process runs on', async () => {
  const id = await out('run', '-d', IMG, 'sleep', '300');
  const e = await api('POST', `/containers/${id}/exec`, {
    Cmd: ['cat'],
    Tty: true,
    AttachStdin: true,
    AttachStdout: true,
    DetachKeys: 'ctrl-x',
  });
  assert.equal(e.status, 201);
  const h = await hijack(`/exec/${e.body.Id}/start`, { Detach: false, Tty: true });
  h.sock.write('abc\n');
  await waitFor('echo through the exec TTY', async () => h.received().toString().includes('abc'));
  h.sock.write(Buffer.from([0x18]));
  assert.equal(await closedWithin(h, 10_000), true);
  const i = (await api('GET', `/exec/${e.body.Id}/json`)).body;
  assert.equal(i.Running, true, 'cat still runs after the detach');
  assert.equal(i.DetachKeys, 'ctrl-x');
  const bad = await api('POST', `/containers/${id}/exec`, { Cmd: ['cat'], DetachKeys: 'ctrl-1' });
  assert.equal(bad.status, 400);
  await docker('rm', '-f', id);
});

test('exec created with a TTY and started without one: TTY line endings, framed as stdout', async () => {
  const id = await out('run', '-d', IMG, 'sleep', '300');
  const e = await api('POST', `/containers/${id}/exec`, {
    Cmd: ['sh', '-c', 'echo hello out; echo hello err >&2'],
    Tty: true,
    AttachStdout: true,
    AttachStderr: true,
  });
  const h = await hijack(`/exec/${e.body.Id}/start`, { Detach: false, Tty: false });
  await h.closed;
  const f = frames(h.received());
  assert.ok(f.length > 0, `framed output: ${JSON.stringify(h.received().toString())}`);
  assert.ok(
    f.every(([s]) => s === 1),
    'a TTY has one stream: stdout',
  );
  assert.equal(f.map(([, t]) => t).join(''), 'hello out\r\nhello err\r\n');
  await docker('rm', '-f', id);
});

test("container prune reports the space of the removed containers' writable layers", async () => {
  const id = await out('create', IMG, 'sh', '-c', 'echo hello > /data.txt');
  await docker('start', '-a', id);
  const r = await api('POST', '/containers/prune');
  assert.equal(r.status, 200);
  assert.ok(r.body.ContainersDeleted.includes(id));
  assert.ok(r.body.SpaceReclaimed >= 6, JSON.stringify(r.body));
});

test("commit: the new image names the container's image as Parent (in inspect and images ls)", async () => {
  const base = await out('image', 'inspect', '-f', '{{.Id}}', IMG);
  const id = await out('create', IMG, 'touch', '/x');
  await docker('start', '-a', id);
  const img = JSON.parse((await api('POST', `/commit?container=${id}`)).raw.toString()).Id;
  assert.equal((await api('GET', `/images/${img}/json`)).body.Parent, base);
  const listed = (await api('GET', '/images/json')).body.find((x: Json) => x.Id === img);
  assert.equal(listed.ParentId, base);
  await docker('rm', id);
  await docker('rmi', img);
});

test('commit of a container that exits meanwhile still commits (the pause finds nothing to pause)', async () => {
  const id = await out('run', '-d', IMG, 'sh', '-c', 'touch /y');
  // Whatever the container's state when the commit pauses it, the answer is an image.
  const r = await api('POST', `/commit?container=${id}&pause=1`);
  assert.equal(r.status, 201, r.raw.toString());
  await docker('wait', id);
  await docker('rm', id);
  await docker('rmi', r.body.Id);
});

test("an rshared bind from a mount that is not shared is refused at start with dockerd's message; from a shared one it runs", async () => {
  const mnt = path.join(d.dir, 'prop');
  fs.mkdirSync(mnt, { recursive: true });
  await run('mount', ['-t', 'tmpfs', 'tmpfs', mnt]);
  try {
    await run('mount', ['--make-private', mnt]);
    fs.mkdirSync(path.join(mnt, 'src'));
    const bad = await dockerFail('run', '--rm', '-v', `${mnt}/src:/mnt:rshared`, IMG, 'true');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, new RegExp(`path ${mnt}/src is mounted on ${mnt} but it is not a shared mount`));
    const slave = await dockerFail('run', '--rm', '-v', `${mnt}/src:/mnt:rslave`, IMG, 'true');
    assert.match(
      slave.stderr,
      new RegExp(`path ${mnt}/src is mounted on ${mnt} but it is not a shared or slave mount`),
    );
    await run('mount', ['--make-shared', mnt]);
    assert.equal(
      await out('run', '--rm', '-v', `${mnt}/src:/mnt:rshared`, IMG, 'sh', '-c', 'touch /mnt/ok && echo done'),
      'done',
    );
    assert.ok(fs.existsSync(path.join(mnt, 'src/ok')));
  } finally {
    await run('umount', ['-l', mnt], { allowFail: true });
  }
});

test("/etc/hosts names the container's own address on the default bridge and a user bridge; hostname -i and getent agree", async () => {
  const check = async (args: string[]) => {
    const id = await out('run', '-d', ...args, IMG, 'sleep', '300');
    try {
      const i = JSON.parse(await out('inspect', id))[0];
      const ip = Object.values(i.NetworkSettings.Networks as Record<string, { IPAddress: string }>)[0].IPAddress;
      const hostname = i.Config.Hostname;
      assert.equal(await out('exec', id, 'cat', '/etc/hostname'), hostname);
      assert.equal(await out('exec', id, 'hostname'), hostname);
      assert.equal(await out('exec', id, 'hostname', '-i'), ip);
      assert.match(
        await out('exec', id, 'sh', '-c', 'getent hosts $(hostname)'),
        new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+.*\\b${hostname}\\b`),
      );
      return { id, ip, hostname };
    } finally {
      await docker('rm', '-f', id);
    }
  };
  await check([]);
  const net = `cc-net-${process.pid}`;
  await docker('network', 'create', net);
  try {
    await check(['--network', net]);
  } finally {
    await docker('network', 'rm', net);
  }
});

test('/etc/hosts has --add-host lines and the <hostname>.<domainname> name', async () => {
  const hosts = await out(
    'run',
    '--rm',
    '--hostname',
    'web',
    '--domainname',
    'example.org',
    '--add-host',
    'db.local:10.9.8.7',
    IMG,
    'cat',
    '/etc/hosts',
  );
  assert.match(hosts, /^10\.9\.8\.7\tdb\.local$/m);
  assert.match(hosts, /^172\.17\.\d+\.\d+\tweb\.example\.org web$/m);
  assert.ok(
    hosts.indexOf('db.local') < hosts.indexOf('web.example.org'),
    'extra lines before the own one, as libnetwork writes them',
  );
});

test('images/load of something that is not an archive: 200, the failure as errorDetail in the stream (docker-py raises ImageLoadError on it)', async () => {
  const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      {
        socketPath: d.socket,
        method: 'POST',
        path: '/v1.41/images/load',
        headers: { 'Content-Type': 'application/x-tar' },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end('abc');
  });
  assert.equal(r.status, 200, r.body);
  const last = JSON.parse(r.body.trim().split('\n').pop()!);
  assert.ok(last.errorDetail?.message, r.body);
  assert.equal(last.error, last.errorDetail.message);
});

test("Config.MacAddress is the container's MAC on the default bridge; a malformed one is refused", async () => {
  // The API, as docker-py sends it (this CLI sends it per network, which needs API 1.44).
  const c = await api('POST', '/containers/create', {
    Image: IMG,
    Cmd: ['sleep', '300'],
    MacAddress: '02:42:ac:11:00:0a',
  });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const id = c.body.Id;
  await docker('start', id);
  assert.equal(await out('inspect', '-f', '{{.NetworkSettings.MacAddress}}', id), '02:42:ac:11:00:0a');
  assert.equal(await out('exec', id, 'cat', '/sys/class/net/eth0/address'), '02:42:ac:11:00:0a');
  await docker('rm', '-f', id);
  const bad = await api('POST', '/containers/create', { Image: IMG, MacAddress: 'zz:42' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, 'zz:42 is not a valid mac address');
});

test('create refuses CpuShares and PidsLimit runc cannot take, before anything is stored', async () => {
  const names = async () => out('ps', '-a', '--format', '{{.Names}}');
  let r = await api('POST', '/containers/create?name=cc-shares', {
    Image: IMG,
    Cmd: ['true'],
    HostConfig: { CpuShares: -1 },
  });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.message, 'invalid CPU shares (-1): value must be a positive integer');
  r = await api('POST', '/containers/create?name=cc-pids', {
    Image: IMG,
    Cmd: ['true'],
    HostConfig: { PidsLimit: 5_000_000 },
  });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.message, 'invalid PidsLimit (5000000): the kernel allows at most 4194304');
  // The same values at the root of the body (API < 1.24 style) are read as dockerd reads them.
  r = await api('POST', '/containers/create?name=cc-shares', { Image: IMG, Cmd: ['true'], CpuShares: -5 });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.doesNotMatch(await names(), /cc-shares|cc-pids/);
  // Values runc takes still run.
  r = await api('POST', '/containers/create?name=cc-limits', {
    Image: IMG,
    Cmd: ['true'],
    HostConfig: { CpuShares: 512, PidsLimit: 100 },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  await docker('start', 'cc-limits');
  assert.equal(await out('wait', 'cc-limits'), '0');
  await docker('rm', 'cc-limits');
});

test("HostConfig fields at the root of a create body: used without an inner HostConfig, else only to fill five of its zero fields (dockerd's getHostConfig)", async () => {
  const host = async (name: string) => JSON.parse(await out('inspect', name))[0].HostConfig;
  const MiB = 1024 * 1024;
  // Root only: all of it is the HostConfig, whatever the key case; Cpuset fills CpusetCpus.
  let r = await api('POST', '/containers/create?name=cc-root', {
    Image: IMG,
    Cmd: ['true'],
    Memory: 64 * MiB,
    binds: ['/tmp:/hosttmp:ro'],
    Privileged: true,
    Cpuset: '0',
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  let h = await host('cc-root');
  assert.equal(h.Memory, 64 * MiB);
  assert.deepEqual(h.Binds, ['/tmp:/hosttmp:ro']);
  assert.equal(h.Privileged, true);
  assert.equal(h.CpusetCpus, '0');
  // Both: the inner one wins; Memory, MemorySwap, CpuShares, CpusetCpus and VolumeDriver fill its zero ones, the rest of the root is ignored.
  r = await api('POST', '/containers/create?name=cc-both', {
    Image: IMG,
    Cmd: ['true'],
    Memory: 32 * MiB,
    CpuShares: 300,
    Binds: ['/tmp:/ignored'],
    Privileged: true,
    HostConfig: { CpuShares: 700, RestartPolicy: { Name: 'no' } },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  h = await host('cc-both');
  assert.equal(h.Memory, 32 * MiB);
  assert.equal(h.CpuShares, 700);
  assert.equal(h.Binds, null);
  assert.notEqual(h.Privileged, true);
  // A root field of the wrong type is Go's type error.
  r = await api('POST', '/containers/create?name=cc-bad', { Image: IMG, Cmd: ['true'], Memory: 'lots' });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.match(
    r.body.message,
    /^invalid JSON: json: cannot unmarshal string into Go struct field .*Memory of type int64$/,
  );
  assert.doesNotMatch(await out('ps', '-a', '--format', '{{.Names}}'), /cc-bad/);
  await docker('rm', 'cc-root', 'cc-both');
});
