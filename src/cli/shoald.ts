import { Command } from 'commander';
import fs from 'node:fs';
import { createLogger } from '../util/log.js';
import { defaultConfig, type DaemonConfig } from '../engine/config.js';
import { Engine } from '../engine/engine.js';
import { ApiServer } from '../api/server.js';
import { buildRouter } from '../api/routes/index.js';
import { SwarmNode } from '../cluster/swarm-node.js';
import '../manager/control-loops.js';
import { Worker } from '../agent/worker/worker.js';
import { ContainerExecutor } from '../agent/executor/container-executor.js';
import { NetworkAgent } from '../agent/network-agent.js';
import { LogAgent } from '../agent/logs.js';

const collect = (v: string, prev: string[]) => [...prev, v];

const program = new Command('shoald')
  .description('shoal daemon: a Docker Engine API for this machine and its swarm')
  .option('-H, --host <address>', 'Engine API socket (unix:///path or tcp://host:port)', defaultConfig().host)
  .option('--data-root <dir>', 'persistent state', defaultConfig().dataRoot)
  .option('--exec-root <dir>', 'runtime state', defaultConfig().execRoot)
  .option('--insecure-registry <host:port>', 'registry reached over plain HTTP (repeatable)', collect, [])
  .option('--label <k=v>', 'engine label (repeatable)', collect, [])
  .option('--hostname <name>', 'node name shown by docker info and node ls')
  .option('--network-sandbox-prefix <prefix>', 'names of this node\'s overlay sandbox namespaces in /run/netns (default: sh + node ID)')
  .option('--log-level <level>', 'debug, info, warn, error', process.env.SHOAL_LOG_LEVEL ?? 'info')
  .parse();

const opts = program.opts<{ host: string; dataRoot: string; execRoot: string; insecureRegistry: string[]; label: string[]; hostname?: string; logLevel: string; networkSandboxPrefix?: string }>();
const log = createLogger('shoald', opts.logLevel);

const config: DaemonConfig = {
  ...defaultConfig(),
  host: opts.host,
  dataRoot: opts.dataRoot,
  execRoot: opts.execRoot,
  insecureRegistries: opts.insecureRegistry,
  labels: Object.fromEntries(opts.label.map((l) => { const i = l.indexOf('='); return i < 0 ? [l, ''] : [l.slice(0, i), l.slice(i + 1)]; })),
  ...(opts.hostname ? { hostname: opts.hostname } : {}),
};

async function main(): Promise<void> {
  fs.mkdirSync(config.dataRoot, { recursive: true });
  fs.mkdirSync(config.execRoot, { recursive: true });
  const engine = await Engine.open(config, log);
  const swarm = new SwarmNode(config, log.child({ part: 'swarm' }));
  const worker = new Worker(swarm.link, new ContainerExecutor(engine, log.child({ part: 'executor' }), () => swarm.description()), () => swarm.nodeId, log.child({ part: 'worker' }));
  const network = new NetworkAgent(engine, swarm, log.child({ part: 'network' }), opts.networkSandboxPrefix);
  network.start();
  const logs = new LogAgent(engine.containers, swarm, log.child({ part: 'logs' }));
  logs.start();
  worker.start();
  await swarm.open();
  const api = new ApiServer(buildRouter(engine, swarm, network), log);
  await api.listen(config.host);
  log.info({ host: config.host, dataRoot: config.dataRoot }, 'shoald ready');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shoald stopping; containers keep running');
    await api.close();
    worker.stop();
    logs.stop();
    await network.stop();
    await swarm.close();
    await engine.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((e) => {
  log.fatal({ err: e }, 'shoald failed to start');
  process.exit(1);
});
