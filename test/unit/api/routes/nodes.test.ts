import { test } from 'node:test';
import assert from 'node:assert/strict';
import { present } from '../../../../src/api/routes/nodes.js';
import { defaultClusterSpec, mergeClusterSpec } from '../../../../src/node/node.js';
import type { Node } from '../../../../src/cluster/types.js';
import type { Manager } from '../../../../src/manager/manager.js';

const manager = { election: { leaderId: 'n1' }, isReachable: () => true } as unknown as Pick<
  Manager,
  'election' | 'isReachable'
>;

test('nodes API view hides the internal Attachments field and leaves the stored node alone', () => {
  const stored = {
    ID: 'n1',
    Version: { Index: 3 },
    CreatedAt: '',
    UpdatedAt: '',
    Spec: { Role: 'manager', Availability: 'active' },
    Status: { State: 'ready', Addr: '10.0.0.1' },
    ManagerStatus: { Reachability: 'reachable', Addr: '10.0.0.1:2377' },
    Attachments: [{ Network: { ID: 'ingress' }, Addresses: ['10.0.0.2/24'] }],
  } as unknown as Node;
  const shown = present(manager, stored);
  assert.equal('Attachments' in shown, false);
  assert.deepEqual(shown.ManagerStatus, { Leader: true, Reachability: 'reachable', Addr: '10.0.0.1:2377' });
  assert.equal(stored.Attachments?.length, 1);
});

test('swarm spec merge keeps an explicit zero task history limit and zero kept snapshots', () => {
  const base = defaultClusterSpec();
  const merged = mergeClusterSpec(base, {
    Orchestration: { TaskHistoryRetentionLimit: 0 },
    Raft: { KeepOldSnapshots: 0, SnapshotInterval: 0 },
  });
  assert.equal(merged.Orchestration?.TaskHistoryRetentionLimit, 0);
  assert.equal(merged.Raft?.KeepOldSnapshots, 0);
  // Other numeric fields: 0 means unset (moby's MergeSwarmSpecToGRPC), the current value stays.
  assert.equal(merged.Raft?.SnapshotInterval, base.Raft?.SnapshotInterval);
  const withBase7 = mergeClusterSpec(
    { ...base, Raft: { ...base.Raft, KeepOldSnapshots: 7 } },
    { Raft: { KeepOldSnapshots: 0 } },
  );
  assert.equal(withBase7.Raft?.KeepOldSnapshots, 0);
  assert.equal(mergeClusterSpec(base, { Orchestration: {} }).Orchestration?.TaskHistoryRetentionLimit, 5);
});
