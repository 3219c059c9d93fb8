import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Cluster } from '../../../../src/cluster/types.js';
import { defaultClusterSpec } from '../../../../src/manager/control/cluster-spec.js';
import { getCluster, updateSwarm, type SwarmControl } from '../../../../src/manager/control/swarm.js';
import { MemoryStore } from '../../../helpers/memory-store.js';

/**
 * `swarm update` through the control API: spec merge, join-token and root CA rotation,
 * autolock. The CA and the unlock key are the manager's; here they are recorded calls.
 */

const ROOT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

async function setup(
  autolock = false,
): Promise<{ store: MemoryStore; c: SwarmControl; keys: (Buffer | undefined)[]; rotations: number[] }> {
  const store = new MemoryStore();
  const now = new Date().toISOString();
  const cluster: Cluster = {
    ID: 'c1',
    Version: { Index: 0 },
    CreatedAt: now,
    UpdatedAt: now,
    Spec: { ...defaultClusterSpec(), EncryptionConfig: { AutoLockManagers: autolock } },
    TLSInfo: { TrustRoot: ROOT, CertIssuerSubject: '', CertIssuerPublicKey: '' },
    RootRotationInProgress: false,
    DefaultAddrPool: ['10.0.0.0/8'],
    SubnetSize: 24,
    DataPathPort: 4789,
    JoinTokens: { Worker: 'SWMTKN-1-w', Manager: 'SWMTKN-1-m' },
  };
  await store.commit([{ kind: 'cluster', op: 'create', object: cluster }]);
  const keys: (Buffer | undefined)[] = [];
  const rotations: number[] = [];
  const c: SwarmControl = {
    store,
    rotateRootCA: async () => void rotations.push(1),
    setUnlockKey: async (k) => void keys.push(k),
  };
  return { store, c, keys, rotations };
}

test('update: merged over the stored spec, name fixed, only at the current version', async () => {
  const { store, c } = await setup();
  const v = getCluster(store).Version.Index;
  await assert.rejects(updateSwarm(c, v + 1, { Dispatcher: { HeartbeatPeriod: 7e9 } }), {
    status: 500,
    message: 'rpc error: code = Unknown desc = update out of sequence',
  });
  await updateSwarm(c, v, {
    Name: 'other',
    Dispatcher: { HeartbeatPeriod: 7e9 },
    Orchestration: { TaskHistoryRetentionLimit: 0 },
  });
  const s = getCluster(store).Spec;
  assert.equal(s.Name, 'default');
  assert.equal(s.Dispatcher?.HeartbeatPeriod, 7e9);
  assert.equal(s.Orchestration?.TaskHistoryRetentionLimit, 0);
  assert.equal(s.Raft?.SnapshotInterval, 10000);
});

test('join tokens rotate on request, each alone, naming the root the cluster shows', async () => {
  const { store, c } = await setup();
  await updateSwarm(c, getCluster(store).Version.Index, {}, { rotateWorkerToken: true });
  const a = getCluster(store).JoinTokens;
  assert.notEqual(a.Worker, 'SWMTKN-1-w');
  assert.equal(a.Manager, 'SWMTKN-1-m');
  assert.match(a.Worker, /^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
  await updateSwarm(c, getCluster(store).Version.Index, {}, { rotateManagerToken: true });
  assert.notEqual(getCluster(store).JoinTokens.Manager, 'SWMTKN-1-m');
  assert.equal(getCluster(store).JoinTokens.Worker, a.Worker);
});

test('ca --rotate: a new root for the CA, rotation marked in progress; a provided signing cert is refused', async () => {
  const { store, c, rotations } = await setup();
  await assert.rejects(updateSwarm(c, getCluster(store).Version.Index, { CAConfig: { SigningCACert: 'x' } }), {
    status: 400,
  });
  assert.equal(rotations.length, 0);
  await updateSwarm(c, getCluster(store).Version.Index, { CAConfig: { ForceRotate: 1 } });
  assert.equal(rotations.length, 1);
  assert.equal(getCluster(store).RootRotationInProgress, true);
  assert.equal(getCluster(store).TLSInfo.TrustRoot, ROOT, 'the old root is shown until the rotation ends');
  // The same ForceRotate again is no new rotation.
  await updateSwarm(c, getCluster(store).Version.Index, { CAConfig: { ForceRotate: 1 } });
  assert.equal(rotations.length, 1);
});

test('autolock: a key when it turns on, a new one on rotate, none when it turns off', async () => {
  const { store, c, keys } = await setup();
  await updateSwarm(c, getCluster(store).Version.Index, {}, { rotateManagerUnlockKey: true });
  assert.equal(keys.length, 0, 'no key while autolock is off');
  await updateSwarm(c, getCluster(store).Version.Index, { EncryptionConfig: { AutoLockManagers: true } });
  assert.equal(keys.length, 1);
  assert.ok(keys[0] && keys[0].length > 0);
  await updateSwarm(
    c,
    getCluster(store).Version.Index,
    { EncryptionConfig: { AutoLockManagers: true } },
    { rotateManagerUnlockKey: true },
  );
  assert.equal(keys.length, 2);
  assert.notDeepEqual(keys[1], keys[0]);
  await updateSwarm(c, getCluster(store).Version.Index, { EncryptionConfig: { AutoLockManagers: false } });
  assert.deepEqual(keys.slice(2), [undefined]);
});
