import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  containerMountPoints,
  mountPointView,
  ociMounts,
  parseBind,
  parseMount,
  validMountMode,
} from '../../../../src/engine/volumes/mounts.js';
import { taskContainerConfig, taskMount, validateTaskMounts } from '../../../../src/agent/executor/executor.js';
import { validateSpec } from '../../../../src/manager/orchestrator/service-spec.js';
import type { Mount, Task } from '../../../../src/cluster/types.js';

const exists = () => true;
const missing = () => false;

test('-v forms: host bind, named volume (mode z), anonymous volume, modes', () => {
  assert.deepEqual(parseBind('/srv:/data:ro'), {
    Type: 'bind',
    Source: '/srv',
    Destination: '/data',
    RW: false,
    Mode: 'ro',
    Propagation: 'rprivate',
    CreateSource: true,
  });
  const named = parseBind('cache:/var/cache');
  assert.equal(named.Type, 'volume');
  assert.equal(named.Name, 'cache');
  assert.equal(named.Mode, 'z');
  assert.equal(named.CopyData, true);
  assert.equal(named.Driver, 'local');
  const anon = parseBind('/scratch');
  assert.equal(anon.Type, 'volume');
  assert.equal(anon.Name, undefined);
  assert.equal(anon.Destination, '/scratch');
  assert.equal(parseBind('v:/x:nocopy').CopyData, false);
  assert.equal(parseBind('v:/x', 'other').Driver, 'other');
  assert.equal(parseBind('/a:/b:rshared').Propagation, 'rshared');
});

test("-v errors are Docker's", () => {
  assert.throws(
    () => parseBind('a:b'),
    /^Error: invalid volume specification: 'a:b': invalid mount config for type "volume": invalid mount path: 'b' mount path must be absolute$/,
  );
  assert.throws(() => parseBind('/x:ro'), /invalid volume specification: '\/x:ro'/);
  assert.throws(() => parseBind('/a:/b:bogus'), /invalid mode: bogus/);
  assert.throws(() => parseBind('/a:/b:ro,rw'), /invalid mode: ro,rw/);
  assert.throws(() => parseBind(':/b'), /invalid volume specification/);
  assert.throws(() => parseBind('/a:/'), /destination can't be '\/'/);
  assert.ok(validMountMode('ro,z,rslave,nocopy'));
  assert.ok(!validMountMode('z,Z'));
});

test('--mount checks: target, source, type-only options, unknown types', () => {
  assert.throws(
    () => parseMount({ Type: 'bind', Source: '/a' }, exists),
    /invalid mount config for type "bind": field Target must not be empty/,
  );
  assert.throws(() => parseMount({ Type: 'bind', Target: '/x' }, exists), /field Source must not be empty/);
  assert.throws(
    () => parseMount({ Type: 'bind', Source: 'rel', Target: '/x' }, exists),
    /invalid mount path: 'rel' mount path must be absolute/,
  );
  assert.throws(
    () => parseMount({ Type: 'bind', Source: '/nope', Target: '/x' }, missing),
    /bind source path does not exist: \/nope/,
  );
  assert.ok(
    parseMount({ Type: 'bind', Source: '/nope', Target: '/x', BindOptions: { CreateMountpoint: true } }, missing),
  );
  assert.throws(
    () => parseMount({ Type: 'tmpfs', Source: 'x', Target: '/x' }, exists),
    /invalid mount config for type "tmpfs": field Source must not be specified/,
  );
  assert.throws(
    () => parseMount({ Type: 'bind', Source: '/a', Target: '/x', TmpfsOptions: {} }, exists),
    /field TmpfsOptions must not be specified/,
  );
  assert.throws(
    () => parseMount({ Type: 'npipe', Source: 'p', Target: '/x' }, exists),
    /invalid mount config for type "npipe": mount type unknown/,
  );
  assert.throws(() => parseMount({ Type: 'volume', Target: 'rel' }, exists), /mount path must be absolute/);
});

test('--mount volume and tmpfs options become mount points', () => {
  const v = parseMount(
    {
      Type: 'volume',
      Source: 'db',
      Target: '/var/lib/db/',
      ReadOnly: true,
      VolumeOptions: {
        NoCopy: true,
        Labels: { a: 'b' },
        DriverConfig: { Name: 'local', Options: { type: 'tmpfs', device: 'tmpfs' } },
      },
    },
    exists,
  );
  assert.deepEqual(v, {
    Type: 'volume',
    Source: '',
    Name: 'db',
    Destination: '/var/lib/db',
    RW: false,
    Mode: '',
    Propagation: '',
    Driver: 'local',
    CopyData: false,
    DriverOpts: { type: 'tmpfs', device: 'tmpfs' },
    Labels: { a: 'b' },
  });
  const t = parseMount(
    { Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 2 * 1024 * 1024, Mode: 0o700 } },
    exists,
  );
  assert.deepEqual(t.TmpfsOptions, ['size=2048k', 'mode=700']);
  assert.deepEqual(ociMounts([t])[0], {
    destination: '/scratch',
    type: 'tmpfs',
    source: 'tmpfs',
    options: ['nosuid', 'nodev', 'noexec', 'size=2048k', 'mode=700'],
  });
  assert.deepEqual(ociMounts([{ ...t, TmpfsOptions: [] }])[0].options, ['nosuid', 'nodev', 'noexec', 'mode=1777']);
});

test("a container's mount points: image volumes give way to binds at the same path; duplicates are refused", () => {
  const mps = containerMountPoints(
    {
      binds: ['/h:/data'],
      mounts: [{ Type: 'tmpfs', Target: '/t' }],
      configVolumes: { '/extra': {} },
      imageVolumes: { '/data': {}, '/logs': {} },
    },
    exists,
  );
  assert.deepEqual(
    mps.map((m) => `${m.Type}:${m.Destination}`),
    ['volume:/logs', 'volume:/extra', 'bind:/data', 'tmpfs:/t'],
  );
  assert.throws(
    () => containerMountPoints({ binds: ['v:/x'], mounts: [{ Type: 'tmpfs', Target: '/x' }] }, exists),
    /^Error: Duplicate mount point: \/x$/,
  );
  assert.throws(() => containerMountPoints({ mounts: {} }, exists), /Mounts must be a list/);
});

test("OCI mounts go parents first; inspect shows Docker's MountPoint fields", () => {
  const mps = [parseBind('/a:/x/y'), parseBind('/b:/x')].map((m) => ({ ...m }));
  assert.deepEqual(
    ociMounts(mps).map((m) => m.destination),
    ['/x', '/x/y'],
  );
  assert.deepEqual(ociMounts([parseBind('/a:/x:ro')])[0].options, ['rbind', 'rprivate', 'ro']);
  assert.deepEqual(
    ociMounts([
      parseMount(
        { Type: 'bind', Source: '/a', Target: '/x', BindOptions: { NonRecursive: true, Propagation: 'rslave' } },
        exists,
      ),
    ])[0].options,
    ['bind', 'rslave', 'rw'],
  );
  assert.deepEqual(mountPointView({ ...parseBind('v:/d'), Name: 'v', Source: '/root/volumes/v/_data' }), {
    Type: 'volume',
    Name: 'v',
    Source: '/root/volumes/v/_data',
    Destination: '/d',
    Driver: 'local',
    Mode: 'z',
    RW: true,
    Propagation: '',
  });
  assert.deepEqual(mountPointView(parseBind('/a:/b')), {
    Type: 'bind',
    Source: '/a',
    Destination: '/b',
    Mode: '',
    RW: true,
    Propagation: 'rprivate',
  });
});

test('service mounts become HostConfig.Mounts with their options', () => {
  const mounts: Mount[] = [
    { Type: 'bind', Source: '/srv', Target: '/s', ReadOnly: true, BindOptions: { Propagation: 'rslave' } },
    {
      Type: 'volume',
      Source: 'data',
      Target: '/d',
      VolumeOptions: {
        NoCopy: true,
        Labels: { k: 'v' },
        DriverConfig: { Name: 'local', Options: { type: 'tmpfs', device: 'tmpfs' } },
      },
    },
    { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1024, Mode: 0o755 } },
  ];
  const task = {
    ID: 'task1',
    ServiceID: 'svc1',
    Slot: 1,
    ServiceAnnotations: { Name: 'web' },
    Spec: { ContainerSpec: { Image: 'busybox', Mounts: mounts } },
  } as unknown as Task;
  const { hostConfig } = taskContainerConfig(task, 'node1');
  assert.equal(hostConfig.Binds, undefined);
  assert.deepEqual(hostConfig.Mounts, [
    { Type: 'bind', Source: '/srv', Target: '/s', ReadOnly: true, BindOptions: { Propagation: 'rslave' } },
    {
      Type: 'volume',
      Source: 'data',
      Target: '/d',
      ReadOnly: false,
      VolumeOptions: {
        NoCopy: true,
        Labels: { k: 'v' },
        DriverConfig: { Name: 'local', Options: { type: 'tmpfs', device: 'tmpfs' } },
      },
    },
    { Type: 'tmpfs', Source: '', Target: '/t', ReadOnly: false, TmpfsOptions: { SizeBytes: 1024, Mode: 0o755 } },
  ]);
  // What the engine makes of them.
  const mps = containerMountPoints({ mounts: hostConfig.Mounts }, exists);
  assert.deepEqual(
    mps.map((m) => m.Type),
    ['bind', 'volume', 'tmpfs'],
  );
  assert.equal(taskMount({ Type: 'volume', Target: '/anon' }).Source, '');
});

test("the worker rejects mounts dockerd's executor rejects, with its messages", () => {
  const bad = (m: Partial<Mount>) => () => validateTaskMounts([{ Target: '/x', ...m } as Mount]);
  assert.throws(
    bad({ Type: 'bind', Source: '/a', Target: 'rel' }),
    /^Error: invalid mount target, must be an absolute path: rel$/,
  );
  assert.throws(
    bad({ Type: 'bind', Source: 'rel' }),
    /^Error: invalid bind mount source, must be an absolute path: rel$/,
  );
  assert.throws(
    bad({ Type: 'volume', Source: '/abs' }),
    /^Error: invalid volume mount source, must not be an absolute path: \/abs$/,
  );
  assert.throws(bad({ Type: 'tmpfs', Source: 'x' }), /^Error: invalid tmpfs source, source must be empty$/);
  assert.throws(bad({ Type: 'npipe' }), /invalid npipe source, source must not be empty/);
  assert.throws(bad({ Type: 'npipe', Source: 'p' }), /mount type unknown/);
  assert.throws(bad({ Type: 'cluster', Source: 'c' }), /cluster volumes are not supported/);
  assert.doesNotThrow(bad({ Type: 'volume', Source: 'named' }));
  assert.doesNotThrow(bad({ Type: 'tmpfs' }));
});

test('service create refuses an unknown mount type or propagation as the daemon does', () => {
  const spec = (m: Partial<Mount>) => ({
    Name: 'svc',
    TaskTemplate: { ContainerSpec: { Image: 'busybox', Mounts: [{ Target: '/x', ...m } as Mount] } },
  });
  assert.throws(
    () => validateSpec(spec({ Type: 'foo' as Mount['Type'] })),
    (e: Error & { status?: number }) => e.status === 400 && e.message === 'invalid MountType: "foo"',
  );
  assert.throws(
    () => validateSpec(spec({ Type: 'bind', Source: '/a', BindOptions: { Propagation: 'sideways' } })),
    /invalid MountPropagation: "sideways"/,
  );
  assert.doesNotThrow(() => validateSpec(spec({ Type: 'tmpfs' })));
});
