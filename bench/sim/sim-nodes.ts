/**
 * Many simulated swarm nodes in one process. Each one joins like `docker swarm join` does
 * (fetch the root CA, check it against the token's digest, send a CSR with the token), then
 * runs its own AgentSession (its own mTLS gRPC connection, heartbeats, assignments, status
 * reports) and a real Worker on a SimulatedExecutor.
 *
 *   node dist/bench/sim/sim-nodes.js <manager host:port[,host:port…]> <join token> <count> [first index]
 *
 * Several managers: nodes join through the first and their sessions fail over among all.
 *
 * Prints JSON lines on stdout: {"joined":n,"ms":…,"retries":n} once all joined, then every second
 * {"running":n,"tasks":n,"connected":n}. Stops on SIGTERM.
 */
import { AgentSession } from '../../src/agent/session/session.js';
import { Worker } from '../../src/agent/worker/worker.js';
import { SimulatedExecutor } from '../../src/agent/executor/simulated.js';
import { fetchRootCA, joinSimNode, simNodeDescription } from '../../test/helpers/sim-node.js';
import { createLogger } from '../../src/util/log.js';

const [managerArg, token, countArg, firstArg] = process.argv.slice(2);
const managerList = managerArg.split(',');
const manager = managerList[0];
const count = Number(countArg);
const first = Number(firstArg ?? 0);
const log = createLogger('sim-nodes', process.env.SHOAL_SIM_LOG_LEVEL ?? 'warn');
/**
 * Joins in flight: each mostly waits on the manager (signing, etcd writes), so several overlap;
 * on a loaded machine (load 20 on 2 cores) 64 at once made joins time out, so fewer, each with
 * a long timeout and retried (SHOAL_SIM_JOIN_CONCURRENCY overrides).
 */
const JOIN_CONCURRENCY = Number(process.env.SHOAL_SIM_JOIN_CONCURRENCY ?? 16);
const JOIN_TIMEOUT_MS = 180_000;
const JOIN_ATTEMPTS = 5;
let joinRetries = 0;

/**
 * One node's join, tried again after a failure (a timeout under load). A timed-out attempt the
 * manager finished anyway leaves a node that never connects: it turns Down, and is counted.
 */
async function joinWithRetry(rootPem: string, name: string): ReturnType<typeof joinSimNode> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await joinSimNode(manager, token, rootPem, name, JOIN_TIMEOUT_MS);
    } catch (e) {
      if (attempt >= JOIN_ATTEMPTS) throw e;
      joinRetries++;
      console.error(`${(e as Error).message}; retrying (${attempt}/${JOIN_ATTEMPTS - 1})`);
      await new Promise((r) => setTimeout(r, 2000 * attempt));
    }
  }
}

interface SimNode {
  name: string;
  nodeId: string;
  session: AgentSession;
  worker: Worker;
}

let rootPem: string;

async function main(): Promise<void> {
  rootPem = await fetchRootCA(manager, token);

  const nodes: SimNode[] = [];
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(JOIN_CONCURRENCY, count) }, async () => {
      while (next < count) {
        const name = `sim-${String(first + next++).padStart(5, '0')}`;
        const { nodeId, tls } = await joinWithRetry(rootPem, name);
        const session = new AgentSession({
          log,
          tls: () => tls,
          managers: () => managerList,
          onManagers: () => undefined,
          description: () => simNodeDescription(name, rootPem),
          addr: '127.0.0.1',
        });
        const worker = new Worker(session, new SimulatedExecutor(nodeId.slice(0, 8)), () => nodeId, log);
        worker.start();
        session.start();
        nodes.push({ name, nodeId, session, worker });
      }
    }),
  );
  // Joined means every session is registered (the node is READY on the manager).
  while (nodes.some((n) => !n.session.connected)) await new Promise((r) => setTimeout(r, 100));
  console.log(JSON.stringify({ joined: nodes.length, ms: Math.round(performance.now() - t0), retries: joinRetries }));

  const timer = setInterval(() => {
    let running = 0;
    let tasks = 0;
    let connected = 0;
    for (const n of nodes) {
      if (n.session.connected) connected++;
      for (const s of n.worker.states().values()) {
        tasks++;
        if (s === 'running') running++;
      }
    }
    console.log(JSON.stringify({ running, tasks, connected }));
  }, 1000);
  process.on('SIGTERM', () => {
    clearInterval(timer);
    for (const n of nodes) {
      n.worker.stop();
      n.session.stop();
    }
    setTimeout(() => process.exit(0), 200);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
