import { Counter, Histogram } from 'prom-client';

/**
 * The manager's own instruments, recorded where the work happens (store, scheduler,
 * dispatcher) and registered in no registry here: api/metrics.ts adds them to the registry
 * it serves. One set per process, like shoald's one manager at a time.
 */
const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const managerMetrics = {
  /** etcd transaction(s) of one commit: sent until etcd answered. */
  storeWrite: new Histogram({
    name: 'swarm_store_write_latency_seconds',
    help: 'Time for etcd to answer a store commit (its transactions)',
    buckets,
    registers: [],
  }),
  /** After etcd answered, until this manager's watch brought the write into its cache. */
  storeWatch: new Histogram({
    name: 'swarm_store_watch_latency_seconds',
    help: 'Time from etcd answering a commit until the store watch delivered it to the cache',
    buckets,
    registers: [],
  }),
  schedulerPass: new Histogram({
    name: 'swarm_scheduler_pass_seconds',
    help: 'Time of one scheduling pass over the pending tasks',
    buckets,
    registers: [],
  }),
  heartbeats: new Counter({
    name: 'swarm_dispatcher_heartbeats_total',
    help: "Agent heartbeats this manager's dispatcher answered",
    registers: [],
  }),
};
