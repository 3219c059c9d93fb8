// The demo app micro (examples/micro): its page shows the hostname and IP it runs with.
// First its rootfs run directly (chroot in a netns of its own), then as a container through
// the docker CLI. Needs root.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../../src/util/run.js';
import { startDaemon, TEST_ROOT, type TestDaemon } from '../helpers/daemon.js';
import { createNetns, deleteNetns, inNetns, uniqueName } from '../helpers/netns.js';
import { startProcess, stopProcess, waitFor } from '../helpers/process.js';
import { buildMicroImage, buildMicroRootfs, MICRO_CMD, MICRO_PORT } from '../../examples/micro/build.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** GETs `url` from inside `ns` once it answers. */
async function curlInNs(ns: string, url: string): Promise<string> {
  return waitFor(
    `${url} in ${ns}`,
    async () => {
      const r = await inNetns(ns, 'curl', ['-sf', '--max-time', '2', url], { allowFail: true });
      return r.code === 0 ? r.stdout : undefined;
    },
    20_000,
    200,
  );
}

test("micro's rootfs serves its page from busybox httpd: hostname and IP (chroot in a netns)", async () => {
  const ns = await createNetns('shtmicro');
  cleanups.push(() => deleteNetns(ns));
  // An address to show: a veth pair inside the namespace.
  await run('ip', ['-n', ns, 'link', 'add', 'm0', 'type', 'veth', 'peer', 'name', 'm1']);
  await run('ip', ['-n', ns, 'addr', 'add', '10.231.7.9/24', 'dev', 'm0']);
  await run('ip', ['-n', ns, 'link', 'set', 'm0', 'up']);
  await run('ip', ['-n', ns, 'link', 'set', 'm1', 'up']);

  const dir = path.join(TEST_ROOT, uniqueName('shtmicro-root'));
  fs.mkdirSync(dir, { recursive: true });
  cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'rootfs.tar'), await buildMicroRootfs());
  const root = path.join(dir, 'root');
  fs.mkdirSync(root);
  await run('tar', ['-x', '-f', path.join(dir, 'rootfs.tar'), '-C', root, '--numeric-owner']);

  // Its own UTS namespace for a hostname of its own; the image's CMD, run by chroot.
  const cmd = `hostname micro-chroot && exec chroot ${root} ${MICRO_CMD.join(' ')}`;
  const child = startProcess(
    'ip',
    ['netns', 'exec', ns, 'unshare', '--uts', 'sh', '-c', cmd],
    path.join(dir, 'httpd.log'),
  );
  cleanups.unshift(() => stopProcess(child.pid)); // before the rootfs goes
  const page = await curlInNs(ns, `http://127.0.0.1:${MICRO_PORT}/`);
  assert.match(page, /<title>micro<\/title>/);
  assert.match(page, /Hostname: <b id="hostname">micro-chroot<\/b>/);
  assert.match(page, /IP: <b id="ip">10\.231\.7\.9<\/b>/);
  const headers = (await inNetns(ns, 'curl', ['-sI', `http://127.0.0.1:${MICRO_PORT}/`])).stdout;
  assert.match(headers, /^HTTP\/1\.[01] 200 OK/);
  assert.match(headers, /Content-Type: text\/html/i);
});

test('micro runs as a container: docker load, docker run -d, its page shows the container', async () => {
  const d: TestDaemon = await startDaemon({ prefix: 'shtmicrod' });
  cleanups.push(() => d.destroy());
  const micro = await buildMicroImage();
  await d.docker(['load'], { input: micro.tarball });
  const id = (await d.docker(['run', '-d', '--name', 'web', '--hostname', 'micro-web', 'micro:1.0.0'])).stdout.trim();
  assert.match(id, /^[a-f0-9]{64}$/);
  const ip = (await d.docker(['inspect', '--format', '{{.NetworkSettings.IPAddress}}', id])).stdout.trim();
  assert.match(ip, /^172\.17\.\d+\.\d+$/);
  const page = await curlInNs(d.ns, `http://${ip}:${MICRO_PORT}/`);
  assert.match(page, /Hostname: <b id="hostname">micro-web<\/b>/);
  assert.match(page, new RegExp(`IP: <b id="ip">${ip.replace(/\./g, '\\.')}</b>`));

  // The image is in use: docker rmi refuses with Docker's 409 message, and removes nothing.
  const rmi = await d.docker(['rmi', 'micro:1.0.0'], { allowFail: true });
  assert.notEqual(rmi.code, 0);
  assert.match(
    rmi.stderr,
    new RegExp(
      `conflict: unable to remove repository reference "micro:1\\.0\\.0" \\(must force\\) - container ${id.slice(0, 12)} is using its referenced image ${micro.id.slice(7, 19)}`,
    ),
  );
  const byId = await d.docker(['rmi', '-f', micro.id], { allowFail: true });
  assert.match(
    byId.stderr,
    new RegExp(
      `conflict: unable to delete ${micro.id.slice(7, 19)} \\(cannot be forced\\) - image is being used by running container ${id.slice(0, 12)}`,
    ),
  );
  assert.equal((await d.docker(['images', '-q', '--no-trunc', 'micro:1.0.0'])).stdout.trim(), micro.id);

  await d.docker(['rm', '-f', id]);
  const r = await d.docker(['rmi', 'micro:1.0.0']);
  assert.match(r.stdout, new RegExp(`Deleted: ${micro.id}`));
});
