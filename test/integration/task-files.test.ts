import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TaskFileMounts } from '../../src/agent/executor/task-files-mount.js';
import { isMounted } from '../../src/engine/containers/rootfs.js';
import type { TaskFile } from '../../src/agent/executor/task-files.js';

// Needs root: mounts a tmpfs (the per-task home of secret and config files), then removes it.

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-taskfiles-'));
const mounts = new TaskFileMounts(root);

after(async () => {
  await mounts.unmount('t1').catch(() => undefined);
  fs.rmSync(root, { recursive: true, force: true });
});

const file = (i: number, data: Buffer, over: Partial<TaskFile> = {}): TaskFile => ({
  kind: 'secret',
  source: `s${i}`,
  target: `/run/secrets/s${i}`,
  data,
  uid: 0,
  gid: 0,
  mode: 0o444,
  ...over,
});

test("a task's files go on a tmpfs of their own, with owner and mode; binds read-only; gone on unmount", async () => {
  // Many small files and one large one: the tmpfs is sized in whole pages.
  const files = [
    ...Array.from({ length: 40 }, (_, i) => file(i, Buffer.from(`v${i}`))),
    file(40, Buffer.alloc(900 * 1024, 7), { kind: 'config', target: '/big', uid: 1000, gid: 100, mode: 0o440 }),
  ];
  const binds = await mounts.mount('t1', files);
  const dir = mounts.dir('t1');
  assert.ok(isMounted(dir));
  const fstype = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[4] === dir)!
    .split(' - ')[1]
    .split(' ')[0];
  assert.equal(fstype, 'tmpfs');
  assert.equal(binds.length, 41);
  assert.match(binds[0], new RegExp(`^${dir}/secret-0:/run/secrets/s0:ro$`));
  const big = binds[40].split(':')[0];
  assert.equal(binds[40], `${big}:/big:ro`);
  const st = fs.statSync(big);
  assert.deepEqual([st.mode & 0o777, st.uid, st.gid, st.size], [0o440, 1000, 100, 900 * 1024]);
  assert.equal(fs.readFileSync(binds[7].split(':')[0], 'utf8'), 'v7');
  await mounts.unmount('t1');
  assert.ok(!isMounted(dir));
  assert.ok(!fs.existsSync(dir));
});
