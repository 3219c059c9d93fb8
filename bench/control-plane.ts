/**
 * Control plane at scale: one real manager (shoald + etcd in its own netns, drained so it runs
 * nothing itself) and N simulated nodes (bench/sim/sim-nodes.ts: each a real swarm member with
 * its own certificate and mTLS session; tasks go ACCEPTED → PREPARING → STARTING → RUNNING on
 * a simulated executor). One service of M replicas is created through the Engine API; we
 * measure the time until all M are RUNNING in the store, create→RUNNING per task, manager RSS
 * (shoald + etcd) and etcd writes.
 *
 *   node dist/bench/control-plane.js [nodes=100] [tasks=10000|c1m] [timeout s=300]    (root)
 *
 * `c1m` is the mix of issue 17: one service of 500,000 replicas and 1,000 services of 500;
 * `c1m:<k>` the same mix with every service k times smaller.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';
import { stopProcess } from '../test/helpers/process.js';
import type { Node, Service, Task } from '../src/cluster/types.js';
import { api, cpuSeconds, pct, printTable, rssMiB, writeReport } from './report.js';
import { etcdMetricsText } from './etcd-metrics.js';
import { profileChildrenIfAsked } from './sim/profile-children.js';
import { initDrainedSwarm, spawnSimNodes } from './sim/sim-process.js';

export interface ControlPlaneResult {
  nodes: number;
  tasks: number;
  /** Replicas of each service created (one service unless a mix was asked for). */
  services: { count: number; replicas: number }[];
  joinMs: number;
  allRunningMs: number | null;
  tasksPerSecond: number | null;
  createToRunningMs: { p50: number; p99: number; max: number };
  runningSeen: number;
  /** Tasks RUNNING on the simulated nodes at the end (more than `tasks` would be a duplicate). */
  agentsRunning: number;
  /** With a mix: which service the per-task rows (latency, slots) were taken from. */
  perTaskChecksOn?: string;
  slotsRunning: number;
  /**
   * Slots with more than one task observed RUNNING: `oldOnDownNode` when every extra one is
   * desired SHUTDOWN on a DOWN node (it cannot report; Swarm shuts it down when the node
   * returns), `bothDesiredRunning` when two are desired to run (an orchestrator duplicate).
   */
  runningTwice: { slots: number; oldOnDownNode: number; bothDesiredRunning: number; other: number };
  /** SHOAL_BENCH_FLAP_NODES runs: tasks desired SHUTDOWN still RUNNING when all slots ran, and 60 s later at most. */
  flap?: { nodes: number; oldCopiesRunningAtConvergence: number; oldCopiesRunningAtEnd: number };
  managerRssMiB: { shoaldPeak: number; etcdPeak: number; totalPeak: number };
  /** Each process's RSS at its peak sample, split: anonymous (heap) and file-backed (mmapped) MiB. */
  /** SHOAL_BENCH_VARIANT: a label for runs that compare settings (e.g. etcd's GOMEMLIMIT). */
  variant?: string;
  rssAtPeak?: { shoald: { anon: number; file: number }; etcd: { anon: number; file: number } };
  /** CPU seconds used from create to the end, and the load average then (the box is shared). */
  cpu: { shoald: number; etcd: number; sim: number; loadAverage: number };
  etcd: {
    puts: number;
    deletes: number;
    txns: number;
    proposalsCommitted: number;
    walFsyncs: number;
    walFsyncMeanMs: number;
    backendCommitMeanMs: number;
    diskSeconds: number;
    /** etcd's backend at the end: bytes in use (all revisions not compacted yet), per task. */
    dbBytesInUse: number;
    dbBytesPerTask: number;
  };
  limit?: string;
}

/** How long SHOAL_BENCH_FLAP_NODES nodes stay frozen: past the liveness TTL (heartbeat period x 3). */
const FLAP_PAUSE_MS = 25_000;

/** Simulated nodes per process: each process is one event loop with that many mTLS sessions. */
const NODES_PER_SIM = 2500;

/** Issue 17's C1M mix: one service of 500,000 replicas and 1,000 services of 500. */
export const C1M_MIX = [500_000, ...Array.from({ length: 1000 }, () => 500)];

/** Counts of equal replica numbers, for the report. */
function summarize(mix: number[]): { count: number; replicas: number }[] {
  const m = new Map<number, number>();
  for (const r of mix) m.set(r, (m.get(r) ?? 0) + 1);
  return [...m].map(([replicas, count]) => ({ count, replicas }));
}

async function etcdMetrics(d: TestDaemon): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await etcdMetricsText(d)).split('\n')) {
    const m =
      /^(etcd_mvcc_db_total_size_in_use_in_bytes|etcd_mvcc_put_total|etcd_mvcc_delete_total|etcd_mvcc_txn_total|etcd_server_proposals_committed_total|etcd_disk_wal_fsync_duration_seconds_(?:sum|count)|etcd_disk_backend_commit_duration_seconds_(?:sum|count))\s+(\S+)/.exec(
        line,
      );
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Creates the services of `mix` (replica counts) through the Engine API, a few at a time. */
async function createServices(d: TestDaemon, mix: number[]): Promise<string[]> {
  const ids: string[] = new Array<string>(mix.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(4, mix.length) }, async () => {
      while (next < mix.length) {
        const i = next++;
        const spec = {
          Name: mix.length === 1 ? 'sim' : `sim-${i}`,
          Mode: { Replicated: { Replicas: mix[i] } },
          TaskTemplate: { ContainerSpec: { Image: 'simulated:latest' } },
        };
        const created = await api(d.socket, 'POST', '/v1.41/services/create', spec);
        if (created.status !== 201) throw new Error(`service create: ${created.status} ${created.body}`);
        ids[i] = (JSON.parse(created.body) as { ID: string }).ID;
      }
    }),
  );
  return ids;
}

export async function controlPlane(
  nodes: number,
  tasksOrMix: number | number[],
  timeoutMs = 300_000,
): Promise<ControlPlaneResult> {
  const mix = typeof tasksOrMix === 'number' ? [tasksOrMix] : tasksOrMix;
  const tasks = mix.reduce((a, b) => a + b, 0);
  // Past one service, the checks that list every task (hundreds of MB of JSON at 1M) are left
  // out: convergence is the services' running counts and the agents' own count.
  const single = mix.length === 1;
  profileChildrenIfAsked();
  const d = await startDaemon({ prefix: 'bcp' });
  const simPids: number[] = [];
  let flapPid: number | undefined;
  try {
    const { token } = await initDrainedSwarm(d);
    const etcdPid = Number(fs.readFileSync(path.join(d.dataRoot, 'swarm/etcd.pid'), 'utf8').trim());

    const procs = Math.ceil(nodes / NODES_PER_SIM);
    const running: number[] = Array.from({ length: procs }, () => 0);
    let agentRunning = 0;
    const joins: Promise<number>[] = [];
    const exits: Promise<never>[] = [];
    for (let p = 0; p < procs; p++) {
      const sim = spawnSimNodes({
        ns: d.ns,
        managers: '127.0.0.1:2377',
        token,
        count: Math.min(NODES_PER_SIM, nodes - p * NODES_PER_SIM),
        first: p * NODES_PER_SIM,
        nodeFlags: ['--max-old-space-size=4096', '--max-semi-space-size=64'],
        onRunning: (n) => {
          running[p] = n;
          agentRunning = running.reduce((a, b) => a + b, 0);
        },
      });
      simPids.push(sim.pid);
      joins.push(sim.joined);
      exits.push(sim.exited);
    }
    const joined = Promise.all(joins).then((ms) => Math.max(...ms));
    const exited = Promise.race(exits);
    exited.catch(() => undefined);
    const joinMs = await Promise.race([joined, exited]);
    console.error(`${nodes} simulated nodes joined in ${joinMs} ms`);
    // SHOAL_BENCH_FLAP_NODES=<k>: k more nodes in a process of their own, frozen (SIGSTOP) for
    // FLAP_PAUSE_MS once half the tasks run, so their sessions expire (DOWN), their tasks are
    // replaced, and they come back with the old copies (node-down restarts end to end).
    const flapNodes = Number(process.env.SHOAL_BENCH_FLAP_NODES ?? 0);
    let flapRunning = 0;
    if (flapNodes > 0) {
      const flap = spawnSimNodes({
        ns: d.ns,
        managers: '127.0.0.1:2377',
        token,
        count: flapNodes,
        first: nodes,
        onRunning: (n) => (flapRunning = n),
      });
      flapPid = flap.pid;
      await flap.joined;
      console.error(`${flapNodes} more nodes to freeze joined`);
    }
    let frozenAt: number | undefined;
    let thawed = flapNodes === 0;

    const before = await etcdMetrics(d);
    let shoaldPeak = 0;
    let etcdPeak = 0;
    const rssAtPeak = { shoald: { anon: 0, file: 0 }, etcd: { anon: 0, file: 0 } };
    const sample = () => {
      const s = rssMiB(d.pid);
      const e = rssMiB(etcdPid);
      if (s.rss > shoaldPeak) rssAtPeak.shoald = { anon: Math.round(s.anon), file: Math.round(s.file) };
      if (e.rss > etcdPeak) rssAtPeak.etcd = { anon: Math.round(e.anon), file: Math.round(e.file) };
      shoaldPeak = Math.max(shoaldPeak, s.rss);
      etcdPeak = Math.max(etcdPeak, e.rss);
    };
    const sampler = setInterval(sample, 250);

    const simCpu = () => simPids.reduce((a, pid) => a + cpuSeconds(pid), 0);
    const cpu0 = { shoald: cpuSeconds(d.pid), etcd: cpuSeconds(etcdPid), sim: simCpu() };
    const t0 = Date.now();
    const serviceIds = await createServices(d, mix);
    const serviceId = serviceIds[0];
    const ours = new Set(serviceIds);
    console.error(`${mix.length} service(s) created in ${Date.now() - t0} ms`);

    let allRunningMs: number | null = null;
    let lastLog = 0;
    let limit: string | undefined;
    while (Date.now() - t0 < timeoutMs) {
      // Agents first (cheap); then the store through the API, which is what counts.
      if (flapPid && frozenAt === undefined && agentRunning + flapRunning >= tasks / 2) {
        process.kill(flapPid, 'SIGSTOP');
        frozenAt = Date.now();
        console.error(`  froze ${flapNodes} nodes at ${agentRunning + flapRunning} running`);
      }
      if (flapPid && frozenAt !== undefined && !thawed && Date.now() - frozenAt > FLAP_PAUSE_MS) {
        process.kill(flapPid, 'SIGCONT');
        thawed = true;
        console.error('  thawed them');
      }
      if (thawed && agentRunning + flapRunning >= tasks) {
        const r = await api(d.socket, 'GET', '/v1.41/services?status=true');
        // A busy manager may answer with an error (a timed-out read): ask again on the next round.
        const listed =
          r.status === 200 ? (JSON.parse(r.body) as (Service & { ServiceStatus?: { RunningTasks: number } })[]) : [];
        const runningInStore = listed
          .filter((x) => ours.has(x.ID))
          .reduce((a, x) => a + (x.ServiceStatus?.RunningTasks ?? 0), 0);
        if (!single && runningInStore >= tasks) {
          allRunningMs = Date.now() - t0;
          break;
        }
        if (single && runningInStore >= tasks) {
          // The time is when the store said so; listing every task to check it takes a while at 100k.
          const seenAt = Date.now() - t0;
          // RunningTasks counts every task observed RUNNING, as swarmkit's does, old copies
          // desired SHUTDOWN on a node that just came back included: count the wanted ones.
          const l = await api(
            d.socket,
            'GET',
            `/v1.41/tasks?filters=${encodeURIComponent(JSON.stringify({ service: { [serviceId]: true }, 'desired-state': { running: true } }))}`,
          );
          if ((JSON.parse(l.body) as Task[]).filter((t) => t.Status.State === 'running').length >= tasks) {
            allRunningMs = seenAt;
            break;
          }
        }
      }
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        let states = '';
        if (agentRunning >= tasks && single) {
          const r = await api(
            d.socket,
            'GET',
            `/v1.41/tasks?filters=${encodeURIComponent(JSON.stringify({ service: { [serviceId]: true } }))}`,
          );
          const hist = new Map<string, number>();
          for (const t of JSON.parse(r.body) as Task[]) hist.set(t.Status.State, (hist.get(t.Status.State) ?? 0) + 1);
          states = `; in the store: ${JSON.stringify(Object.fromEntries(hist))}`;
        }
        console.error(
          `  t+${((Date.now() - t0) / 1000).toFixed(0)} s: ${agentRunning}/${tasks} running on the agents${states}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    // Once converged, the frozen nodes' old copies (desired SHUTDOWN) must stop: wait for it.
    let flapReport: ControlPlaneResult['flap'];
    if (flapPid && allRunningMs !== null) {
      flapReport = { nodes: flapNodes, oldCopiesRunningAtConvergence: -1, oldCopiesRunningAtEnd: -1 };
      const end = Date.now() + 60_000;
      while (Date.now() < end) {
        const r = await api(
          d.socket,
          'GET',
          `/v1.41/tasks?filters=${encodeURIComponent(JSON.stringify({ service: { [serviceId]: true } }))}`,
        );
        const left = (JSON.parse(r.body) as Task[]).filter(
          (t) => t.DesiredState !== 'running' && t.Status.State === 'running',
        ).length;
        if (flapReport.oldCopiesRunningAtConvergence < 0) flapReport.oldCopiesRunningAtConvergence = left;
        flapReport.oldCopiesRunningAtEnd = left;
        if (!left) break;
        console.error(`  ${left} old copies desired SHUTDOWN still RUNNING`);
        await new Promise((res) => setTimeout(res, 2000));
      }
    }
    if (allRunningMs === null)
      limit = `not all running after ${timeoutMs / 1000} s (${agentRunning}/${tasks} on the agents)`;
    clearInterval(sampler);
    sample();
    const after = await etcdMetrics(d);
    const cpu = {
      shoald: Math.round(cpuSeconds(d.pid) - cpu0.shoald),
      etcd: Math.round(cpuSeconds(etcdPid) - cpu0.etcd),
      sim: Math.round(simCpu() - cpu0.sim),
      loadAverage: Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
    };

    // With a mix, the per-task checks look at one of the small services (listing 1M tasks is not a measurement).
    const sampleId = single ? serviceId : serviceIds[serviceIds.length - 1];
    const r = await api(
      d.socket,
      'GET',
      `/v1.41/tasks?filters=${encodeURIComponent(JSON.stringify({ service: { [sampleId]: true } }))}`,
    );
    const all = r.status === 200 ? (JSON.parse(r.body) as Task[]) : [];
    const lat = all
      .filter((t) => t.Status.State === 'running')
      .map((t) => Date.parse(t.Status.Timestamp) - Date.parse(t.CreatedAt))
      .sort((a, b) => a - b);
    // More running tasks than slots would mean the orchestrator made duplicates.
    const slotsRunning = new Set(all.filter((t) => t.Status.State === 'running').map((t) => t.Slot)).size;
    const downNodes = new Set(
      (JSON.parse((await api(d.socket, 'GET', '/v1.41/nodes')).body) as Node[])
        .filter((n) => n.Status.State === 'down')
        .map((n) => n.ID),
    );
    const runningTwice = { slots: 0, oldOnDownNode: 0, bothDesiredRunning: 0, other: 0 };
    const bySlot = new Map<number, Task[]>();
    for (const t of all)
      if (t.Status.State === 'running') bySlot.set(t.Slot ?? 0, [...(bySlot.get(t.Slot ?? 0) ?? []), t]);
    for (const ts of bySlot.values()) {
      if (ts.length < 2) continue;
      runningTwice.slots++;
      const wanted = ts.filter((t) => t.DesiredState === 'running');
      if (wanted.length > 1) runningTwice.bothDesiredRunning++;
      else if (ts.every((t) => t.DesiredState === 'running' || (t.NodeID && downNodes.has(t.NodeID))))
        runningTwice.oldOnDownNode++;
      else runningTwice.other++;
    }
    const diff = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    const mean = (k: string) => Math.round(((1000 * diff(`${k}_sum`)) / Math.max(1, diff(`${k}_count`))) * 10) / 10;
    return {
      nodes,
      tasks,
      services: summarize(mix),
      agentsRunning: agentRunning,
      ...(single ? {} : { perTaskChecksOn: `one service of ${mix[mix.length - 1]}` }),
      joinMs,
      allRunningMs,
      tasksPerSecond: allRunningMs ? Math.round(tasks / (allRunningMs / 1000)) : null,
      createToRunningMs: { p50: pct(lat, 50), p99: pct(lat, 99), max: lat[lat.length - 1] },
      runningSeen: lat.length,
      slotsRunning,
      runningTwice,
      ...(flapReport ? { flap: flapReport } : {}),
      managerRssMiB: {
        shoaldPeak: Math.round(shoaldPeak),
        etcdPeak: Math.round(etcdPeak),
        totalPeak: Math.round(shoaldPeak + etcdPeak),
      },
      rssAtPeak,
      ...(process.env.SHOAL_BENCH_VARIANT ? { variant: process.env.SHOAL_BENCH_VARIANT } : {}),
      cpu,
      etcd: {
        puts: diff('etcd_mvcc_put_total'),
        deletes: diff('etcd_mvcc_delete_total'),
        txns: diff('etcd_mvcc_txn_total'),
        proposalsCommitted: diff('etcd_server_proposals_committed_total'),
        // Where etcd's time goes: WAL fsyncs and backend (bbolt) commits during the run.
        walFsyncs: diff('etcd_disk_wal_fsync_duration_seconds_count'),
        walFsyncMeanMs: mean('etcd_disk_wal_fsync_duration_seconds'),
        backendCommitMeanMs: mean('etcd_disk_backend_commit_duration_seconds'),
        dbBytesInUse: after.etcd_mvcc_db_total_size_in_use_in_bytes ?? 0,
        dbBytesPerTask: Math.round((after.etcd_mvcc_db_total_size_in_use_in_bytes ?? 0) / tasks),
        diskSeconds: Math.round(
          diff('etcd_disk_wal_fsync_duration_seconds_sum') + diff('etcd_disk_backend_commit_duration_seconds_sum'),
        ),
      },
      ...(limit ? { limit } : {}),
    };
  } finally {
    await Promise.all(simPids.map((pid) => stopProcess(pid, 'SIGTERM', 5000)));
    if (flapPid) {
      try {
        process.kill(flapPid, 'SIGCONT');
      } catch {
        /* gone */
      }
      await stopProcess(flapPid, 'SIGTERM', 5000);
    }
    // SHOAL_BENCH_KEEP_LOG=<file>: keep shoald's log (run with SHOAL_LOG_LEVEL=debug for loop passes).
    if (process.env.SHOAL_BENCH_KEEP_LOG)
      fs.copyFileSync(path.join(d.dir, 'shoald.log'), process.env.SHOAL_BENCH_KEEP_LOG);
    await d.destroy();
  }
}

export function printControlPlane(r: ControlPlaneResult): void {
  const services = r.services.map((s) => `${s.count} × ${s.replicas}`).join(' + ');
  printTable(`control plane: ${r.nodes} simulated nodes, ${r.tasks} replicas (${services})`, [
    ['nodes joined (certificates + sessions)', `${r.joinMs} ms`],
    [
      'service create → all RUNNING',
      r.allRunningMs === null ? `not reached: ${r.limit}` : `${(r.allRunningMs / 1000).toFixed(1)} s`,
    ],
    ['tasks/s', String(r.tasksPerSecond ?? '-')],
    ['running on the simulated nodes', String(r.agentsRunning)],
    [
      `running tasks / distinct slots running${r.perTaskChecksOn ? ` (${r.perTaskChecksOn})` : ''}`,
      `${r.runningSeen} / ${r.slotsRunning}`,
    ],
    [
      'slots running twice: old copy on a DOWN node / both desired running / other',
      `${r.runningTwice.oldOnDownNode} / ${r.runningTwice.bothDesiredRunning} / ${r.runningTwice.other}`,
    ],
    ['create → RUNNING per task p50 / p99', `${r.createToRunningMs.p50} / ${r.createToRunningMs.p99} ms`],
    [
      'manager peak RSS shoald + etcd',
      `${r.managerRssMiB.shoaldPeak} + ${r.managerRssMiB.etcdPeak} = ${r.managerRssMiB.totalPeak} MiB`,
    ],
    [
      'etcd writes: puts / deletes / txns / proposals',
      `${r.etcd.puts} / ${r.etcd.deletes} / ${r.etcd.txns} / ${r.etcd.proposalsCommitted}`,
    ],
    [
      'CPU seconds shoald / etcd / simulated nodes (load average)',
      `${r.cpu.shoald} / ${r.cpu.etcd} / ${r.cpu.sim} (${r.cpu.loadAverage})`,
    ],
    [
      'etcd disk: WAL fsyncs, mean fsync / backend commit',
      `${r.etcd.walFsyncs}, ${r.etcd.walFsyncMeanMs} / ${r.etcd.backendCommitMeanMs} ms (${r.etcd.diskSeconds} s in all)`,
    ],
    ['etcd backend in use (per task)', `${Math.round(r.etcd.dbBytesInUse / 2 ** 20)} MiB (${r.etcd.dbBytesPerTask} B)`],
  ]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const nodes = Number(process.argv[2] ?? 100);
  // `c1m:100` is the same mix with every service 100 times smaller (a quick run of the same shape).
  const c1m = /^c1m(?::(\d+))?$/.exec(process.argv[3] ?? '');
  const tasks = c1m
    ? C1M_MIX.map((r) => Math.max(1, Math.round(r / Number(c1m[1] ?? 1))))
    : Number(process.argv[3] ?? 10_000);
  const r = await controlPlane(nodes, tasks, Number(process.argv[4] ?? 300) * 1000);
  printControlPlane(r);
  console.log(`written ${writeReport(`control-plane-${nodes}x${c1m ? c1m[0].replace(':', '-') : r.tasks}`, r)}`);
}
