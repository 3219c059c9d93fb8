import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { cliOf } from '../helpers/daemon-cli.js';
import { busyboxRootfsTar } from '../helpers/busybox.js';
import { eventsBetween } from '../helpers/events-cli.js';
import { run } from '../../src/util/run.js';

// Needs root: runc, conmon, overlayfs, network namespaces. The real docker CLI against one shoald.
let d: TestDaemon;
const IMG = 'shtvolbox';
/** The same rootfs with /seed/hello.txt and `VOLUME /seed`: copy-up material. */
const SEEDED = 'shtvolseed';

before(async () => {
  d = await startDaemon({ prefix: 'shtvol' });
  const tar = await busyboxRootfsTar(d.dir);
  await d.docker(['import', '-c', 'CMD ["sh"]', '-', IMG], { input: fs.readFileSync(tar) });
  const extra = fs.mkdtempSync(path.join(d.dir, 'seed-'));
  fs.mkdirSync(path.join(extra, 'seed'), { mode: 0o750 });
  fs.writeFileSync(path.join(extra, 'seed/hello.txt'), 'from the image\n');
  await run('tar', ['-C', extra, '-rf', tar, './seed']);
  await d.docker(['import', '-c', 'CMD ["sh"]', '-c', 'VOLUME /seed', '-', SEEDED], { input: fs.readFileSync(tar) });
});
after(async () => {
  await d?.destroy();
});

const { docker, dockerFail, out } = cliOf(() => d);
const volumeNames = async (...filters: string[]) =>
  (await out('volume', 'ls', '-q', ...filters.flatMap((f) => ['--filter', f]))).split('\n').filter(Boolean).sort();

test("volume create / inspect / ls show Docker's shape; the data lives under the data root", async () => {
  assert.equal(await out('volume', 'create', '--label', 'tier=db', 'vdb'), 'vdb');
  const v = JSON.parse(await out('volume', 'inspect', 'vdb'))[0];
  assert.equal(v.Name, 'vdb');
  assert.equal(v.Driver, 'local');
  assert.equal(v.Scope, 'local');
  assert.equal(v.Mountpoint, path.join(d.dataRoot, 'volumes/vdb/_data'));
  assert.deepEqual(v.Labels, { tier: 'db' });
  assert.equal(v.Options, null);
  assert.match(v.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(fs.statSync(v.Mountpoint).isDirectory());

  const anon = await out('volume', 'create');
  assert.match(anon, /^[a-f0-9]{64}$/);
  assert.deepEqual(await volumeNames(), [anon, 'vdb'].sort());
  assert.deepEqual(await volumeNames('label=tier=db'), ['vdb']);
  assert.deepEqual(await volumeNames('name=vd'), ['vdb']);
  assert.deepEqual(await volumeNames('driver=local'), [anon, 'vdb'].sort());
  assert.match((await out('volume', 'ls')).split('\n')[0], /^DRIVER\s+VOLUME NAME$/);
  await docker('volume', 'rm', anon);
});

test("bad names, options and drivers get Docker's errors; missing volumes a 404", async () => {
  let r = await dockerFail('volume', 'create', 'a/b');
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /create a\/b: "a\/b" includes invalid characters for a local volume name, only "\[a-zA-Z0-9\]\[a-zA-Z0-9_.-\]" are allowed/,
  );
  r = await dockerFail('volume', 'create', '--opt', 'foo=bar', 'vopt');
  assert.match(r.stderr, /create vopt: invalid option: "foo"/);
  r = await dockerFail('volume', 'create', '--opt', 'type=tmpfs', 'vopt');
  assert.match(r.stderr, /missing required option: "device"/);
  r = await dockerFail('volume', 'create', '-d', 'nosuchdriver', 'vdrv');
  assert.match(r.stderr, /create vdrv: error looking up volume plugin nosuchdriver: plugin "nosuchdriver" not found/);
  r = await dockerFail('volume', 'inspect', 'nope');
  assert.match(r.stderr, /get nope: no such volume/);
  r = await dockerFail('volume', 'rm', 'nope');
  assert.match(r.stderr, /get nope: no such volume/);
  assert.equal((await dockerFail('volume', 'rm', '-f', 'nope')).code, 0);
  assert.deepEqual(
    (await volumeNames()).filter((n) => n.startsWith('v') && n !== 'vdb'),
    [],
  );
});

test('run -v NAME:/path keeps data across containers; inspect Mounts shows the volume', async () => {
  await docker('run', '--name', 'w1', '-v', 'vdata:/data', IMG, 'sh', '-c', 'echo persisted > /data/f');
  assert.ok((await volumeNames()).includes('vdata'), 'named volume created on first use');
  const m = JSON.parse(await out('inspect', 'w1'))[0].Mounts;
  assert.deepEqual(m, [
    {
      Type: 'volume',
      Name: 'vdata',
      Source: path.join(d.dataRoot, 'volumes/vdata/_data'),
      Destination: '/data',
      Driver: 'local',
      Mode: 'z',
      RW: true,
      Propagation: '',
    },
  ]);
  assert.equal(fs.readFileSync(path.join(d.dataRoot, 'volumes/vdata/_data/f'), 'utf8'), 'persisted\n');
  assert.equal(
    await out('run', '--rm', '--mount', 'type=volume,source=vdata,target=/x,readonly', IMG, 'cat', '/x/f'),
    'persisted',
  );
  const ro = await dockerFail('run', '--rm', '-v', 'vdata:/x:ro', IMG, 'touch', '/x/g');
  assert.notEqual(ro.code, 0);
  assert.match(ro.stderr, /Read-only file system/);
});

test('volume rm refuses a volume a container uses (409, with its ID); prune keeps it', async () => {
  const id = JSON.parse(await out('inspect', 'w1'))[0].Id;
  const r = await dockerFail('volume', 'rm', 'vdata');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`remove vdata: volume is in use - \\[${id}\\]`));
  assert.ok((await volumeNames('dangling=false')).includes('vdata'));
  assert.ok(!(await volumeNames('dangling=true')).includes('vdata'));
  await docker('volume', 'prune', '-f');
  assert.ok((await volumeNames()).includes('vdata'));
  assert.ok(!(await volumeNames()).includes('vdb'), 'API 1.41: unused named volumes are pruned too');
  await docker('rm', 'w1');
  assert.ok((await volumeNames('dangling=true')).includes('vdata'));
  await docker('volume', 'rm', 'vdata');
  assert.ok(!fs.existsSync(path.join(d.dataRoot, 'volumes/vdata')));
});

test("an empty new volume gets the image's content at the target (copy-up), unless nocopy", async () => {
  assert.equal(await out('run', '--rm', '-v', 'vseed:/seed', SEEDED, 'cat', '/seed/hello.txt'), 'from the image');
  const data = path.join(d.dataRoot, 'volumes/vseed/_data');
  assert.equal(fs.readFileSync(path.join(data, 'hello.txt'), 'utf8'), 'from the image\n');
  assert.equal(fs.statSync(data).mode & 0o777, 0o750, "the directory's mode comes along");
  // A volume that holds something is not filled again.
  fs.writeFileSync(path.join(data, 'hello.txt'), 'changed\n');
  assert.equal(await out('run', '--rm', '-v', 'vseed:/seed', SEEDED, 'cat', '/seed/hello.txt'), 'changed');
  const r = await dockerFail(
    'run',
    '--rm',
    '--mount',
    'type=volume,source=vnocopy,target=/seed,volume-nocopy',
    SEEDED,
    'ls',
    '/seed',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '');
  await docker('volume', 'rm', 'vseed', 'vnocopy');
});

test("-v /path and the image's VOLUME make anonymous volumes; rm -v removes them, named ones stay", async () => {
  await docker('create', '--name', 'anon1', '-v', '/scratch', '-v', 'vkeep:/keep', SEEDED, 'true');
  const mounts = JSON.parse(await out('inspect', 'anon1'))[0].Mounts as {
    Name: string;
    Destination: string;
    Type: string;
  }[];
  const anon = mounts.filter((m) => m.Destination !== '/keep');
  assert.deepEqual(anon.map((m) => m.Destination).sort(), ['/scratch', '/seed']);
  for (const m of anon) {
    assert.equal(m.Type, 'volume');
    assert.match(m.Name, /^[a-f0-9]{64}$/);
    assert.deepEqual(JSON.parse(await out('volume', 'inspect', m.Name))[0].Labels, {
      'com.docker.volume.anonymous': '',
    });
  }
  await docker('start', '-a', 'anon1');
  await docker('rm', '-v', 'anon1');
  const left = await volumeNames();
  for (const m of anon) assert.ok(!left.includes(m.Name), `anonymous volume ${m.Name} removed`);
  assert.ok(left.includes('vkeep'));
  await docker('volume', 'rm', 'vkeep');
});

test('volume prune (API 1.41) removes every unused volume, named or not, and reports them; label filters narrow it', async () => {
  await docker('volume', 'create', 'vp1');
  await docker('volume', 'create', '--label', 'tier=db', 'vlab');
  const anon = await out('volume', 'create');
  await docker('create', '--name', 'holder', '-v', 'vp2:/x', IMG, 'true');
  const byLabel = await out('volume', 'prune', '-f', '--filter', 'label=tier=db');
  assert.match(byLabel, /Deleted Volumes:\nvlab\n/);
  assert.deepEqual(await volumeNames(), [anon, 'vp1', 'vp2'].sort());
  const r = await out('volume', 'prune', '-f');
  assert.match(r, /^vp1$/m);
  assert.ok(r.includes(anon));
  assert.match(r, /Total reclaimed space:/);
  assert.deepEqual(await volumeNames(), ['vp2']);
  await docker('rm', 'holder');
  await docker('volume', 'rm', 'vp2');
});

test('--mount type=tmpfs and binds reach the container; bad mounts are refused at create', async () => {
  const host = fs.mkdtempSync(path.join(d.dir, 'bind-'));
  fs.writeFileSync(path.join(host, 'in'), 'host file\n');
  const mounts = await out(
    'run',
    '--rm',
    '--mount',
    'type=tmpfs,target=/scratch,tmpfs-size=1m',
    '--mount',
    `type=bind,source=${host},target=/h`,
    IMG,
    'sh',
    '-c',
    'cat /h/in; grep " /scratch " /proc/mounts',
  );
  assert.match(mounts, /^host file$/m);
  assert.match(mounts, /^tmpfs \/scratch tmpfs .*size=1024k/m);
  let r = await dockerFail('create', '--mount', 'type=bind,source=/no/such/dir,target=/x', IMG);
  assert.match(r.stderr, /invalid mount config for type "bind": bind source path does not exist: \/no\/such\/dir/);
  r = await dockerFail('create', '-v', 'a:b', IMG);
  assert.match(r.stderr, /invalid volume specification: 'a:b'/);
  r = await dockerFail('create', '-v', 'vdup:/x', '-v', '/tmp:/x', IMG);
  assert.match(r.stderr, /Duplicate mount point: \/x/);
  assert.ok(!(await volumeNames()).includes('vdup'), 'nothing half-made');
  r = await dockerFail('create', '-v', 'vgood:/a', '-v', 'bad/name:/b', IMG);
  assert.match(r.stderr, /create bad\/name: "bad\/name" includes invalid characters for a local volume name/);
  assert.ok(!(await volumeNames()).includes('vgood'), 'no volume made for a create that failed');
});

test('volumes and their data survive a daemon restart', async () => {
  await docker('run', '--name', 'keeper', '-v', 'vrestart:/d', IMG, 'sh', '-c', 'echo kept > /d/k');
  await d.stop();
  await d.start();
  assert.ok((await volumeNames()).includes('vrestart'));
  assert.equal(JSON.parse(await out('volume', 'inspect', 'vrestart'))[0].Name, 'vrestart');
  assert.equal(await out('run', '--rm', '-v', 'vrestart:/d', IMG, 'cat', '/d/k'), 'kept');
  const r = await dockerFail('volume', 'rm', 'vrestart');
  assert.match(r.stderr, /volume is in use/);
  await docker('rm', 'keeper');
  await docker('volume', 'rm', 'vrestart');
});

test("--volumes-from shares a container's volumes (ro on request); ps --filter volume; --tmpfs", async () => {
  await docker('create', '--name', 'src1', '-v', 'vshare:/shared', IMG, 'true');
  await docker('run', '--rm', '--volumes-from', 'src1', IMG, 'sh', '-c', 'echo via volumes-from > /shared/f');
  assert.equal(await out('run', '--rm', '-v', 'vshare:/s', IMG, 'cat', '/s/f'), 'via volumes-from');
  const ro = await dockerFail('run', '--rm', '--volumes-from', 'src1:ro', IMG, 'touch', '/shared/g');
  assert.match(ro.stderr, /Read-only file system/);
  assert.equal(await out('ps', '-a', '--filter', 'volume=vshare', '--format', '{{.Names}}'), 'src1');
  assert.equal(await out('ps', '-a', '--filter', 'volume=/shared', '--format', '{{.Names}}'), 'src1');
  assert.equal(await out('ps', '-a', '--filter', 'volume=nope', '--format', '{{.Names}}'), '');
  const t = await out('run', '--name', 'tmpfs1', '--tmpfs', '/tt:size=512k', IMG, 'grep', ' /tt ', '/proc/mounts');
  assert.match(t, /^tmpfs \/tt tmpfs .*size=512k/);
  assert.deepEqual(
    JSON.parse(await out('inspect', 'tmpfs1'))[0].Mounts,
    [],
    '--tmpfs is not a mount point in inspect, as in Docker',
  );
  await docker('rm', 'tmpfs1');
  await docker('rm', 'src1');
  await docker('volume', 'rm', 'vshare');
});

test('docker events reports volume create, mount, unmount and destroy', async () => {
  const since = String(Math.floor(Date.now() / 1000) - 1);
  await docker('volume', 'create', 'vev');
  await docker('run', '--rm', '-v', 'vev:/e', IMG, 'true');
  await docker('volume', 'rm', 'vev');
  const until = String(Math.floor(Date.now() / 1000) + 1);
  const ev = await out(
    ...eventsBetween(since, until, ['type=volume', 'volume=vev'], '{{.Type}} {{.Action}} {{.Actor.ID}}'),
  );
  assert.deepEqual(ev.split('\n'), [
    'volume create vev',
    'volume mount vev',
    'volume unmount vev',
    'volume destroy vev',
  ]);
});

test('a volume with mount options (type/device/o) is mounted while a container uses it, and prune leaves it', async () => {
  await docker('volume', 'create', '--opt', 'type=tmpfs', '--opt', 'device=tmpfs', '--opt', 'o=size=1m', 'vtmp');
  assert.deepEqual(JSON.parse(await out('volume', 'inspect', 'vtmp'))[0].Options, {
    type: 'tmpfs',
    device: 'tmpfs',
    o: 'size=1m',
  });
  const data = path.join(d.dataRoot, 'volumes/vtmp/_data');
  const mounted = () =>
    fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[4] === data);
  const r = await out('run', '--rm', '-v', 'vtmp:/v', IMG, 'grep', ' /v ', '/proc/mounts');
  assert.match(r, /^tmpfs \/v tmpfs .*size=1024k/);
  assert.equal(mounted(), false, 'unmounted once no container uses it');
  await docker('volume', 'prune', '-f');
  assert.ok((await volumeNames()).includes('vtmp'));
  await docker('volume', 'rm', 'vtmp');
  // The common bind-style local volume: type=none, o=bind, device=<host dir>.
  const host = fs.mkdtempSync(path.join(d.dir, 'vbind-'));
  await docker('volume', 'create', '--opt', 'type=none', '--opt', 'o=bind', '--opt', `device=${host}`, 'vbind');
  await docker('run', '--rm', '-v', 'vbind:/b', IMG, 'sh', '-c', 'echo through the volume > /b/f');
  assert.equal(fs.readFileSync(path.join(host, 'f'), 'utf8'), 'through the volume\n');
  await docker('volume', 'rm', 'vbind');
  assert.ok(fs.existsSync(path.join(host, 'f')), 'removing the volume leaves the bound directory alone');
});
