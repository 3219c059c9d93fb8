import http from 'node:http';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { TASK_STATES, type NodeState } from '../cluster/types.js';
import type { SwarmNode } from '../node/node.js';
import type { Engine } from '../engine/engine.js';
import type { Manager } from '../manager/manager.js';
import { managerMetrics } from '../manager/metrics.js';
import type { Logger } from '../util/log.js';

const NODE_STATES: NodeState[] = ['unknown', 'down', 'ready', 'disconnected'];

/**
 * The node's Prometheus metrics (`shoald --metrics-addr`, as dockerd's flag): the process's own
 * (prom-client's defaults: memory, event-loop lag, ...), the engine's containers by state
 * (dockerd's engine_daemon_container_states_containers), and on a manager the swarm as swarmkit
 * names it (swarm_manager_*). Every value is read from memory at scrape time.
 */
export function metricsRegistry(engine: Engine, swarm: SwarmNode): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const manager = (): Manager | undefined => {
    try {
      return swarm.isManager ? swarm.requireManager() : undefined;
    } catch {
      return undefined; // locked or without quorum: no swarm figures rather than stale ones
    }
  };
  new Gauge({
    name: 'engine_daemon_container_states_containers',
    help: 'The count of containers in various states',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const n = { running: 0, paused: 0, stopped: 0 };
      for (const r of engine.containers.all()) {
        const s = r.state.Status;
        n[s === 'paused' ? 'paused' : s === 'running' || s === 'restarting' ? 'running' : 'stopped']++;
      }
      for (const [state, v] of Object.entries(n)) this.set({ state }, v);
    },
  });
  /** A gauge of the swarm on a manager, one series per value of `label`, as `counts` reads them. */
  const byLabel = (name: string, help: string, label: string, counts: (m: Manager) => [string, number][]) =>
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        const m = manager();
        if (!m) return;
        for (const [value, n] of counts(m)) this.set({ [label]: value }, n);
      },
    });
  byLabel('swarm_manager_nodes', 'The number of nodes in the swarm, by state (managers only)', 'state', (m) => {
    const nodes = m.store.view('nodes');
    return NODE_STATES.map((state) => [state, nodes.filter((x) => x.Status.State === state).length]);
  });
  byLabel('swarm_manager_nodes_by_role', 'The number of nodes in the swarm, by role (managers only)', 'role', (m) => {
    const nodes = m.store.view('nodes');
    return (['manager', 'worker'] as const).map((role) => [role, nodes.filter((x) => x.Spec.Role === role).length]);
  });
  byLabel(
    'swarm_manager_tasks_total',
    'The number of tasks in the swarm, by observed state (managers only)',
    'state',
    (m) => TASK_STATES.map((state) => [state, m.store.tasksBy('state', state).length]),
  );
  /** A gauge of the swarm on a manager: one value, as `read` reads it. */
  const single = (name: string, help: string, read: (m: Manager) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        const m = manager();
        if (m) this.set(read(m));
      },
    });
  single(
    'swarm_manager_services_total',
    'The number of services in the swarm (managers only)',
    (m) => m.store.view('services').length,
  );
  single('swarm_manager_leader', '1 on the manager that is the swarm leader, 0 on the others', (m) =>
    m.election.isLeader ? 1 : 0,
  );
  single(
    'swarm_dispatcher_sessions',
    "Agent sessions open on this manager's dispatcher",
    (m) => m.dispatcher.sessionCount,
  );
  // Recorded by the manager as it works (store commits, scheduler passes, heartbeats).
  for (const metric of Object.values(managerMetrics)) registry.registerMetric(metric);
  return registry;
}

/** `--metrics-addr HOST:PORT` (an IPv6 host in brackets); throws a message naming the flag. */
export function parseMetricsAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(addr.slice(i + 1));
  if (i < 1 || !host || addr.slice(i + 1) === '' || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--metrics-addr ${addr}: want HOST:PORT`);
  return { host, port };
}

/** Serves GET /metrics on `addr` (host:port) in the text exposition format. */
export async function serveMetrics(addr: string, registry: Registry, log: Logger): Promise<http.Server> {
  const { host, port } = parseMetricsAddr(addr);
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      (err: unknown) => {
        log.warn({ err }, 'metrics scrape failed');
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  log.info({ addr }, 'metrics endpoint listening');
  return server;
}
