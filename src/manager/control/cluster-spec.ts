import type { ClusterSpec } from '../../cluster/types.js';

/** The swarm's spec at `swarm init` and how a client's spec is merged into the stored one (moby MergeSwarmSpecToGRPC). */

const NS = 1e9;
export function defaultClusterSpec(): ClusterSpec {
  return {
    Name: 'default',
    Labels: {},
    Orchestration: { TaskHistoryRetentionLimit: 5 },
    Raft: {
      SnapshotInterval: 10000,
      KeepOldSnapshots: 0,
      LogEntriesForSlowFollowers: 500,
      ElectionTick: 10,
      HeartbeatTick: 1,
    },
    Dispatcher: { HeartbeatPeriod: 5 * NS },
    CAConfig: { NodeCertExpiry: 90 * 24 * 3600 * NS },
    TaskDefaults: {},
    EncryptionConfig: { AutoLockManagers: false },
  };
}

/**
 * Fields Docker declares as pointers (*int64/*uint64): a sent 0 is a value ("keep no task
 * history"), not "unset". Other numeric fields treat 0 as unset, as moby's MergeSwarmSpecToGRPC does.
 */
const ZERO_IS_A_VALUE = new Set(['Orchestration.TaskHistoryRetentionLimit', 'Raft.KeepOldSnapshots']);

/** Client-sent spec fields override the defaults only where set (the CLI sends zero values for unset flags). */
export function mergeClusterSpec(base: ClusterSpec, given: ClusterSpec | undefined): ClusterSpec {
  const out = structuredClone(base) as Record<string, unknown>;
  for (const [k, v] of Object.entries(given ?? {})) {
    if (v && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' && out[k]) {
      const sub = { ...(out[k] as Record<string, unknown>) };
      for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) {
        if (v2 === undefined || v2 === null || v2 === '') continue;
        if (v2 === 0 && !ZERO_IS_A_VALUE.has(`${k}.${k2}`)) continue;
        sub[k2] = v2;
      }
      out[k] = sub;
    } else if (v !== undefined && v !== null && v !== '') {
      out[k] = v;
    }
  }
  return out as ClusterSpec;
}
