import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { cliOf } from '../helpers/daemon-cli.js';
import { importBusybox } from '../helpers/busybox.js';
import { waitFor } from '../helpers/process.js';
import { eventsBetween } from '../helpers/events-cli.js';
import { run } from '../../src/util/run.js';

// Needs root: runc, conmon, overlayfs, network namespaces.
let d: TestDaemon;
const IMG = 'shtbusybox';

before(async () => {
  d = await startDaemon({ prefix: 'shtctr' });
  await importBusybox(d.docker, d.dir, IMG);
});
after(async () => {
  await d?.destroy();
});

const { docker, dockerFail, out } = cliOf(() => d);

function api(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: d.socket, path, method, headers: body ? { 'Content-Type': 'application/json' } : {} },
      (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Mount points and runc containers under this daemon's roots. */
async function leftovers(): Promise<{ mounts: string[]; runc: string[] }> {
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m?.startsWith(d.dataRoot + '/containers/'));
  const r = await run('runc', ['--root', `${d.execRoot}/runc`, 'list', '-q'], { allowFail: true });
  return { mounts, runc: r.stdout.split('\n').filter(Boolean) };
}

test("docker run -d starts a container that ps lists and inspect describes in Docker's shape", async () => {
  const id = await out(
    'run',
    '-d',
    '--name',
    'web1',
    '--label',
    'com.docker.swarm.task.id=t1',
    '-e',
    'FOO=bar',
    IMG,
    'sh',
    '-c',
    'echo started; sleep 300',
  );
  assert.match(id, /^[a-f0-9]{64}$/);
  const ps = await out('ps', '--format', '{{.ID}} {{.Names}} {{.Image}} {{.Status}}');
  assert.match(ps, new RegExp(`^${id.slice(0, 12)} web1 ${IMG} Up `, 'm'));
  const info = JSON.parse(await out('inspect', 'web1'))[0];
  assert.equal(info.Id, id);
  assert.equal(info.Name, '/web1');
  assert.equal(info.State.Status, 'running');
  assert.equal(info.State.Running, true);
  assert.ok(info.State.Pid > 0);
  assert.equal(info.State.ExitCode, 0);
  assert.ok(Date.parse(info.State.StartedAt) > 0);
  assert.equal(info.Config.Labels['com.docker.swarm.task.id'], 't1');
  assert.ok(info.Config.Env.includes('FOO=bar'));
  assert.deepEqual(info.Config.Cmd, ['sh', '-c', 'echo started; sleep 300']);
  assert.equal(info.HostConfig.NetworkMode, 'default');
  assert.match(info.NetworkSettings.Networks.bridge.IPAddress, /^172\.17\.\d+\.\d+$/);
  // The 12-character prefix names the container too.
  assert.equal(await out('inspect', '--format', '{{.Name}}', id.slice(0, 12)), '/web1');
  await docker('rm', '-f', 'web1');
});

test("the container has its address on the default bridge and serves it to the daemon's namespace", async () => {
  await docker(
    'run',
    '-d',
    '--name',
    'httpd1',
    IMG,
    'sh',
    '-c',
    'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 8000 -h /www',
  );
  const ip = await out('inspect', '--format', '{{.NetworkSettings.Networks.bridge.IPAddress}}', 'httpd1');
  const id = await out('inspect', '--format', '{{.Id}}', 'httpd1');
  const page = await waitFor(
    'httpd to answer',
    async () => (await d.inNs('busybox', ['wget', '-qO-', `http://${ip}:8000/`], { allowFail: true })).stdout,
  );
  assert.equal(page.trim(), `hello from ${id.slice(0, 12)}`);
  const hosts = await out('exec', 'httpd1', 'cat', '/etc/hosts');
  assert.match(hosts, new RegExp(`^${ip.replace(/\./g, '\\.')}\\s+${id.slice(0, 12)}$`, 'm'));
  await docker('rm', '-f', 'httpd1');
});

test('foreground docker run prints stdout and stderr and returns the exit code', async () => {
  const r = await dockerFail('run', '--name', 'fg1', IMG, 'sh', '-c', 'echo to-out; echo to-err >&2; exit 7');
  assert.equal(r.code, 7);
  assert.equal(r.stdout, 'to-out\n');
  assert.equal(r.stderr, 'to-err\n');
  assert.equal(await out('inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', 'fg1'), 'exited 7');
  await docker('rm', 'fg1');
});

test('docker run --rm removes the container after it exits, and its output still arrives', async () => {
  const r = await docker('run', '--rm', '--name', 'rm1', IMG, 'echo', 'gone soon');
  assert.equal(r.stdout, 'gone soon\n');
  await waitFor('container removed', async () => (await dockerFail('inspect', 'rm1')).code !== 0);
  const r2 = await dockerFail('inspect', 'rm1');
  assert.match(r2.stderr, /No such object: rm1/);
});

test('docker run -i passes stdin through conmon to the container', async () => {
  const r = await d.docker(['run', '-i', '--rm', IMG, 'cat'], { input: 'piped line\n' });
  assert.equal(r.stdout, 'piped line\n');
});

test('logs: whole log, --tail, --timestamps, --since, and -f until the container exits', async () => {
  await docker(
    'run',
    '-d',
    '--name',
    'log1',
    IMG,
    'sh',
    '-c',
    'echo one; echo two >&2; sleep 1; echo three; sleep 1; echo four',
  );
  const all = await waitFor('four lines', async () => {
    const r = await docker('logs', 'log1');
    return r.stdout.includes('four') ? r : undefined;
  });
  assert.equal(all.stdout, 'one\nthree\nfour\n');
  assert.equal(all.stderr, 'two\n');
  assert.equal((await docker('logs', '--tail', '1', 'log1')).stdout, 'four\n');
  const ts = (await docker('logs', '--timestamps', 'log1')).stdout.split('\n')[0];
  assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z one$/);
  const future = (await docker('logs', '--since', String(Math.floor(Date.now() / 1000) + 3600), 'log1')).stdout;
  assert.equal(future, '');
  // The last line can be read before the process has exited: rm without -f needs it stopped.
  await docker('wait', 'log1');
  await docker('rm', 'log1');

  await docker('run', '-d', '--name', 'log2', IMG, 'sh', '-c', 'for i in 1 2 3; do echo tick$i; sleep 0.5; done');
  const f = await docker('logs', '-f', 'log2');
  assert.equal(f.stdout, 'tick1\ntick2\ntick3\n');
  await docker('wait', 'log2');
  await docker('rm', 'log2');
});

test('exec: output and exit code, stdin, a missing command, and exec -t', async () => {
  await docker('run', '-d', '--name', 'ex1', '-e', 'A=1', IMG, 'sleep', '300');
  const r = await dockerFail('exec', 'ex1', 'sh', '-c', 'echo "a=$A"; echo e >&2; exit 5');
  assert.equal(r.code, 5);
  assert.equal(r.stdout, 'a=1\n');
  assert.equal(r.stderr, 'e\n');
  const i = await d.docker(['exec', '-i', 'ex1', 'cat'], { input: 'via stdin\n' });
  assert.equal(i.stdout, 'via stdin\n');
  const missing = await dockerFail('exec', 'ex1', 'no-such-cmd');
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /executable file not found/);
  const t = await dockerFail('exec', '-t', 'ex1', 'sh', '-c', 'tty; exit 3');
  assert.equal(t.code, 3);
  assert.match(t.stdout, /^\/dev\/pts\/\d+\r\n$/);
  await docker('rm', '-f', 'ex1');
});

test('stop: StopSignal then exit; a container ignoring it is killed after the grace period', async () => {
  await docker(
    'run',
    '-d',
    '--name',
    'st1',
    IMG,
    'sh',
    '-c',
    'trap "echo got-term; exit 3" TERM; while true; do sleep 0.1; done',
  );
  await docker('stop', 'st1');
  assert.equal(
    await out('inspect', '--format', '{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}', 'st1'),
    'exited 3 false',
  );
  assert.equal((await docker('logs', 'st1')).stdout, 'got-term\n');
  const fin = await out('inspect', '--format', '{{.State.FinishedAt}}', 'st1');
  assert.ok(Date.parse(fin) > 0);

  await docker(
    'run',
    '-d',
    '--name',
    'st2',
    '--stop-signal',
    'USR1',
    IMG,
    'sh',
    '-c',
    'trap "exit 4" USR1; while true; do sleep 0.1; done',
  );
  await docker('stop', 'st2');
  assert.equal(await out('inspect', '--format', '{{.State.ExitCode}}', 'st2'), '4');

  // sh as PID 1 ignores SIGTERM: SIGKILL after -t seconds.
  await docker('run', '-d', '--name', 'st3', IMG, 'sleep', '300');
  await docker('stop', '-t', '1', 'st3');
  assert.equal(await out('inspect', '--format', '{{.State.ExitCode}}', 'st3'), '137');
  await docker('rm', 'st1', 'st2', 'st3');
});

test('kill -s, restart, wait and attach', async () => {
  await docker('run', '-d', '--name', 'k1', IMG, 'sh', '-c', 'trap "exit 42" HUP; while true; do sleep 0.1; done');
  await docker('kill', '-s', 'HUP', 'k1');
  assert.equal(await out('wait', 'k1'), '42');
  const notRunning = await dockerFail('kill', 'k1');
  assert.notEqual(notRunning.code, 0);
  assert.match(notRunning.stderr, /is not running/);
  await docker('restart', 'k1');
  assert.equal(await out('inspect', '--format', '{{.State.Status}} {{.RestartCount}}', 'k1'), 'running 1');
  await docker('kill', 'k1');
  assert.equal(await out('inspect', '--format', '{{.State.ExitCode}}', 'k1'), '137');
  await docker('rm', 'k1');

  await docker('run', '-d', '--name', 'at1', IMG, 'sh', '-c', 'sleep 1; echo attached-line; exit 6');
  const a = await dockerFail('attach', 'at1');
  assert.equal(a.stdout, 'attached-line\n');
  assert.equal(a.code, 6);
  await docker('rm', 'at1');
});

test('create then start; rm needs -f for a running container; rm -f removes everything', async () => {
  const id = await out('create', '--name', 'cr1', IMG, 'sleep', '300');
  assert.equal(await out('inspect', '--format', '{{.State.Status}}', 'cr1'), 'created');
  assert.match(await out('ps', '-a', '--filter', 'status=created', '--format', '{{.Names}}'), /^cr1$/m);
  await docker('start', 'cr1');
  assert.equal(await out('inspect', '--format', '{{.State.Status}}', id), 'running');
  const r = await dockerFail('rm', 'cr1');
  assert.notEqual(r.code, 0);
  // dockerd 20.10's wording (daemon/delete.go).
  assert.match(
    r.stderr,
    new RegExp(
      `You cannot remove a running container ${id}\\. Stop the container before attempting removal or force remove`,
    ),
  );
  await docker('rm', '-fv', 'cr1');
  const gone = await dockerFail('inspect', id);
  assert.notEqual(gone.code, 0);
  assert.equal(fs.existsSync(`${d.dataRoot}/containers/${id}`), false);
  const l = await leftovers();
  assert.ok(!l.runc.includes(id));
  assert.ok(!l.mounts.some((m) => m.includes(id)));
});

test('ps: running only by default, -a, -q, and label, name and status filters', async () => {
  await docker('run', '-d', '--name', 'pa', '--label', 'com.docker.swarm.service.id=s1', IMG, 'sleep', '300');
  await docker('run', '-d', '--name', 'pb', '--label', 'com.docker.swarm.service.id=s2', IMG, 'sleep', '300');
  await docker('run', '--name', 'pc', '--label', 'com.docker.swarm.service.id=s1', IMG, 'true');
  const names = async (...a: string[]) =>
    (await out('ps', ...a, '--format', '{{.Names}}')).split('\n').filter(Boolean).sort();
  assert.deepEqual(await names('--filter', 'name=^p[abc]$'), ['pa', 'pb']);
  assert.deepEqual(await names('-a', '--filter', 'name=^p[abc]$'), ['pa', 'pb', 'pc']);
  assert.deepEqual(await names('-a', '--filter', 'label=com.docker.swarm.service.id=s1'), ['pa', 'pc']);
  assert.deepEqual(await names('--filter', 'label=com.docker.swarm.service.id=s1'), ['pa']);
  assert.deepEqual(await names('--filter', 'status=exited', '--filter', 'name=^p'), ['pc']);
  const q = (await out('ps', '-q', '--filter', 'name=^pa$')).split('\n');
  assert.equal(q.length, 1);
  assert.match(q[0], /^[a-f0-9]{12}$/);
  const bad = await api('GET', `/v1.41/containers/json?filters=${encodeURIComponent('{"bogus":["x"]}')}`);
  assert.equal(bad.status, 400);
  await docker('rm', '-f', 'pa', 'pb', 'pc');
});

test('bad input: unknown image 404, unknown container 404, name conflict 409, malformed JSON 400', async () => {
  const img = await api('POST', '/v1.41/containers/create', JSON.stringify({ Image: 'nosuchimage:latest' }));
  assert.equal(img.status, 404);
  assert.equal(JSON.parse(img.body).message, 'No such image: nosuchimage:latest');
  const ctr = await api('GET', '/v1.41/containers/nosuchcontainer/json');
  assert.equal(ctr.status, 404);
  assert.equal(JSON.parse(ctr.body).message, 'No such container: nosuchcontainer');
  const stop = await dockerFail('stop', 'nosuchcontainer');
  assert.match(stop.stderr, /No such container: nosuchcontainer/);
  const json = await api('POST', '/v1.41/containers/create', '{"Image": ');
  assert.equal(json.status, 400);
  const id = await out('create', '--name', 'dup', IMG, 'true');
  const dup = await dockerFail('create', '--name', 'dup', IMG, 'true');
  assert.notEqual(dup.code, 0);
  assert.ok(
    dup.stderr.includes(
      `Conflict. The container name "/dup" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`,
    ),
  );
  const dupApi = await api('POST', '/v1.41/containers/create?name=dup', JSON.stringify({ Image: IMG }));
  assert.equal(dupApi.status, 409);
  await docker('rm', 'dup');
});

test('a failed start leaves no mount, runc state or endpoint behind and reports exit code 127', async () => {
  const before = await leftovers();
  const r = await dockerFail('run', '-d', '--name', 'bad1', IMG, 'no-such-binary');
  assert.equal(r.code, 127);
  assert.match(r.stderr, /executable file not found/);
  const info = JSON.parse(await out('inspect', 'bad1'))[0];
  assert.equal(info.State.Status, 'created');
  assert.equal(info.State.ExitCode, 127);
  assert.equal(info.NetworkSettings.Networks.bridge.IPAddress, '');
  const after = await leftovers();
  assert.deepEqual(after, before);
  await docker('rm', 'bad1');
});

test('an image used by a container cannot be removed', async () => {
  await docker('create', '--name', 'user1', IMG, 'true');
  const r = await dockerFail('rmi', IMG);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /conflict: unable to remove repository reference/);
  await docker('rm', 'user1');
});

test("--memory, --cpus and --pids-limit become the container's cgroup limits", async () => {
  const id = await out('run', '-d', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '50', IMG, 'sleep', '300');
  const cg = (ctrl: string, file: string) =>
    fs.readFileSync(`/sys/fs/cgroup/${ctrl}/shoal/${id}/${file}`, 'utf8').trim();
  assert.equal(cg('memory', 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
  assert.equal(cg('cpu', 'cpu.cfs_quota_us'), '50000');
  assert.equal(cg('cpu', 'cpu.cfs_period_us'), '100000');
  assert.equal(cg('pids', 'pids.max'), '50');
  await docker('rm', '-f', id);
  assert.equal(fs.existsSync(`/sys/fs/cgroup/memory/shoal/${id}`), false);
});

test('--mount bind and tmpfs, and -v binds', async () => {
  const host = fs.mkdtempSync(`${d.dir}/bind-`);
  fs.writeFileSync(`${host}/f`, 'from host\n');
  const r = await docker(
    'run',
    '--rm',
    '--mount',
    `type=bind,source=${host},target=/h,readonly`,
    '--mount',
    'type=tmpfs,target=/scratch',
    '-v',
    `${host}:/v`,
    IMG,
    'sh',
    '-c',
    'cat /h/f; touch /h/x 2>/dev/null || echo ro; echo w > /scratch/a && cat /scratch/a; echo v > /v/out',
  );
  assert.equal(r.stdout, 'from host\nro\nw\n');
  assert.equal(fs.readFileSync(`${host}/out`, 'utf8'), 'v\n');
  const bad = await dockerFail('create', '--mount', `type=bind,source=${host}/missing,target=/m`, IMG, 'true');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /bind source path does not exist/);
});

test('restart policies: on-failure stops after its maximum, docker stop ends always', async () => {
  await docker('run', '-d', '--name', 'rp1', '--restart', 'on-failure:2', IMG, 'sh', '-c', 'exit 1');
  await waitFor(
    'two restarts',
    async () => (await out('inspect', '--format', '{{.RestartCount}} {{.State.Status}}', 'rp1')) === '2 exited',
    20_000,
  );
  await docker('run', '-d', '--name', 'rp2', '--restart', 'always', IMG, 'sh', '-c', 'sleep 0.3');
  await waitFor(
    'a restart',
    async () => Number(await out('inspect', '--format', '{{.RestartCount}}', 'rp2')) >= 1,
    20_000,
  );
  await docker('stop', 'rp2');
  const count = await out('inspect', '--format', '{{.RestartCount}}', 'rp2');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await out('inspect', '--format', '{{.RestartCount}} {{.State.Status}}', 'rp2'), `${count} exited`);
  await docker('rm', '-f', 'rp1', 'rp2');
});

test('pause and unpause, rename, top', async () => {
  await docker('run', '-d', '--name', 'pz1', IMG, 'sh', '-c', 'while true; do echo x >/dev/null; sleep 0.1; done');
  await docker('pause', 'pz1');
  assert.equal(
    await out('inspect', '--format', '{{.State.Status}} {{.State.Paused}} {{.State.Running}}', 'pz1'),
    'paused true true',
  );
  assert.match(await out('ps', '--filter', 'name=^pz1$', '--format', '{{.Status}}'), /^Up .* \(Paused\)$/);
  const ex = await dockerFail('exec', 'pz1', 'true');
  assert.match(ex.stderr, /is paused, unpause the container before exec/);
  await docker('unpause', 'pz1');
  assert.equal(await out('inspect', '--format', '{{.State.Status}}', 'pz1'), 'running');
  await docker('rename', 'pz1', 'pz2');
  assert.equal(await out('inspect', '--format', '{{.Name}}', 'pz2'), '/pz2');
  assert.notEqual((await dockerFail('inspect', 'pz1')).code, 0);
  const top = await out('top', 'pz2');
  assert.match(top, /^UID\s+PID\s+PPID/);
  assert.match(top, /sh -c while true/);
  await docker('pause', 'pz2');
  await docker('rm', '-f', 'pz2');
});

test("-u: users are looked up in the container's /etc/passwd at start; -w sets the working directory", async () => {
  assert.equal(
    (await docker('run', '--rm', '-u', 'nobody', '-w', '/tmp', IMG, 'sh', '-c', 'echo $(id -u):$(id -g) $(pwd)'))
      .stdout,
    '65534:65534 /tmp\n',
  );
  assert.equal(
    (await docker('run', '--rm', '-u', '123:45', IMG, 'sh', '-c', 'echo $(id -u):$(id -g)')).stdout,
    '123:45\n',
  );
  const r = await dockerFail('run', '--rm', '-u', 'nosuchuser', IMG, 'true');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /unable to find user nosuchuser: no matching entries in passwd file/);
});

test("-p publishes a port on the daemon's addresses (also loopback); -p without host port picks one; conflicts are refused", async () => {
  const serve = [
    'sh',
    '-c',
    'mkdir -p /www && echo "page of $(hostname)" > /www/index.html && exec httpd -f -p 8000 -h /www',
  ];
  const id = await out('run', '-d', '--name', 'pub1', '-p', '18080:8000', IMG, ...serve);
  for (const addr of ['172.17.0.1', '127.0.0.1']) {
    const page = await waitFor(
      `page via ${addr}`,
      async () => (await d.inNs('curl', ['-sf', `http://${addr}:18080/`], { allowFail: true })).stdout,
    );
    assert.equal(page, `page of ${id.slice(0, 12)}\n`);
  }
  assert.equal(await out('port', 'pub1', '8000/tcp'), '0.0.0.0:18080');
  assert.match(await out('ps', '--filter', 'name=pub1', '--format', '{{.Ports}}'), /^0\.0\.0\.0:18080->8000\/tcp$/);

  const clash = await dockerFail('run', '-d', '--name', 'pub2', '-p', '18080:8000', IMG, ...serve);
  assert.notEqual(clash.code, 0);
  assert.match(clash.stderr, /Bind for 0\.0\.0\.0:18080 failed: port is already allocated/);

  await docker('run', '-d', '--name', 'pub3', '-p', '8000', IMG, ...serve);
  const port = (await out('port', 'pub3', '8000/tcp')).split(':')[1];
  assert.ok(Number(port) >= 32768);
  await waitFor(
    'random port page',
    async () => (await d.inNs('curl', ['-sf', `http://172.17.0.1:${port}/`], { allowFail: true })).code === 0,
  );

  await docker('rm', '-f', 'pub1', 'pub2', 'pub3');
  const rules = (await d.inNs('nft', ['list', 'chain', 'ip', 'shoal', 'ports_prerouting'])).stdout;
  assert.doesNotMatch(rules, /dnat/);
});

test('docker events: the container lifecycle, filtered, as history and live', async () => {
  const since = String(Math.floor(Date.now() / 1000) - 1);
  await docker(
    'run',
    '-d',
    '--name',
    'ev1',
    '--label',
    'evlabel=yes',
    IMG,
    'sh',
    '-c',
    'trap "exit 0" TERM; while true; do sleep 0.1; done',
  );
  await docker('exec', 'ev1', 'true');
  await docker('stop', 'ev1');
  await docker('rm', 'ev1');
  const until = String(Math.ceil(Date.now() / 1000) + 1);
  const r = await docker(
    ...eventsBetween(
      since,
      until,
      ['container=ev1', 'label=evlabel=yes'],
      '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}',
    ),
  );
  const actions = r.stdout.trim().split('\n');
  assert.deepEqual(
    actions.filter((a) => !a.includes('exec_')),
    [
      'container create ev1',
      'container start ev1',
      'container kill ev1',
      'container die ev1',
      'container stop ev1',
      'container destroy ev1',
    ],
  );
  assert.ok(actions.includes('container exec_die ev1'));
});

test('health checks: healthy after a passing probe, unhealthy after Retries failures; ps shows it and filters on it', async () => {
  await docker(
    'run',
    '-d',
    '--name',
    'hc1',
    '--health-cmd',
    'test -f /tmp/ok',
    '--health-interval',
    '300ms',
    '--health-retries',
    '2',
    IMG,
    'sh',
    '-c',
    'touch /tmp/ok; sleep 300',
  );
  await waitFor(
    'healthy',
    async () => (await out('inspect', '--format', '{{.State.Health.Status}}', 'hc1')) === 'healthy',
    20_000,
  );
  assert.match(await out('ps', '--filter', 'name=hc1', '--format', '{{.Status}}'), /^Up .* \(healthy\)$/);
  assert.equal(await out('ps', '--filter', 'health=healthy', '--format', '{{.Names}}'), 'hc1');
  await docker('exec', 'hc1', 'rm', '/tmp/ok');
  await waitFor(
    'unhealthy',
    async () => (await out('inspect', '--format', '{{.State.Health.Status}}', 'hc1')) === 'unhealthy',
    20_000,
  );
  const h = JSON.parse(await out('inspect', '--format', '{{json .State.Health}}', 'hc1'));
  assert.ok(h.FailingStreak >= 2);
  assert.notEqual(h.Log.at(-1).ExitCode, 0);
  await docker('rm', '-f', 'hc1');
});
