import { Command } from 'commander';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../util/log.js';
import { defaultConfig, type DaemonConfig } from '../engine/config.js';
import { Engine } from '../engine/engine.js';
import { ApiServer } from '../api/server.js';
import { ApiTls, isLoopbackHost, loadTlsFiles, TlsConfigError } from '../api/tls.js';
import { AccessControl } from '../api/access/access-control.js';
import { AuditLog } from '../api/access/audit.js';
import { loadRoleMap, type RoleMap } from '../api/access/identity.js';
import { buildRouter } from '../api/routes/index.js';
import { SwarmNode } from '../node/node.js';
import { Worker } from '../agent/worker/worker.js';
import { ContainerExecutor } from '../agent/executor/container-executor.js';
import { NetworkAgent } from '../agent/network-agent.js';
import { ImageSharing } from '../agent/image-sharing.js';
import { LogAgent } from '../agent/logs.js';
import { metricsRegistry, parseMetricsAddr, serveMetrics } from '../api/metrics.js';
import { DashboardFeed } from '../api/dashboard/feed.js';
import { DashboardServer, parseDashboardAddr } from '../api/dashboard/server.js';
import { DashboardToken } from '../api/dashboard/token.js';
import { shoalDashboardRoutes } from '../api/routes/shoal-dashboard.js';

const collect = (v: string, prev: string[]) => [...prev, v];
/** dockerd's defaults: the files in DOCKER_CERT_PATH or ~/.docker. */
const certDefault = (f: string) => path.join(process.env.DOCKER_CERT_PATH ?? path.join(os.homedir(), '.docker'), f);

const program = new Command('shoald')
  .description('shoal daemon: a Docker Engine API for this machine and its swarm')
  .option('-H, --host <address>', 'Engine API socket (unix:///path or tcp://host:port; repeatable)', collect, [])
  .option(
    '--tlsverify',
    'TCP sockets speak TLS and require a client certificate signed by --tlscacert (or by the swarm root CA)',
  )
  .option('--tlscacert <file>', 'CA bundle client certificates must chain to', certDefault('ca.pem'))
  .option('--tlscert <file>', "this daemon's TLS certificate", certDefault('cert.pem'))
  .option('--tlskey <file>', "this daemon's TLS key", certDefault('key.pem'))
  .option('--insecure-api', 'allow plain HTTP on a TCP address other than loopback (anyone who reaches it is root)')
  .option('--api-roles <file>', 'JSON role map for client certificates: {"subjects": {"CN=alice": "admin"}}')
  .option('--data-root <dir>', 'persistent state', defaultConfig().dataRoot)
  .option('--exec-root <dir>', 'runtime state', defaultConfig().execRoot)
  .option('--insecure-registry <host:port>', 'registry reached over plain HTTP (repeatable)', collect, [])
  .option('--label <k=v>', 'engine label (repeatable)', collect, [])
  .option('--hostname <name>', 'node name shown by docker info and node ls')
  .option(
    '--network-sandbox-prefix <prefix>',
    "names of this node's overlay sandbox namespaces in /run/netns (default: sh + node ID)",
  )
  .option('--metrics-addr <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (off by default)')
  .option(
    '--dashboard-addr <host:port>',
    'serve the live dashboard at http://HOST:PORT/ on managers (off by default; login: shoal dashboard token)',
  )
  .option('--log-level <level>', 'debug, info, warn, error', process.env.SHOAL_LOG_LEVEL ?? 'info')
  .parse();

const opts = program.opts<{
  host: string[];
  tlsverify?: boolean;
  tlscacert: string;
  tlscert: string;
  tlskey: string;
  insecureApi?: boolean;
  apiRoles?: string;
  dataRoot: string;
  execRoot: string;
  insecureRegistry: string[];
  label: string[];
  hostname?: string;
  logLevel: string;
  networkSandboxPrefix?: string;
  metricsAddr?: string;
  dashboardAddr?: string;
}>();
const log = createLogger('shoald', opts.logLevel);

const config: DaemonConfig = {
  ...defaultConfig(),
  host: opts.host[0] ?? defaultConfig().host,
  dataRoot: opts.dataRoot,
  execRoot: opts.execRoot,
  insecureRegistries: opts.insecureRegistry,
  labels: Object.fromEntries(
    opts.label.map((l) => {
      const i = l.indexOf('=');
      return i < 0 ? [l, ''] : [l.slice(0, i), l.slice(i + 1)];
    }),
  ),
  ...(opts.hostname ? { hostname: opts.hostname } : {}),
};

/**
 * Checks the API flags before anything starts: every -H parses, TCP without --tlsverify only
 * on loopback (or with --insecure-api), the TLS files are readable and consistent.
 */
function checkApiFlags(): { hosts: string[]; roles?: RoleMap } {
  const hosts = opts.host.length ? opts.host : [defaultConfig().host];
  for (const h of hosts) {
    let url: URL;
    try {
      url = new URL(h);
    } catch {
      throw new TlsConfigError(`-H ${h}: not an address (want unix:///path or tcp://host:port)`);
    }
    if (url.protocol !== 'unix:' && url.protocol !== 'tcp:')
      throw new TlsConfigError(`-H ${h}: unsupported scheme ${url.protocol} (want unix:// or tcp://)`);
    if (url.protocol === 'tcp:' && !opts.tlsverify && !isLoopbackHost(url.hostname) && !opts.insecureApi) {
      throw new TlsConfigError(
        `-H ${h}: refusing plain HTTP on a non-loopback address (anyone who reaches it is root on this machine): use --tlsverify with --tlscacert, --tlscert and --tlskey, or --insecure-api to accept the risk`,
      );
    }
  }
  if (opts.tlsverify) loadTlsFiles({ ca: opts.tlscacert, cert: opts.tlscert, key: opts.tlskey });
  if (opts.metricsAddr) parseMetricsAddr(opts.metricsAddr);
  if (opts.dashboardAddr) parseDashboardAddr(opts.dashboardAddr);
  return { hosts, ...(opts.apiRoles ? { roles: loadRoleMap(opts.apiRoles) } : {}) };
}

/** SIGHUP re-reads the API's TLS files (shoal machine regenerate-certs); never the default, which exits. */
let onHangup = () => {};
process.on('SIGHUP', () => onHangup());

async function main(): Promise<void> {
  const api0 = checkApiFlags();
  fs.mkdirSync(config.dataRoot, { recursive: true });
  fs.mkdirSync(config.execRoot, { recursive: true });
  const engine = await Engine.open(config, log);
  const swarm = new SwarmNode(config, log.child({ part: 'swarm' }));
  // Swarm events join the node's own in `docker events` (dockerd shows both, scope swarm/local).
  swarm.onSwarmEvent((e) => engine.events.publish(e));
  const dashboardFeed = opts.dashboardAddr ? new DashboardFeed(swarm) : undefined;
  if (dashboardFeed) swarm.onSwarmEvent((e) => dashboardFeed.event(e));
  // Before the swarm starts (etcd): a bad --metrics-addr stops shoald with nothing left running.
  const metrics = opts.metricsAddr
    ? await serveMetrics(opts.metricsAddr, metricsRegistry(engine, swarm), log.child({ part: 'metrics' }))
    : undefined;
  const imageSharing = new ImageSharing(engine, swarm, log.child({ part: 'image-sharing' }));
  const worker = new Worker(
    swarm.link,
    new ContainerExecutor(engine, log.child({ part: 'executor' }), () => swarm.description(), imageSharing),
    () => swarm.nodeId,
    log.child({ part: 'worker' }),
  );
  const network = new NetworkAgent(engine, swarm, log.child({ part: 'network' }), opts.networkSandboxPrefix);
  network.start();
  const logs = new LogAgent(engine.containers, swarm, log.child({ part: 'logs' }));
  logs.start();
  worker.start();
  imageSharing.start();
  await swarm.open();
  const access = new AccessControl(
    new AuditLog(path.join(config.dataRoot, 'audit')),
    api0.roles,
    log.child({ part: 'access' }),
  );
  const tls = opts.tlsverify
    ? () =>
        new ApiTls(
          { ca: opts.tlscacert, cert: opts.tlscert, key: opts.tlskey },
          () => swarm.apiClientCAPem(),
          log.child({ part: 'api-tls' }),
        )
    : undefined;
  const dashboardToken = new DashboardToken(swarm);
  const router = buildRouter(engine, swarm, network, {
    serverCA: () => (tls ? fs.readFileSync(opts.tlscacert, 'utf8') : undefined),
  });
  shoalDashboardRoutes(router, swarm);
  const api = new ApiServer(router, log, access);
  for (const h of api0.hosts) await api.listen(h, h.startsWith('tcp:') ? tls?.() : undefined);
  // The dashboard: only where --dashboard-addr says; HTTPS with the API's certificates under --tlsverify.
  const dashboardTls = opts.dashboardAddr && tls ? tls() : undefined;
  dashboardTls?.watch((o) => dashboard?.setTls(o));
  const dashboard = opts.dashboardAddr
    ? new DashboardServer(dashboardFeed!, dashboardToken, log.child({ part: 'dashboard' }), {
        ...(dashboardTls ? { tls: dashboardTls.options() } : {}),
        ...(api0.roles ? { roles: api0.roles } : {}),
      })
    : undefined;
  await dashboard?.listen(opts.dashboardAddr!);
  onHangup = () => {
    api.reloadTls();
    dashboardTls?.reload();
  };
  dashboardFeed?.start();
  log.info({ hosts: api0.hosts, tlsverify: !!opts.tlsverify, dataRoot: config.dataRoot }, 'shoald ready');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shoald stopping; containers keep running');
    await api.close();
    metrics?.close();
    dashboard?.close();
    dashboardFeed?.stop();
    dashboardTls?.stop();
    worker.stop();
    imageSharing.stop();
    logs.stop();
    await network.stop();
    await swarm.close();
    await engine.close();
    process.exit(0);
  };
  // A failed shutdown still ends the process, as the unhandled rejection did, but says why.
  const stopLogged = (sig: string) =>
    void stop(sig).catch((err: unknown) => {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  process.on('SIGTERM', () => stopLogged('SIGTERM'));
  process.on('SIGINT', () => stopLogged('SIGINT'));
}

main().catch((e) => {
  if (
    e instanceof TlsConfigError ||
    (e as Error).message?.startsWith('--api-roles') ||
    (e as Error).message?.startsWith('--metrics-addr') ||
    (e as Error).message?.startsWith('--dashboard-addr')
  ) {
    console.error(`shoald: ${(e as Error).message}`);
    process.exit(1);
  }
  log.fatal({ err: e }, 'shoald failed to start');
  process.exit(1);
});
