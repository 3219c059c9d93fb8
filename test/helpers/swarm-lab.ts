import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { RunResult } from '../../src/util/run.js';
import { importBusybox } from './busybox.js';
import { echoAppRootfsTar, importEchoApp } from './echo-app.js';
import { createMachines, labRegistry, newTestLab, pushLabMicro, type TestLab } from './lab.js';
import { waitFor } from './process.js';

export interface SwarmLabOptions {
  /** Machine names; the first runs `swarm init`, the others join with the manager token. */
  managers: string[];
  /** Machine names that join with the worker token. */
  workers?: string[];
  /** Start the lab registry (`shoal machine registry`); implied by `micro`. */
  registry?: boolean;
  /** Push micro to the lab registry through the first manager; SwarmLab.image names it. */
  micro?: boolean;
  /** Import busybox as `busybox:latest` into every machine. */
  busybox?: boolean;
  /** Import the echo app (test/helpers/echo-app.ts) as `echo-app:latest` into every machine. */
  echoApp?: boolean;
}

export interface SwarmLab {
  lab: TestLab;
  /** Managers first (the first one initialised the swarm), then workers. */
  machines: string[];
  /** Each machine's address on the lab network (what it advertises). */
  ip: Map<string, string>;
  /** Each machine's swarm node ID. */
  nodeIds: Map<string, string>;
  /** HOST:PORT of the lab registry; '' unless asked for. */
  registry: string;
  /** The pushed micro reference; '' unless asked for. */
  image: string;
  /** The real docker CLI against a machine, never throwing (check .code). */
  d(machine: string, args: string[]): Promise<RunResult>;
  /** `docker service ls` REPLICAS of a service, as the first manager shows it (`2/3`). */
  replicas(service: string): Promise<string>;
  /** Every machine leaves the swarm (tearing its overlay data path down), then the lab is pruned. */
  cleanup(): Promise<void>;
}

/** SHOAL_KEEP_LOGS=<dir>: each machine's daemon log survives the prune, for a post-mortem. */
export function keepMachineLogs(lab: TestLab, machines: string[]): void {
  const dir = process.env.SHOAL_KEEP_LOGS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  for (const m of machines) {
    const log = path.join(lab.labDir, 'machines', m, 'shoald.log');
    if (fs.existsSync(log)) fs.copyFileSync(log, path.join(dir, `${lab.prefix}-${m}.log`));
  }
}

/**
 * A lab whose machines form one swarm: every node Ready before this returns. On failure the
 * lab is pruned before the error is thrown, so a failed `before` leaves nothing behind.
 */
export async function createSwarmLab(opts: SwarmLabOptions): Promise<SwarmLab> {
  const [leader, ...otherManagers] = opts.managers;
  assert.ok(leader, 'a swarm lab needs at least one manager');
  const workers = opts.workers ?? [];
  const machines = [...opts.managers, ...workers];
  const lab = newTestLab();
  const d = (m: string, args: string[]) => lab.docker(m, args, { allowFail: true });
  const swarm: SwarmLab = {
    lab,
    machines,
    ip: new Map(),
    nodeIds: new Map(),
    registry: '',
    image: '',
    d,
    replicas: async (svc) =>
      (await d(leader, ['service', 'ls', '--filter', `name=${svc}`, '--format', '{{.Replicas}}'])).stdout.trim(),
    async cleanup() {
      for (const m of machines) await d(m, ['swarm', 'leave', '--force']).catch(() => undefined);
      keepMachineLogs(lab, machines);
      await lab.prune();
    },
  };
  try {
    await createMachines(lab, machines);
    for (const m of machines) swarm.ip.set(m, (await lab.machine(['ip', m])).stdout.trim());
    const ok = async (m: string, args: string[]) => {
      const r = await d(m, args);
      assert.equal(r.code, 0, `docker ${args.join(' ')} on ${m}: ${r.stderr}`);
      return r.stdout.trim();
    };
    const joinAddr = `${swarm.ip.get(leader)}:2377`;
    await ok(leader, ['swarm', 'init', '--advertise-addr', swarm.ip.get(leader)!]);
    // One join at a time: a manager joining adds an etcd member, which etcd takes one by one.
    for (const [role, names] of [
      ['manager', otherManagers],
      ['worker', workers],
    ] as const) {
      if (!names.length) continue;
      const token = await ok(leader, ['swarm', 'join-token', '-q', role]);
      for (const m of names) await ok(m, ['swarm', 'join', '--token', token, joinAddr]);
    }
    for (const m of machines) swarm.nodeIds.set(m, await ok(m, ['info', '--format', '{{.Swarm.NodeID}}']));
    if (opts.micro || opts.registry) {
      swarm.registry = await labRegistry(lab);
      if (opts.micro) swarm.image = await pushLabMicro(lab, leader, swarm.registry);
    }
    if (opts.busybox) {
      const dir = fs.mkdtempSync(path.join(lab.labDir, 'img-'));
      for (const m of machines) await importBusybox((args, o) => lab.docker(m, args, o), dir, 'busybox:latest');
    }
    if (opts.echoApp) {
      const tar = await echoAppRootfsTar(fs.mkdtempSync(path.join(lab.labDir, 'img-')));
      for (const m of machines) await importEchoApp((args, o) => lab.docker(m, args, o), tar, 'echo-app:latest');
    }
    await waitFor(
      `${machines.length} ready nodes`,
      async () =>
        (await ok(leader, ['node', 'ls', '--format', '{{.Status}}'])).split('\n').filter((s) => s === 'Ready')
          .length === machines.length,
      90_000,
      500,
    );
    return swarm;
  } catch (e) {
    await lab.prune().catch(() => undefined);
    throw e;
  }
}
