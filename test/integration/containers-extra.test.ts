import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { cliOf } from '../helpers/daemon-cli.js';
import { importBusybox } from '../helpers/busybox.js';
import { run } from '../../src/util/run.js';
import { waitFor } from '../helpers/process.js';

// Needs root: runc, conmon, overlayfs. docker stats/cp/diff/export/update/commit/system df with the real CLI.
let d: TestDaemon;
const IMG = 'shtxbusybox';

before(async () => {
  d = await startDaemon({ prefix: 'shtxtra' });
  await importBusybox(d.docker, d.dir, IMG);
});
after(async () => {
  await d?.destroy();
});

const { docker, dockerFail, out } = cliOf(() => d);

/** The first `n` documents of GET /containers/{id}/stats (streaming), then the connection is closed. */
// `any`: the StatsJSON documents are read field by field, as the CLI does.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;
function statsStream(id: string, n: number): Promise<Doc[]> {
  return new Promise((resolve, reject) => {
    const docs: Doc[] = [];
    const req = http.get({ socketPath: d.socket, path: `/containers/${id}/stats` }, (res) => {
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          docs.push(JSON.parse(buf.slice(0, nl)));
          buf = buf.slice(nl + 1);
          if (docs.length === n) {
            req.destroy();
            resolve(docs);
          }
        }
      });
    });
    req.on('error', (e) => {
      if (docs.length < n) reject(e);
    });
  });
}

test('docker stats --no-stream shows memory and CPU numbers of a running container', async () => {
  const id = await out('run', '-d', '--name', 'st1', '--memory', '64m', IMG, 'sh', '-c', 'while :; do :; done');
  try {
    const line = await out(
      'stats',
      '--no-stream',
      '--format',
      '{{.ID}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.PIDs}}',
      'st1',
    );
    const m = /^(\w+) ([\d.]+)% ([\d.]+\w+) \/ ([\d.]+\w+) ([\d.]+)% (\d+)$/.exec(line);
    assert.ok(m, `unexpected stats line: ${line}`);
    assert.equal(m[1], id.slice(0, 12));
    assert.ok(Number(m[2]) > 0, `a busy loop uses CPU: ${line}`);
    assert.equal(m[4], '64MiB');
    assert.ok(Number(m[6]) >= 1);
    const json = JSON.parse(await out('stats', '--no-stream', '--format', '{{json .}}', 'st1'));
    assert.match(json.NetIO, /B \/ /);
    // The API's stream: one JSON document a second, precpu_stats the sample before.
    const docs = await statsStream('st1', 2);
    assert.equal(docs.length, 2);
    assert.equal(docs[1].precpu_stats.cpu_usage.total_usage, docs[0].cpu_stats.cpu_usage.total_usage);
    assert.ok(docs[1].memory_stats.usage > 0);
    assert.equal(docs[1].memory_stats.limit, 64 * 1024 * 1024);
    assert.ok('eth0' in docs[1].networks);
  } finally {
    await docker('rm', '-f', 'st1');
  }
});

test('docker cp into a running container, then out of a stopped one', async () => {
  await docker('run', '-d', '--name', 'cp1', '-v', '/vol', IMG, 'sleep', '1000');
  try {
    const src = path.join(d.dir, 'cp-in.txt');
    fs.writeFileSync(src, 'hello from the host\n');
    await docker('cp', src, 'cp1:/tmp/in.txt');
    assert.equal(await out('exec', 'cp1', 'cat', '/tmp/in.txt'), 'hello from the host');
    const tree = path.join(d.dir, 'cpdir');
    fs.mkdirSync(path.join(tree, 'a'), { recursive: true });
    fs.writeFileSync(path.join(tree, 'a/b.txt'), 'deep\n');
    fs.symlinkSync('a/b.txt', path.join(tree, 'link'));
    await docker('cp', tree, 'cp1:/tmp/');
    assert.equal(await out('exec', 'cp1', 'cat', '/tmp/cpdir/a/b.txt', '/tmp/cpdir/link'), 'deep\ndeep');
    // A volume of the running container is reached too.
    await docker('cp', src, 'cp1:/vol/');
    assert.equal(await out('exec', 'cp1', 'cat', '/vol/cp-in.txt'), 'hello from the host');
    const notDir = await dockerFail('cp', src, 'cp1:/tmp/in.txt/x');
    assert.notEqual(notDir.code, 0);
    await docker('exec', 'cp1', 'sh', '-c', 'mkdir -p /data/sub && echo inside > /data/sub/f.txt');
    const miss = await dockerFail('cp', 'cp1:/nope', d.dir);
    assert.notEqual(miss.code, 0);
    assert.match(miss.stderr, /Could not find the file \/nope in container cp1/);
    await docker('stop', '-t', '0', 'cp1');
    const dst = path.join(d.dir, 'cp-out');
    await docker('cp', 'cp1:/data', dst);
    assert.equal(fs.readFileSync(path.join(dst, 'sub/f.txt'), 'utf8'), 'inside\n');
    // The stopped container's volume is bound in for the copy, as dockerd does.
    await docker('cp', 'cp1:/vol/cp-in.txt', path.join(d.dir, 'from-vol.txt'));
    assert.equal(fs.readFileSync(path.join(d.dir, 'from-vol.txt'), 'utf8'), 'hello from the host\n');
    await docker('cp', 'cp1:/tmp/in.txt', path.join(d.dir, 'back.txt'));
    assert.equal(fs.readFileSync(path.join(d.dir, 'back.txt'), 'utf8'), 'hello from the host\n');
    // The stopped container's rootfs was mounted only for the copy.
    const cid = await out('inspect', '--format', '{{.Id}}', 'cp1');
    // (The daemon unmounts once the tar is sent: the CLI may be done a moment before.)
    await waitFor(
      'the copy mount to go',
      async () => !fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(d.dataRoot, 'containers', cid)),
    );
  } finally {
    await docker('rm', '-f', '-v', 'cp1');
  }
});

test('docker diff lists added, changed and deleted files; export contains the added one', async () => {
  await docker('run', '--name', 'df1', IMG, 'sh', '-c', 'mkdir /newdir && echo x > /newdir/file && rm /bin/wc');
  try {
    const lines = (await out('diff', 'df1')).split('\n');
    assert.ok(lines.includes('A /newdir'), lines.join('|'));
    assert.ok(lines.includes('A /newdir/file'), lines.join('|'));
    assert.ok(lines.includes('C /bin'), lines.join('|'));
    assert.ok(lines.includes('D /bin/wc'), lines.join('|'));
    assert.ok(!lines.some((l) => l.includes('/etc/hosts')), lines.join('|'));
    const tarFile = path.join(d.dir, 'export.tar');
    await docker('export', '-o', tarFile, 'df1');
    const names = (await run('tar', ['-tf', tarFile])).stdout.split('\n');
    assert.ok(names.includes('newdir/file'), 'export has the added file');
    assert.ok(names.includes('bin/sh'), 'export has the image files');
    assert.ok(!names.includes('bin/wc'), 'export lacks the deleted file');
  } finally {
    await docker('rm', '-f', 'df1');
  }
});

test("docker update --memory changes HostConfig.Memory and the running container's cgroup", async () => {
  const id = await out('run', '-d', '--name', 'up1', IMG, 'sleep', '1000');
  try {
    const up = await docker('update', '--memory', '100m', '--restart', 'on-failure:3', 'up1');
    // shoal reports no swap limit support: dockerd's warning, and the limit goes without swap.
    assert.match(up.stdout, /Memory limited without swap/);
    const info = JSON.parse(await out('inspect', 'up1'))[0];
    assert.equal(info.HostConfig.Memory, 100 * 1024 * 1024);
    assert.deepEqual(info.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
    const limit = fs.readFileSync(`/sys/fs/cgroup/memory/shoal/${id}/memory.limit_in_bytes`, 'utf8').trim();
    assert.equal(Number(limit), 100 * 1024 * 1024);
    const bad = await dockerFail('update', '--memory', '1k', 'up1');
    assert.match(bad.stderr, /Minimum memory limit allowed is 6MB/);
    await docker('update', '--cpus', '0.5', 'up1');
    assert.equal(fs.readFileSync(`/sys/fs/cgroup/cpu/shoal/${id}/cpu.cfs_quota_us`, 'utf8').trim(), '50000');
    const conflicting = await dockerFail('update', '--cpu-quota', '20000', 'up1');
    assert.match(
      conflicting.stderr,
      /Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set/,
    );
  } finally {
    await docker('rm', '-f', 'up1');
  }
});

test('docker commit: the new image has the file, its config change and its history entry', async () => {
  await docker('run', '--name', 'cm1', IMG, 'sh', '-c', 'echo committed > /hello.txt && rm /bin/wc');
  try {
    const id = await out('commit', '-a', 'tester', '-m', 'add hello', '-c', 'ENV FOO=bar', 'cm1', 'shtxcommitted:v1');
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    assert.match(await out('images', '--format', '{{.Repository}}:{{.Tag}}'), /shtxcommitted:v1/);
    assert.equal(
      await out(
        'run',
        '--rm',
        'shtxcommitted:v1',
        'sh',
        '-c',
        'cat /hello.txt; echo $FOO; test -e /bin/wc || echo gone',
      ),
      'committed\nbar\ngone',
    );
    const hist = await out('history', '--format', '{{.Comment}}', 'shtxcommitted:v1');
    assert.equal(hist.split('\n')[0], 'add hello');
    const info = JSON.parse(await out('image', 'inspect', 'shtxcommitted:v1'))[0];
    assert.equal(info.Author, 'tester');
  } finally {
    await docker('rm', '-f', 'cm1');
    await dockerFail('rmi', 'shtxcommitted:v1');
  }
});

test('docker system df lists images and containers', async () => {
  await docker('create', '--name', 'sd1', IMG);
  try {
    const text = await out('system', 'df');
    assert.match(text, /^Images\s+\d+\s+\d+/m);
    assert.match(text, /^Containers\s+[1-9]\d*\s+\d+/m);
    assert.match(text, /^Local Volumes\s+\d+/m);
    assert.match(text, /^Build Cache\s+0\s+0/m);
    const v = await out('system', 'df', '-v');
    assert.match(v, new RegExp(`${IMG}\\s+latest`));
    assert.match(v, /sd1/);
  } finally {
    await docker('rm', '-f', 'sd1');
  }
});
