import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  changesLayer,
  extractInto,
  resolveInRoot,
  statInRoot,
  upperChanges,
} from '../../../../src/engine/containers/files.js';
import { run } from '../../../../src/util/run.js';
import tar from 'tar-stream';
import { applyUpdate, runcUpdateArgs } from '../../../../src/engine/containers/update.js';

function tree(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-files-'));
  fs.mkdirSync(path.join(root, 'etc/sub'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/sub/f'), 'x');
  fs.symlinkSync('/etc/sub', path.join(root, 'abs'));
  fs.symlinkSync('../../..', path.join(root, 'etc/sub/up'));
  return root;
}

test('paths resolve inside the container root: absolute links and .. never leave it', () => {
  const root = tree();
  try {
    assert.equal(resolveInRoot(root, '/abs/f'), path.join(root, 'etc/sub/f'));
    assert.equal(resolveInRoot(root, '/etc/sub/up/etc'), path.join(root, 'etc'));
    assert.equal(resolveInRoot(root, '/../../etc'), path.join(root, 'etc'));
    // The last component stays a link unless asked.
    assert.equal(resolveInRoot(root, '/abs'), path.join(root, 'abs'));
    assert.equal(resolveInRoot(root, '/abs', true), path.join(root, 'etc/sub'));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test("path stat: Go file mode bits, link target inside the container, Docker's not-found message", () => {
  const root = tree();
  try {
    const dir = statInRoot(root, '/etc', 'c1').stat;
    assert.equal(dir.name, 'etc');
    assert.ok(dir.mode >= 2 ** 31, 'ModeDir');
    const link = statInRoot(root, '/abs', 'c1').stat;
    assert.equal(link.linkTarget, '/etc/sub');
    assert.equal(Math.floor(link.mode / 2 ** 27) % 2, 1, 'ModeSymlink');
    assert.throws(() => statInRoot(root, '/nope', 'c1'), {
      status: 404,
      message: 'Could not find the file /nope in container c1',
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('upper dir changes: added, changed with its directory, init files left out', async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-diff-'));
  try {
    const lower = path.join(base, 'lower');
    const upper = path.join(base, 'upper');
    fs.mkdirSync(path.join(lower, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(lower, 'etc/passwd'), 'a');
    fs.mkdirSync(path.join(upper, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(upper, 'etc/passwd'), 'b');
    fs.writeFileSync(path.join(upper, 'etc/hosts'), '');
    fs.mkdirSync(path.join(upper, 'new'));
    fs.writeFileSync(path.join(upper, 'new/f'), '');
    const got = (await upperChanges(upper, [lower])).map((c) => `${'CAD'[c.Kind]} ${c.Path}`);
    assert.deepEqual(got, ['C /etc', 'C /etc/passwd', 'A /new', 'A /new/f']);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test("docker update: dockerd's checks, no-swap warning and runc flags", () => {
  const { next, warnings } = applyUpdate(
    'abc',
    { Memory: 0 },
    { Memory: 100 * 2 ** 20, RestartPolicy: { Name: 'always' } },
  );
  assert.equal(next.Memory, 100 * 2 ** 20);
  assert.equal(next.MemorySwap, -1);
  assert.deepEqual(next.RestartPolicy, { Name: 'always', MaximumRetryCount: 0 });
  assert.match(warnings[0], /Memory limited without swap/);
  assert.throws(() => applyUpdate('abc', {}, { Memory: 1024 }), {
    status: 400,
    message: 'Minimum memory limit allowed is 6MB',
  });
  assert.throws(() => applyUpdate('abc', { NanoCpus: 1e9 }, { CpuQuota: 5000 }), {
    status: 400,
    message:
      'Cannot update container abc: Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set',
  });
  assert.throws(() => applyUpdate('abc', { AutoRemove: true }, { RestartPolicy: { Name: 'always' } }), {
    message: /AutoRemove is enabled/,
  });
  // Refused before runc, which would fail half-way and leave cgroup values behind.
  assert.throws(() => applyUpdate('abc', {}, { CpuShares: -2147483649 }), {
    status: 400,
    message: 'invalid CPU shares (-2147483649): value must be a positive integer',
  });
  assert.throws(() => applyUpdate('abc', {}, { PidsLimit: 4294967296 }), {
    status: 400,
    message: 'Cannot update container abc: invalid PidsLimit (4294967296): the kernel allows at most 4194304',
  });
  assert.equal(applyUpdate('abc', {}, { PidsLimit: 4194304 }).next.PidsLimit, 4194304);
  // Shares beyond the kernel's range go to runc clamped, as dockerd clamps them at create.
  assert.deepEqual(runcUpdateArgs({ CpuShares: 9007199254740994 }), ['--cpu-share', '262144']);
  assert.deepEqual(runcUpdateArgs({ CpuShares: 1 }), ['--cpu-share', '2']);
  assert.deepEqual(runcUpdateArgs({ NanoCpus: 5e8, PidsLimit: 0 }), [
    '--cpu-period',
    '100000',
    '--cpu-quota',
    '50000',
    '--pids-limit',
    '-1',
  ]);
});

test("the commit layer: overlayfs whiteouts and opaque dirs become Docker's .wh. files", async () => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-layer-'));
  try {
    const lower = path.join(base, 'lower');
    const upper = path.join(base, 'upper');
    fs.mkdirSync(path.join(lower, 'gone'), { recursive: true });
    fs.mkdirSync(path.join(lower, 'opq'), { recursive: true });
    fs.writeFileSync(path.join(lower, 'opq/old'), '');
    fs.mkdirSync(path.join(upper, 'opq'), { recursive: true });
    fs.writeFileSync(path.join(upper, 'opq/new'), 'n');
    await run('mknod', [path.join(upper, 'gone'), 'c', '0', '0']);
    await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(upper, 'opq')]);
    const names: string[] = [];
    const extract = tar.extract();
    extract.on('entry', (h, stream, next) => {
      names.push(`${h.type} ${h.name}`);
      stream.resume();
      stream.on('end', next);
    });
    const done = new Promise<void>((resolve) => extract.on('finish', () => resolve()));
    changesLayer(await upperChanges(upper, [lower])).pipe(extract as unknown as NodeJS.WritableStream);
    await done;
    assert.deepEqual(names, ['file .wh.gone', 'directory opq', 'file opq/.wh..wh..opq', 'file opq/new']);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test("docker cp into a container: members go through the container's symlinks, never out of its root", async () => {
  const root = tree();
  const outside = `shoal-cp-escape-${process.pid}`;
  try {
    fs.symlinkSync('/', path.join(root, 'etc/evil'));
    const pack = tar.pack();
    pack.entry({ name: `evil/tmp/${outside}`, mode: 0o600 }, 'p');
    pack.entry({ name: 'sub/new', mode: 0o640, uid: 1234 }, 'n');
    pack.finalize();
    await extractInto(root, '/etc', pack as unknown as import('node:stream').Readable, {
      copyUidGid: false,
      noOverwriteDirNonDir: true,
    });
    assert.equal(fs.existsSync(path.join('/tmp', outside)), false);
    assert.equal(fs.readFileSync(path.join(root, 'tmp', outside), 'utf8'), 'p');
    const st = fs.statSync(path.join(root, 'etc/sub/new'));
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(st.uid, 0);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(path.join('/tmp', outside), { force: true });
  }
});
