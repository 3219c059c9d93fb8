/**
 * The faults the chaos suite injects. Each one breaks something, waits until the swarm noticed
 * (time to detect, when there is something to notice) or for a hold time, and heals what it
 * broke the way an operator would (restart the daemon, reconnect, start the machine, join a new
 * machine). Convergence is then the suite's business.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readMachine } from '../../src/lab/state.js';
import { machinePaths } from '../../src/lab/settings.js';
import type { Swarm, Machine } from './chaos.js';
import { pick } from './random.js';
import { diskFull } from './disk-full.js';
import { sleep, until } from './until.js';

export const FAULTS = [
  'kill-leader',
  'kill-follower',
  'kill-worker',
  'kill-etcd',
  'disconnect',
  'stop-start',
  'replace-worker',
  'kill-tasks',
  'demote-promote',
  'full-restart',
  'disk-full',
] as const;
export type FaultName = (typeof FAULTS)[number];

export interface FaultOutcome {
  target: string;
  /** From the fault until the swarm showed it (a node Down, a new leader, etcd restarted). */
  detectMs?: number;
}

/** The node's line in `docker node ls` from a manager not under a fault: status and manager status. */
async function nodeLine(s: Swarm, name: string): Promise<{ status: string; manager: string } | undefined> {
  const via = await s.anyManager();
  const r = await s.d(via, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'], 10_000);
  const l = r.stdout
    .split('\n')
    .map((x) => x.split(' '))
    .find((x) => x[0] === name);
  return l ? { status: l[1], manager: l[2] ?? '' } : undefined;
}

/** Down for a worker; Down or Unreachable for a manager. */
const noticed = async (s: Swarm, m: Machine) => {
  const l = await nodeLine(s, m.name);
  return !!l && (l.status !== 'Ready' || (m.role === 'manager' && l.manager === 'Unreachable'));
};

function shoaldPid(s: Swarm, name: string): number {
  const pid = readMachine(s.lab.labDir, name)?.pid;
  if (!pid) throw new Error(`no daemon pid for ${name}`);
  return pid;
}

/** The etcd member of a manager machine: its pid file under the machine's data root. */
function etcdPid(s: Swarm, name: string): number | undefined {
  const root = machinePaths(s.lab.labDir, name).dataRoot;
  const f = fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).find((x) => path.basename(x) === 'etcd.pid');
  if (!f) return undefined;
  try {
    return Number(fs.readFileSync(path.join(root, f), 'utf8'));
  } catch {
    return undefined;
  }
}

async function killDaemon(s: Swarm, m: Machine, waitFor: () => Promise<boolean>): Promise<FaultOutcome> {
  s.faulted.add(m.name);
  process.kill(shoaldPid(s, m.name), 'SIGKILL');
  const t0 = Date.now();
  const detectMs = await until(30_000, waitFor);
  // At least a few heartbeats without the daemon.
  await sleep(Math.max(0, 3000 - (Date.now() - t0)));
  await s.labApi.respawnDaemon(m.name);
  s.faulted.delete(m.name);
  return { target: m.name, detectMs };
}

async function cutAndBack(
  s: Swarm,
  m: Machine,
  cut: () => Promise<unknown>,
  back: () => Promise<unknown>,
  holdMs: number,
): Promise<FaultOutcome> {
  s.faulted.add(m.name);
  // From the start of the cut: a stop takes seconds itself, and the swarm may notice meanwhile.
  const t0 = Date.now();
  await cut();
  const detected = await until(45_000, () => noticed(s, m));
  const detectMs = detected === undefined ? undefined : Date.now() - t0;
  await sleep(Math.max(0, holdMs - (Date.now() - t0)));
  await back();
  s.faulted.delete(m.name);
  return { target: m.name, detectMs };
}

export async function runFault(name: FaultName, s: Swarm, rand: () => number): Promise<FaultOutcome> {
  switch (name) {
    case 'kill-leader': {
      const leader = await s.leader();
      const m = s.machines.find((x) => x.name === leader) ?? pick(rand, s.up('manager'));
      return killDaemon(s, m, async () => {
        const l = await s.leader();
        return !!l && l !== m.name;
      });
    }
    case 'kill-follower': {
      const leader = await s.leader();
      const m = pick(
        rand,
        s.up('manager').filter((x) => x.name !== leader),
      );
      return killDaemon(s, m, () => noticed(s, m));
    }
    case 'kill-worker': {
      const m = pick(rand, s.up('worker'));
      return killDaemon(s, m, () => noticed(s, m));
    }
    case 'kill-etcd': {
      const m = pick(rand, s.up('manager'));
      const pid = etcdPid(s, m.name);
      if (!pid) throw new Error(`no etcd member found on ${m.name}`);
      process.kill(pid, 'SIGKILL');
      // Detected: the manager has started its member again.
      const detectMs = await until(
        30_000,
        async () => {
          const p = etcdPid(s, m.name);
          return !!p && p !== pid;
        },
        200,
      );
      return { target: m.name, detectMs };
    }
    case 'disconnect': {
      const m = pick(rand, s.up());
      return cutAndBack(
        s,
        m,
        () => s.lab.machine(['disconnect', m.name]),
        () => s.lab.machine(['connect', m.name]),
        20_000,
      );
    }
    case 'stop-start': {
      const m = pick(rand, s.up());
      return cutAndBack(
        s,
        m,
        () => s.lab.machine(['stop', m.name]),
        () => s.lab.machine(['start', m.name]),
        10_000,
      );
    }
    case 'replace-worker': {
      const m = pick(rand, s.up('worker'));
      s.faulted.add(m.name);
      const t0 = Date.now();
      await s.lab.machine(['rm', '-f', m.name]);
      m.up = false;
      const detected = await until(45_000, () => noticed(s, m));
      const detectMs = detected === undefined ? undefined : Date.now() - t0;
      await s.ok(await s.anyManager(), ['node', 'rm', '--force', m.name]);
      s.machines = s.machines.filter((x) => x !== m);
      const fresh = await s.createMachine(s.newWorkerName(), 'worker');
      await s.join(fresh);
      return { target: `${m.name} → ${fresh.name}`, detectMs };
    }
    case 'kill-tasks': {
      const victims: string[] = [];
      for (let i = 0; i < 2; i++) {
        const m = pick(rand, s.up());
        const ids = (await s.d(m.name, ['ps', '-q', '--filter', 'label=com.docker.swarm.task.id'])).stdout
          .split('\n')
          .filter(Boolean);
        if (!ids.length) continue;
        const id = pick(rand, ids);
        await s.d(m.name, ['rm', '-f', id]);
        victims.push(`${m.name}:${id.slice(0, 12)}`);
      }
      return { target: victims.join(' ') || 'none' };
    }
    case 'demote-promote': {
      const leader = await s.leader();
      const m = pick(
        rand,
        s.up('manager').filter((x) => x.name !== leader),
      );
      const via = leader ?? (await s.anyManager());
      s.faulted.add(m.name);
      await s.ok(via, ['node', 'demote', m.name]);
      const t0 = Date.now();
      const detectMs = await until(60_000, async () => {
        const l = await nodeLine(s, m.name);
        return !!l && l.manager === '' && l.status === 'Ready';
      });
      // The node has finished its demotion (its manager and etcd member gone) before the promotion:
      // otherwise the checks below still see the old manager (its presence key lives 5 s) and the
      // next fault found a 2-member etcd (seed 141, round 36: 135 s without writes).
      const controlAvailable = async () =>
        (await s.d(m.name, ['info', '--format', '{{.Swarm.ControlAvailable}}'], 10_000)).stdout.trim();
      await until(90_000, async () => (await controlAvailable()) === 'false');
      await s.ok(await s.anyManager(), ['node', 'promote', m.name]);
      // Healed once its own daemon acts as a manager again, not when the list first says Reachable
      // (the list follows the spec; the node still finishes its demotion, then joins etcd).
      await until(90_000, async () => {
        const l = await nodeLine(s, m.name);
        return !!l && ['Reachable', 'Leader'].includes(l.manager) && (await controlAvailable()) === 'true';
      });
      s.faulted.delete(m.name);
      void t0;
      return { target: m.name, detectMs };
    }
    case 'disk-full': {
      const m = pick(rand, s.up());
      return diskFull(s, m, async () => (await nodeLine(s, m.name))?.status === 'Ready');
    }
    case 'full-restart': {
      const all = s.up();
      for (const m of all) s.faulted.add(m.name);
      await s.lab.machine(['stop', ...all.map((m) => m.name)]);
      await sleep(2000);
      await s.lab.machine(['start', ...all.map((m) => m.name)]);
      for (const m of all) s.faulted.delete(m.name);
      return { target: 'all' };
    }
  }
}
