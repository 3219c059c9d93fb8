/**
 * Failover benchmarks, over N runs each (`node dist/bench/failover.js [runs] [leader|worker|all]`):
 *  - leader (failover-leader.ts): 3 and 5 managers on etcd holding 10,000 simulated tasks; kill
 *    -9 the leader's shoald and measure the time until a surviving manager accepts a write, and
 *    until it shows a new leader, then scale the service up by one and measure until the new task
 *    is RUNNING (the new leader's loops resumed on the whole store). SHOAL_BENCH_MANAGERS=3,5,
 *    SHOAL_BENCH_TASKS=10000 and SHOAL_BENCH_NODES=100 set the sizes.
 *  - worker: a separate lab of three machines (m1 manager, m2 and m3 workers; the real docker CLI
 *    and the micro image), a service of 6 replicas with --restart-delay 0; the worker holding the
 *    most tasks disappears (kill -9 of its shoald, then `shoal machine stop`: containers killed,
 *    namespace gone), and we measure the time until the manager marks it Down and until all 6
 *    replicas run elsewhere. Down comes from the liveness lease (heartbeat period × grace, Docker's
 *    defaults); the replacements then start at once (no restart delay).
 * Run as root: `npx tsc -p . && node dist/bench/failover.js [runs] [scenario]`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../src/util/run.js';
import { sandboxPrefix } from '../src/agent/network-agent.js';
import { DEFAULT_HEARTBEAT_MS, GRACE_MULTIPLIER } from '../src/manager/dispatcher/dispatcher.js';
import type { Node, Task } from '../src/cluster/types.js';
import { REPO_ROOT } from '../test/helpers/daemon.js';
import { waitFor } from '../test/helpers/process.js';
import { createMachines, newTestLab } from '../test/helpers/lab.js';
import { pushMicro } from '../test/helpers/micro.js';
import { api, printTable } from './report.js';
import { leaderScenario } from './failover-leader.js';
import { ETCD_ELECTION_MS, ETCD_HEARTBEAT_MS } from '../src/manager/store/etcd-member.js';
import { HOLDER_CHECK_MS, LEADER_TTL_S } from '../src/manager/leader/election.js';

const runs = Number(process.argv[2] ?? 5);
const scenario = process.argv[3] ?? 'all';
/** Leader scenario: manager counts, simulated tasks and nodes (SHOAL_BENCH_MANAGERS=3,5 …). */
const managerCounts = (process.env.SHOAL_BENCH_MANAGERS ?? '3,5').split(',').map(Number);
const simTasks = Number(process.env.SHOAL_BENCH_TASKS ?? 10_000);
const simNodes = Number(process.env.SHOAL_BENCH_NODES ?? 100);
if (!['leader', 'worker', 'all'].includes(scenario))
  throw new Error(`unknown scenario ${scenario}; known: leader, worker, all`);
const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').trim();
const stats = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return { runs: xs, min: sorted[0], median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1] };
};

interface WorkerRun {
  killed: string;
  tasksOnIt: number;
  stopMs: number;
  downMs: number;
  allRunningMs: number;
  afterDownMs: number;
  afterDownStoreMs: number;
}

/** One manager, two workers, 6 replicas; each run a worker disappears and comes back afterwards. */
async function workerScenario(): Promise<WorkerRun[]> {
  const REPLICAS = 6;
  const MACHINES = ['m1', 'm2', 'm3'];
  const lab = newTestLab();
  const ids = new Map<string, string>(); // machine → node ID
  const out: WorkerRun[] = [];
  try {
    await createMachines(lab, MACHINES);
    const d = (m: string, args: string[]) => lab.docker(m, args);
    const ip1 = (await lab.machine(['ip', 'm1'])).stdout.trim();
    await d('m1', ['swarm', 'init', '--advertise-addr', ip1]);
    const token = (await d('m1', ['swarm', 'join-token', '-q', 'worker'])).stdout.trim();
    for (const m of ['m2', 'm3']) await d(m, ['swarm', 'join', '--token', token, `${ip1}:2377`]);
    for (const m of MACHINES) ids.set(m, (await d(m, ['info', '--format', '{{.Swarm.NodeID}}'])).stdout.trim());
    const socket = (await lab.dockerHost('m1')).replace(/^unix:\/\//, '');
    const image = await pushMicro({ socket }, (await lab.machine(['registry'])).stdout.trim());
    await d('m1', [
      'service',
      'create',
      '--name',
      'micro',
      '--replicas',
      String(REPLICAS),
      '--restart-delay',
      '0',
      '--detach',
      image,
    ]);
    // The manager's view through the Engine API (one request per poll, no CLI start-up in the timing).
    const nodes = async () => JSON.parse((await api(socket, 'GET', '/v1.41/nodes')).body) as Node[];
    const running = async () =>
      (JSON.parse((await api(socket, 'GET', '/v1.41/tasks')).body) as Task[]).filter(
        (t) => t.DesiredState === 'running' && t.Status.State === 'running',
      );
    const settled = async () =>
      (await running()).length === REPLICAS && (await nodes()).every((n) => n.Status.State === 'ready');
    for (let i = 0; i < runs; i++) {
      await waitFor(`${REPLICAS} replicas running, all nodes ready`, settled, 180_000, 500);
      const perNode = new Map<string, number>();
      for (const t of await running()) perNode.set(t.NodeID ?? '', (perNode.get(t.NodeID ?? '') ?? 0) + 1);
      const victim = ['m2', 'm3'].sort((a, b) => (perNode.get(ids.get(b)!) ?? 0) - (perNode.get(ids.get(a)!) ?? 0))[0];
      const id = ids.get(victim)!;
      // The machine's shoald dies first (t0: its heartbeats stop there), then `shoal machine stop`
      // kills its containers and removes its namespace.
      const pid = (JSON.parse((await lab.machine(['inspect', victim])).stdout) as { pid?: number }).pid;
      if (!pid) throw new Error(`no shoald pid for ${victim}`);
      const t0 = Date.now();
      process.kill(pid, 'SIGKILL');
      // Polled while `shoal machine stop` runs (it took 12–22 s on a loaded box: the node was
      // Down and its tasks replaced before it returned).
      let stopMs = 0;
      const stopped = lab.machine(['stop', victim]).then(() => (stopMs = Date.now() - t0));
      let downMs = 0;
      let allRunningMs = 0;
      let downAt = 0; // the node's UpdatedAt when the manager marked it Down
      let runningAt = 0; // the last replacement's RUNNING timestamp
      await waitFor(
        'node down and replicas running elsewhere',
        async () => {
          const now = Date.now() - t0;
          const n = (await nodes()).find((x) => x.ID === id);
          if (!downMs && n?.Status.State === 'down') {
            downMs = now;
            downAt = Date.parse(n.UpdatedAt);
          }
          if (!allRunningMs) {
            const r = await running();
            if (r.length === REPLICAS && r.every((t) => t.NodeID !== id)) {
              allRunningMs = now;
              runningAt = Math.max(...r.map((t) => Date.parse(t.Status.Timestamp)));
            }
          }
          return downMs > 0 && allRunningMs > 0;
        },
        180_000,
        50,
      );
      await stopped;
      const run1 = {
        killed: victim,
        tasksOnIt: perNode.get(id) ?? 0,
        stopMs,
        downMs,
        allRunningMs,
        afterDownMs: allRunningMs - downMs,
        // From the store's own timestamps (no polling in it): Down written → last replacement RUNNING.
        afterDownStoreMs: runningAt - downAt,
      };
      out.push(run1);
      console.log(
        `worker run ${i + 1}: ${victim} (${run1.tasksOnIt} tasks) stopped (stop took ${stopMs} ms); Down after ${downMs} ms, all ${REPLICAS} running elsewhere after ${allRunningMs} ms (${run1.afterDownMs} ms after Down as polled, ${run1.afterDownStoreMs} ms by the store's timestamps), load ${loadavg()}`,
      );
      await lab.machine(['start', victim]);
    }
    return out;
  } finally {
    for (const m of MACHINES)
      await lab.docker(m, ['swarm', 'leave', '--force'], { allowFail: true }).catch(() => undefined);
    await lab.prune();
    for (const id of ids.values()) {
      for (const ns of fs.readdirSync('/run/netns').filter((n) => n.startsWith(`${sandboxPrefix(id)}-`)))
        await run('ip', ['netns', 'delete', ns], { allowFail: true });
    }
  }
}

const report: Record<string, unknown> = { when: new Date().toISOString(), loadavgAtStart: loadavg() };
if (scenario !== 'worker') {
  const byManagers: Record<string, unknown> = {};
  for (const count of managerCounts) {
    const rs = await leaderScenario(runs, count, simTasks, simNodes);
    byManagers[String(count)] = {
      runs: rs,
      firstWriteMs: stats(rs.map((r) => r.firstWriteMs)),
      newLeaderMs: stats(rs.map((r) => r.newLeaderMs)),
      loopsResumedMs: stats(rs.map((r) => r.loopsResumedMs)),
      loopsAfterLeaderMs: stats(rs.map((r) => r.loopsAfterLeaderMs)),
      etcdLeaderKilled: rs.filter((r) => r.etcdLeader).length,
    };
  }
  report.leader = {
    what: `M managers on etcd (drained), ${simNodes} simulated nodes running ${simTasks} tasks: kill -9 of the leader's shoald → first accepted write (node update through a survivor's Engine API), a new leader in its node list, and a task added by a scale-up right after it RUNNING (the new leader's loops resumed)`,
    timings: {
      etcdHeartbeatMs: ETCD_HEARTBEAT_MS,
      etcdElectionMs: ETCD_ELECTION_MS,
      leaderLeaseTtlS: LEADER_TTL_S,
      holderCheckMs: HOLDER_CHECK_MS,
    },
    byManagers,
  };
  console.log(JSON.stringify(report.leader));
}
if (scenario !== 'leader') {
  const rs = await workerScenario();
  const ttlS = Math.max(2, Math.ceil((DEFAULT_HEARTBEAT_MS * GRACE_MULTIPLIER) / 1000));
  report.worker = {
    what: 'lab of 3 machines (m1 manager, m2 and m3 workers), 6 micro replicas; the worker with the most tasks stopped (kill -9 of its shoald at t0, then shoal machine stop: its containers killed, namespace gone)',
    heartbeat: {
      periodMs: DEFAULT_HEARTBEAT_MS,
      graceMultiplier: GRACE_MULTIPLIER,
      livenessLeaseTtlS: ttlS,
      note: `Down when the liveness lease expires: ${ttlS - DEFAULT_HEARTBEAT_MS / 1000}–${ttlS} s after the last heartbeat renewal`,
    },
    // Replacements of tasks on a Down node wait the restart delay like any restart: 0 here (Docker's default is 5 s).
    restartDelayMs: 0,
    runs: rs,
    downMs: stats(rs.map((r) => r.downMs)),
    allRunningMs: stats(rs.map((r) => r.allRunningMs)),
    afterDownMs: stats(rs.map((r) => r.afterDownMs)),
    afterDownStoreMs: stats(rs.map((r) => r.afterDownStoreMs)),
  };
  console.log(JSON.stringify(report.worker));
}
report.loadavgAtEnd = loadavg();
const rows: [string, string][] = [];
const fmt = (s: { min: number; median: number; max: number }) => `median ${s.median} ms (min ${s.min}, max ${s.max})`;
const L = report.leader as
  | {
      byManagers: Record<
        string,
        {
          firstWriteMs: ReturnType<typeof stats>;
          newLeaderMs: ReturnType<typeof stats>;
          loopsResumedMs: ReturnType<typeof stats>;
          loopsAfterLeaderMs: ReturnType<typeof stats>;
        }
      >;
    }
  | undefined;
const W = report.worker as
  | {
      downMs: ReturnType<typeof stats>;
      allRunningMs: ReturnType<typeof stats>;
      afterDownMs: ReturnType<typeof stats>;
      afterDownStoreMs: ReturnType<typeof stats>;
    }
  | undefined;
for (const [count, l] of Object.entries(L?.byManagers ?? {}))
  rows.push(
    [`${count} managers: leader kill → first accepted write`, fmt(l.firstWriteMs)],
    [`${count} managers: leader kill → new leader`, fmt(l.newLeaderMs)],
    [`${count} managers: leader kill → a task added then is RUNNING (loops resumed)`, fmt(l.loopsResumedMs)],
    [`  of which after the new leader showed`, fmt(l.loopsAfterLeaderMs)],
  );
if (W)
  rows.push(
    ['worker gone → node Down', fmt(W.downMs)],
    ['worker gone → all replicas running', fmt(W.allRunningMs)],
    ['  of which after Down (polled)', fmt(W.afterDownMs)],
    ['  Down → last replacement RUNNING (store timestamps)', fmt(W.afterDownStoreMs)],
  );
printTable(`failover, ${runs} run(s), load ${report.loadavgAtStart} → ${report.loadavgAtEnd}`, rows);
const dir = path.join(REPO_ROOT, 'bench/results');
fs.mkdirSync(dir, { recursive: true });
const file = path.join(dir, `failover-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
console.log(`written ${path.relative(REPO_ROOT, file)}`);
