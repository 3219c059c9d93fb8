import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { importBusybox } from '../helpers/busybox.js';
import { waitFor } from '../helpers/process.js';
import { run } from '../../src/util/run.js';
import { WRITE_DEADLINE_MS } from '../../src/manager/store/store.js';

/**
 * A shoald whose data root is a small tmpfs that the test fills: writes answer Docker's 500
 * with "no space left on device", the daemon stays up (and restarts) with its disk full, no
 * half-written state file is left, and once space is freed writes work again. Needs root.
 */

let d: TestDaemon;
const IMG = 'diskfull-busybox:latest';
const fillers = () => [path.join(d.dataRoot, '.filler'), path.join(d.dataRoot, '.filler-top')];

before(async () => {
  // etcd preallocates 64 MB WAL segments: the filesystem must hold one before it is filled.
  d = await startDaemon({ prefix: 'shtdfull', dataRootTmpfs: '256m' });
  await importBusybox(d.docker, d.dir, IMG);
});
after(async () => {
  await d?.destroy();
});

async function fill(): Promise<void> {
  const st = fs.statfsSync(d.dataRoot);
  const [big, top] = fillers();
  // fallocate on tmpfs may refuse a size it reported free: it then allocates nothing, and dd
  // (which ends with ENOSPC by design) takes the space in large then small blocks.
  const fa = await run('fallocate', ['-l', String(st.bavail * st.bsize - (4 << 20)), big], { allowFail: true });
  if (fa.code !== 0) await run('dd', ['if=/dev/zero', `of=${big}`, 'bs=1M'], { allowFail: true });
  await run('dd', ['if=/dev/zero', `of=${top}`, 'bs=4k'], { allowFail: true });
  const after = fs.statfsSync(d.dataRoot);
  assert.equal(after.bavail, 0, 'the data root is full');
}

function free(): void {
  for (const f of fillers()) fs.rmSync(f, { force: true });
}

function api(method: string, p: string, body?: unknown): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        socketPath: d.socket,
        path: `/v1.41${p}`,
        method,
        headers: text ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) } : {},
      },
      (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, ms: Date.now() - t0 }));
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error(`${method} ${p} hung for 60 s`)));
    req.on('error', reject);
    req.end(text);
  });
}

function assertNoSpace(r: { status: number; body: string }, what: string): void {
  assert.equal(r.status, 500, `${what}: ${r.status} ${r.body}`);
  const message = JSON.parse(r.body).message as string;
  assert.match(message, /no space left on device/, what);
  // dockerd's words (Go's os.PathError: "write FILE: no space left on device"), not Node's "ENOSPC: …, write".
  assert.doesNotMatch(message, /ENOSPC/, `${what}: ${message}`);
}

const SWARM_LISTS = ['/services', '/tasks', '/nodes', '/secrets', '/configs'];

/**
 * Every list endpoint answers 200 with a JSON array (or the volumes object). With `managerMayBeDown`
 * (the disk still full: etcd may not start, and the manager retries with a backoff) the swarm lists
 * may answer Docker's 503 instead, still JSON: an answer, never a hang or a crash.
 */
async function listsAnswer(swarm: boolean, managerMayBeDown = false): Promise<void> {
  for (const p of ['/containers/json?all=1', '/images/json', '/networks', '/volumes', ...(swarm ? SWARM_LISTS : [])]) {
    const r = await api('GET', p);
    if (managerMayBeDown && SWARM_LISTS.includes(p) && r.status === 503) {
      assert.equal(typeof JSON.parse(r.body).message, 'string', `GET ${p}: ${r.body}`);
      continue;
    }
    assert.equal(r.status, 200, `GET ${p}: ${r.status} ${r.body}`);
    JSON.parse(r.body);
  }
}

/** Temp files of atomic writes that failed must not stay behind. */
function leftoverTemps(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && !['rootfs', 'diff', 'merged', 'work', 'member', 'blobs', 'layers'].includes(e.name))
        walk(p);
      else if (e.isFile() && /\.tmp(-[0-9a-f]+)?$/.test(e.name)) out.push(p);
    }
  };
  walk(d.dataRoot);
  return out;
}

test('with its disk full, volume, network and container writes answer 500 "no space left on device"; reads still work', async () => {
  await fill();
  try {
    const vol = await api('POST', '/volumes/create', { Name: 'dfvol' });
    assertNoSpace(vol, 'volume create');
    assert.match(JSON.parse(vol.body).message, /^write \/\S+\/volumes\/metadata\.json: no space left on device$/);
    // A bridge network's state lives under the exec root (/run), not the full data root: it is made.
    const net = await api('POST', '/networks/create', { Name: 'dfnet0', Driver: 'bridge' });
    assert.equal(net.status, 201, net.body);
    assert.equal((await api('DELETE', '/networks/dfnet0')).status, 204);
    assertNoSpace(
      await api('POST', '/containers/create?name=dfctr', { Image: IMG, Cmd: ['true'] }),
      'container create',
    );
    await listsAnswer(false);
    // Nothing half-made is listed.
    assert.equal((await api('GET', '/volumes/dfvol')).status, 404);
    assert.equal((await api('GET', '/containers/dfctr/json')).status, 404);
    assert.deepEqual(leftoverTemps(), []);
    // The CLI shows the same words.
    const cli = await d.docker(['volume', 'create', 'dfvol2'], { allowFail: true });
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /no space left on device/);
  } finally {
    free();
  }
});

test('with its disk full, volume rm removes the volume and answers 204; it stays removed after a restart', async () => {
  assert.equal((await api('POST', '/volumes/create', { Name: 'dfrm' })).status, 201);
  await fill();
  try {
    const rm = await api('DELETE', '/volumes/dfrm');
    assert.equal(rm.status, 204, `volume rm on a full disk: ${rm.status} ${rm.body}`);
    assert.equal((await api('GET', '/volumes/dfrm')).status, 404);
    // The metadata still names it (its write was refused), but without its directory it is gone.
    await d.stop();
    await d.start();
    assert.equal((await api('GET', '/volumes/dfrm')).status, 404);
    const ls = JSON.parse((await api('GET', '/volumes')).body) as { Volumes: { Name: string }[] | null };
    assert.ok(!(ls.Volumes ?? []).some((v) => v.Name === 'dfrm'), 'dfrm listed after a restart');
  } finally {
    free();
  }
});

test('a daemon restarted with its disk full starts, answers reads, and refuses writes cleanly', async () => {
  await fill();
  try {
    await d.stop();
    // Starting is right: dockerd too starts on a full disk (it only reads its state), and a
    // daemon that refused to start would leave its running containers unmanaged.
    await d.start();
    await listsAnswer(false);
    assertNoSpace(await api('POST', '/volumes/create', { Name: 'dfvol3' }), 'volume create after restart');
  } finally {
    free();
  }
});

test('after space is freed every write works again and the lists answer', async () => {
  assert.equal((await api('POST', '/volumes/create', { Name: 'dfvol' })).status, 201);
  assert.equal((await api('POST', '/networks/create', { Name: 'dfnet', Driver: 'bridge' })).status, 201);
  assert.equal((await api('POST', '/containers/create?name=dfctr', { Image: IMG, Cmd: ['true'] })).status, 201);
  await listsAnswer(false);
  // Restarting reads everything written back.
  await d.stop();
  await d.start();
  assert.equal((await api('GET', '/volumes/dfvol')).status, 200);
  assert.equal((await api('GET', '/networks/dfnet')).status, 200);
  assert.equal((await api('GET', '/containers/dfctr/json')).status, 200);
});

test('a one-node swarm with its disk full: service and network writes answer an error within the write deadline, never hang', async () => {
  const init = await d.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  assert.equal(init.code, 0, init.stderr);
  await fill();
  try {
    // Started with its disk full, as the chaos fault does: etcd's next WAL segment cannot be made.
    await d.stop();
    await d.start();
    for (const [p, body] of [
      [
        '/services/create',
        { Name: 'dfsvc', TaskTemplate: { ContainerSpec: { Image: IMG, Command: ['sleep', '1000'] } } },
      ],
      ['/networks/create', { Name: 'dfover', Driver: 'overlay' }],
    ] as const) {
      const r = await api('POST', p, body);
      console.log(`# full disk, swarm: POST ${p} -> ${r.status} in ${r.ms} ms: ${r.body.trim()}`);
      // The store answers within its write deadline (plus the request's own work).
      assert.ok(r.ms < WRITE_DEADLINE_MS + 5_000, `POST ${p} took ${r.ms} ms`);
      if (r.status >= 400) assert.equal(typeof JSON.parse(r.body).message, 'string', r.body);
    }
    await listsAnswer(true, true);
  } finally {
    free();
  }
  // Freed: the swarm takes writes again once the store is back (etcd restarts with a backoff of at most 10 s).
  const t0 = Date.now();
  await waitFor(
    'a service create to succeed after space is freed',
    async () =>
      (await d.docker(['service', 'create', '--name', 'dfsvc2', '--detach', IMG, 'sleep', '1000'], { allowFail: true }))
        .code === 0,
    60_000,
    1000,
  );
  console.log(`# swarm writes back ${Date.now() - t0} ms after space was freed`);
  await listsAnswer(true);
  await d.docker(['swarm', 'leave', '--force'], { allowFail: true });
});
