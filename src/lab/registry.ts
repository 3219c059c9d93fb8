import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { inNetns } from '../engine/network/ip.js';
import { netnsPath } from './network.js';
import { alive } from './sweep.js';

/** Debian's docker-registry (distribution v2), the lab's one registry. */

export interface RegistrySpec {
  /** The hub namespace: on the lab bridge, so every machine reaches it. */
  ns: string;
  dir: string;
  /** HOST:PORT it listens on. */
  address: string;
}

function configYaml(spec: RegistrySpec): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(spec.dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${spec.address}`,
    '',
  ].join('\n');
}

/** True when the registry answers `GET /v2/` (asked from inside the hub namespace). */
export async function registryAnswers(spec: RegistrySpec): Promise<boolean> {
  const r = await inNetns(
    { kind: 'named', name: spec.ns },
    'curl',
    ['-sf', '-m', '2', '-o', '/dev/null', `http://${spec.address}/v2/`],
    { allowFail: true },
  );
  return r.code === 0;
}

export function registryRunning(pid: number | undefined, spec: RegistrySpec): boolean {
  if (!pid || !alive(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path.join(spec.dir, 'config.yml'));
  } catch {
    return false;
  }
}

/** Starts the registry detached in the hub namespace and waits until it answers; returns its PID. */
export async function startRegistry(spec: RegistrySpec, timeoutMs = 30_000): Promise<number> {
  fs.mkdirSync(spec.dir, { recursive: true });
  const config = path.join(spec.dir, 'config.yml');
  fs.writeFileSync(config, configYaml(spec));
  const log = path.join(spec.dir, 'registry.log');
  const fd = fs.openSync(log, 'a');
  const child = spawn('nsenter', [`--net=${netnsPath(spec.ns)}`, '--', 'docker-registry', 'serve', config], {
    stdio: ['ignore', fd, fd],
    detached: true,
    cwd: spec.dir,
  });
  fs.closeSync(fd);
  child.unref();
  if (!child.pid) throw new Error('could not start docker-registry');
  const deadline = Date.now() + timeoutMs;
  while (!(await registryAnswers(spec))) {
    if (child.exitCode !== null)
      throw new Error(`docker-registry exited with ${child.exitCode}: ${fs.readFileSync(log, 'utf8').slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${spec.address} (log: ${log})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return child.pid;
}
