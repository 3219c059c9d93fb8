import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type TestDaemon } from '../helpers/daemon.js';
import { createNetns, deleteNetns } from '../helpers/netns.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushMicro } from '../helpers/micro.js';
import { waitFor } from '../helpers/process.js';

// Needs root. The end-to-end path: pull micro from a real registry, run it, read its page.
let ns: string;
let reg: TestRegistry | undefined;
let d: TestDaemon | undefined;
let ref: string;

before(async () => {
  ns = await createNetns('shtmic');
  reg = await startRegistry(ns);
  d = await startDaemon({ prefix: 'shtmic', ns });
  ref = await pushMicro(d, reg.address);
  await d.docker(['rmi', ref]);
});
after(async () => {
  await d?.destroy();
  await reg?.stop();
  await deleteNetns(ns);
});

test("micro pulled from the registry runs; its page, reached from the namespace, shows the container's address", async () => {
  const id = (await d!.docker(['run', '-d', '--name', 'micro1', ref])).stdout.trim().split('\n').pop()!;
  const ip = (
    await d!.docker(['inspect', '--format', '{{.NetworkSettings.Networks.bridge.IPAddress}}', id])
  ).stdout.trim();
  const page = await waitFor('micro to answer', async () => {
    const r = await d!.inNs('curl', ['-sf', `http://${ip}:8000/`], { allowFail: true });
    return r.code === 0 ? r.stdout : undefined;
  });
  assert.match(page, new RegExp(`<b id="ip">${ip.replace(/\./g, '\\.')}</b>`));
  assert.match(page, new RegExp(`<b id="hostname">${id.slice(0, 12)}</b>`));

  const ex = await d!.docker(['exec', 'micro1', 'hostname']);
  assert.equal(ex.stdout.trim(), id.slice(0, 12));
  const info = JSON.parse((await d!.docker(['inspect', 'micro1'])).stdout)[0];
  assert.equal(info.State.Running, true);
  assert.deepEqual(info.Config.Cmd, ['/bin/httpd', '-f', '-p', '8000', '-h', '/www']);
  // EXPOSE 8000 of the image shows, unpublished, as docker ps prints it.
  assert.equal(
    (await d!.docker(['ps', '--filter', 'name=micro1', '--format', '{{.Ports}}'])).stdout.trim(),
    '8000/tcp',
  );
  await d!.docker(['logs', 'micro1']);
  await d!.docker(['rm', '-f', 'micro1']);
  assert.equal((await d!.docker(['ps', '-aq'])).stdout.trim(), '');
});
