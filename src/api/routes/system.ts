import os from 'node:os';
import type { Router } from '../router.js';
import type { Engine } from '../../engine/engine.js';
import { API_VERSION, MIN_API_VERSION } from '../version.js';
import { ENGINE_VERSION, SHOAL_VERSION } from '../../engine/config.js';
import { streamEvents } from './events.js';
import { diskUsage } from '../../engine/disk-usage.js';
import { badRequest } from '../../util/errors.js';
import { inactiveSwarmInfo, type SwarmNode } from '../../node/node.js';

/** `/_ping`, `/version`, `/info`, `/events`: what the CLI asks before anything else. */
export function systemRoutes(router: Router, engine: Engine, swarm?: SwarmNode): void {
  const ping = () => ({
    body: 'OK',
    headers: {
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-cache, no-store, must-revalidate',
      Pragma: 'no-cache',
    },
  });
  router.get('/_ping', ping);
  router.head('/_ping', ping);

  router.get('/version', () => ({ body: versionBody() }));

  router.get('/info', () => {
    const c = engine.containers.counts();
    return {
      body: {
        ID: engine.config.hostname,
        Containers: c.total,
        ContainersRunning: c.running,
        ContainersPaused: c.paused,
        ContainersStopped: c.stopped,
        Images: engine.images.count(),
        Driver: 'overlay2',
        DriverStatus: [['Backing Filesystem', 'extfs']],
        Plugins: {
          Volume: ['local'],
          Network: ['bridge', 'host', 'null', 'overlay'],
          Authorization: null,
          Log: ['json-file'],
        },
        MemoryLimit: true,
        SwapLimit: false,
        CpuCfsPeriod: true,
        CpuCfsQuota: true,
        CPUShares: true,
        CPUSet: true,
        PidsLimit: true,
        IPv4Forwarding: true,
        Debug: false,
        NFd: 0,
        NGoroutines: 0,
        SystemTime: new Date().toISOString(),
        LoggingDriver: 'json-file',
        CgroupDriver: 'cgroupfs',
        CgroupVersion: '1',
        NEventsListener: 0,
        KernelVersion: os.release(),
        OperatingSystem: 'shoal',
        OSVersion: '',
        OSType: 'linux',
        Architecture: os.arch() === 'x64' ? 'x86_64' : os.arch(),
        IndexServerAddress: 'https://index.docker.io/v1/',
        RegistryConfig: {
          InsecureRegistryCIDRs: ['127.0.0.0/8'],
          IndexConfigs: Object.fromEntries(
            engine.config.insecureRegistries.map((r) => [r, { Name: r, Mirrors: [], Secure: false, Official: false }]),
          ),
          Mirrors: [],
        },
        NCPU: os.cpus().length,
        MemTotal: os.totalmem(),
        DockerRootDir: engine.config.dataRoot,
        Name: engine.config.hostname,
        Labels: Object.entries(engine.config.labels).map(([k, v]) => `${k}=${v}`),
        ExperimentalBuild: false,
        ServerVersion: ENGINE_VERSION,
        Runtimes: { runc: { path: 'runc' } },
        DefaultRuntime: 'runc',
        Swarm: swarm ? swarm.info() : inactiveSwarmInfo(),
        LiveRestoreEnabled: true,
        Isolation: '',
        InitBinary: '',
        SecurityOptions: [],
        Warnings: [],
      },
    };
  });

  router.get('/system/df', (ctx) => {
    const types = new Set(ctx.query.getAll('type'));
    for (const t of types)
      if (!['container', 'image', 'volume', 'build-cache'].includes(t))
        throw badRequest(`type (${t}) must be one of container, image, volume, build-cache`);
    return { body: diskUsage(engine, types) };
  });

  router.get('/events', (ctx) => streamEvents(ctx, engine.events));
}

export function versionBody() {
  return {
    Platform: { Name: 'shoal' },
    Components: [
      {
        Name: 'Engine',
        Version: ENGINE_VERSION,
        Details: {
          ApiVersion: API_VERSION,
          MinAPIVersion: MIN_API_VERSION,
          Os: 'linux',
          Arch: 'amd64',
          shoal: SHOAL_VERSION,
        },
      },
    ],
    Version: ENGINE_VERSION,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: 'shoal',
    GoVersion: `node ${process.version}`,
    Os: 'linux',
    Arch: 'amd64',
    KernelVersion: os.release(),
    BuildTime: new Date(0).toISOString(),
  };
}
