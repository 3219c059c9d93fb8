import os from 'node:os';
import path from 'node:path';

/** What one daemon was started with. Every path a daemon touches lives under these roots. */
export interface DaemonConfig {
  /** Persistent state: images, containers' config, swarm state. */
  dataRoot: string;
  /** Runtime state that dies with the machine: runc root, conmon sockets, pid files. */
  execRoot: string;
  /** Registries reached over plain HTTP (HOST:PORT). */
  insecureRegistries: string[];
  /** Engine labels (`--label k=v`). */
  labels: Record<string, string>;
  hostname: string;
  /** Engine API address, e.g. unix:///run/shoal/shoal.sock. */
  host: string;
}

export function defaultConfig(): DaemonConfig {
  return {
    dataRoot: '/var/lib/shoal',
    execRoot: '/run/shoal',
    insecureRegistries: [],
    labels: {},
    hostname: os.hostname(),
    host: 'unix:///run/shoal/shoal.sock',
  };
}

/** Where things live under the two roots, so no two modules invent the same path twice. */
export function daemonPaths(cfg: DaemonConfig) {
  return {
    images: path.join(cfg.dataRoot, 'image'),
    layers: path.join(cfg.dataRoot, 'overlay'),
    containers: path.join(cfg.dataRoot, 'containers'),
    swarm: path.join(cfg.dataRoot, 'swarm'),
    runcRoot: path.join(cfg.execRoot, 'runc'),
    conmon: path.join(cfg.execRoot, 'conmon'),
    exits: path.join(cfg.execRoot, 'exits'),
    network: path.join(cfg.execRoot, 'network'),
  };
}

export const SHOAL_VERSION = '0.1.0';
/** The Engine version `docker version` and `node ls` show. */
export const ENGINE_VERSION = '20.10.0-shoal';
