import fs from 'node:fs';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { run, type RunOptions, type RunResult } from '../../src/util/run.js';
import { DOCKER, REPO_ROOT, TEST_ROOT } from './daemon.js';
import { pushMicro } from './micro.js';
import { uniqueName } from './netns.js';

export const SHOAL_JS = path.join(REPO_ROOT, 'dist/src/cli/shoal.js');

export interface TestLab {
  labDir: string;
  prefix: string;
  subnet: string;
  /** The environment that points `shoal machine` at this lab. */
  env: NodeJS.ProcessEnv;
  /** Runs `shoal machine ARGS…` against this lab (throws on a non-zero exit unless allowFail). */
  machine(args: string[], opts?: RunOptions): Promise<RunResult>;
  /** DOCKER_HOST of a machine, read from `shoal machine env NAME` as a user's `eval` would. */
  dockerHost(name: string): Promise<string>;
  /** The real docker CLI against a machine's daemon. */
  docker(name: string, args: string[], opts?: RunOptions): Promise<RunResult>;
  /** A command inside a machine, through `shoal machine ssh NAME -- CMD…`. */
  ssh(name: string, cmd: string[], opts?: RunOptions): Promise<RunResult>;
  /** `shoal machine prune`; safe to call twice. */
  prune(): Promise<void>;
}

/**
 * A lab of its own: a unique directory, namespace prefix and subnet, so concurrent runs (and
 * other engineers' labs) never meet.
 */
export function newTestLab(): TestLab {
  const prefix = uniqueName('shlt');
  const labDir = path.join(TEST_ROOT, prefix);
  // Any /24 works (labs are isolated in their own namespaces); a random one keeps runs apart anyway.
  const subnet = `192.168.${randomInt(100, 250)}.0/24`;
  const env = {
    ...process.env,
    SHOAL_LAB_DIR: labDir,
    SHOAL_LAB_PREFIX: prefix,
    SHOAL_LAB_SUBNET: subnet,
    DOCKER_CLI_HINTS: 'false',
  };
  const hosts = new Map<string, string>();
  const lab: TestLab = {
    labDir,
    prefix,
    subnet,
    env,
    machine: (args, o = {}) =>
      run(process.execPath, ['--enable-source-maps', SHOAL_JS, 'machine', ...args], {
        ...o,
        env: { ...env, ...(o.env ?? {}) },
      }),
    async dockerHost(name) {
      const known = hosts.get(name);
      if (known) return known;
      const out = (await lab.machine(['env', name])).stdout;
      const m = /^export DOCKER_HOST="([^"]+)"$/m.exec(out);
      if (!m) throw new Error(`shoal machine env ${name} printed no DOCKER_HOST: ${out}`);
      hosts.set(name, m[1]);
      return m[1];
    },
    async docker(name, args, o = {}) {
      const host = await lab.dockerHost(name);
      return run(DOCKER, args, { ...o, env: { ...env, DOCKER_HOST: host, ...(o.env ?? {}) } });
    },
    ssh: (name, cmd, o) => lab.machine(['ssh', name, '--', ...cmd], o),
    async prune() {
      if (fs.existsSync(labDir)) await lab.machine(['prune']);
    },
  };
  return lab;
}

/** Creates machines at once (the lab lock keeps their addresses apart) and returns their DOCKER_HOSTs by name. */
export async function createMachines(
  lab: TestLab,
  names: string[],
  extraArgs: string[] = [],
): Promise<Map<string, string>> {
  await Promise.all(names.map((n) => lab.machine(['create', n, ...extraArgs])));
  return new Map(await Promise.all(names.map(async (n) => [n, await lab.dockerHost(n)] as [string, string])));
}

/** `shoal machine registry`: the lab registry (started once, trusted by every machine), as HOST:PORT. */
export async function labRegistry(lab: TestLab): Promise<string> {
  return (await lab.machine(['registry'])).stdout.trim();
}

/** Pushes micro to `registry` through a machine's daemon; returns the reference (`HOST:PORT/micro:1.0.0`). */
export async function pushLabMicro(lab: TestLab, machine: string, registry: string): Promise<string> {
  return pushMicro({ socket: (await lab.dockerHost(machine)).replace(/^unix:\/\//, '') }, registry);
}
