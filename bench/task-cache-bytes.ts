/**
 * Bytes per task in the manager's store cache: N tasks of one service as the store's watch
 * decodes them (JSON.parse, shared parts, deep freeze), kept in the cache's map and its task
 * indexes, measured as V8 heap growth after a full GC; with and without SharedTaskParts.
 *
 *   node --expose-gc dist/bench/task-cache-bytes.js [tasks=100000] [nodes=1000]
 */
import type { Task } from '../src/cluster/types.js';
import { SharedTaskParts, deepFreeze } from '../src/manager/store/shared-parts.js';
import { TaskIndex } from '../src/manager/store/task-index.js';
import { newSwarmId } from '../src/util/ids.js';
import { printTable, writeReport } from './report.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function storedTasks(n: number, nodes: number): string[] {
  const service = newSwarmId();
  const nodeIds = Array.from({ length: nodes }, () => newSwarmId());
  const at = () => new Date().toISOString();
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      ID: newSwarmId(),
      CreatedAt: at(),
      UpdatedAt: at(),
      Spec: { ContainerSpec: { Image: 'simulated:latest' } },
      ServiceID: service,
      ServiceAnnotations: { Name: 'sim' },
      Status: { Timestamp: at(), State: 'running', Message: 'started' },
      DesiredState: 'running',
      SpecVersion: { Index: 0 },
      Slot: i + 1,
      NodeID: nodeIds[i % nodes],
    }),
  );
}

/** Heap bytes per task held by a cache of `json` (objects + indexes). */
function cacheBytes(json: string[], share: boolean): { objects: number; indexes: number } {
  gc!();
  const h0 = process.memoryUsage().heapUsed;
  const cache = new Map<string, Task>();
  const parts = new SharedTaskParts();
  for (const j of json) {
    const t = JSON.parse(j) as Task;
    t.Version = { Index: 1 };
    if (share) parts.share(t);
    cache.set(t.ID, deepFreeze(t));
  }
  gc!();
  const h1 = process.memoryUsage().heapUsed;
  const index = new TaskIndex();
  for (const t of cache.values()) index.put(undefined, t);
  gc!();
  const h2 = process.memoryUsage().heapUsed;
  // Keep both alive until measured.
  if (cache.size + index.count('service', '') < 0) console.log('');
  return { objects: Math.round((h1 - h0) / json.length), indexes: Math.round((h2 - h1) / json.length) };
}

const n = Number(process.argv[2] ?? 100_000);
const json = storedTasks(n, Number(process.argv[3] ?? 1000));
const before = cacheBytes(json, false);
const after = cacheBytes(json, true);
const r = { tasks: n, storedJsonBytes: Math.round(json.reduce((a, j) => a + j.length, 0) / n), before, after };
printTable(`store cache, bytes per task (${n} tasks)`, [
  ['stored JSON (etcd value)', `${r.storedJsonBytes} B`],
  ['decoded objects, each task its own parts', `${before.objects} B`],
  ['decoded objects, repeated parts shared', `${after.objects} B`],
  ['task indexes (service, node, state, slot)', `${after.indexes} B`],
]);
console.log(`written ${writeReport('task-cache-bytes', r)}`);
