/**
 * Starting bench/sim/sim-nodes.ts as a process of its own inside a manager's network namespace,
 * and reading the JSON lines it prints (its join time, then how many tasks it runs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { REPO_ROOT, type TestDaemon } from '../../test/helpers/daemon.js';

/** The compiled simulator. */
export const SIM_JS = path.join(REPO_ROOT, 'dist/bench/sim/sim-nodes.js');

export interface SimNodesOptions {
  /** The network namespace the simulator runs in (the manager's). */
  ns: string;
  /** `host:port[,host:port…]` of the managers. */
  managers: string;
  token: string;
  count: number;
  /** The index of the first node's name (several processes share one numbering). */
  first?: number;
  /** Flags for node itself (heap sizes). */
  nodeFlags?: string[];
  /** Called with each figure of running tasks the simulator prints. */
  onRunning?: (running: number) => void;
}

export interface SimNodes {
  proc: ChildProcess;
  pid: number;
  /** The simulator's join time (ms) once all its nodes joined. */
  joined: Promise<number>;
  /** Joins the simulator had to try again (known once `joined` resolved). */
  joinRetries(): number;
  /** Rejects when the simulator exits (its rejection is handled: race it or ignore it). */
  exited: Promise<never>;
}

export function spawnSimNodes(o: SimNodesOptions): SimNodes {
  const args = [o.managers, o.token, String(o.count), ...(o.first === undefined ? [] : [String(o.first)])];
  const proc = spawn(
    'nsenter',
    [`--net=/run/netns/${o.ns}`, '--', process.execPath, ...(o.nodeFlags ?? []), SIM_JS, ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let retries = 0;
  const joined = new Promise<number>((resolve) =>
    readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
      try {
        const m = JSON.parse(l) as { joined?: number; ms?: number; retries?: number; running?: number };
        if (m.joined !== undefined) {
          retries = m.retries ?? 0;
          resolve(m.ms ?? 0);
        }
        if (m.running !== undefined) o.onRunning?.(m.running);
      } catch {
        /* not ours */
      }
    }),
  );
  const exited = new Promise<never>((_, reject) =>
    proc.once('exit', (c) => reject(new Error(`sim-nodes exited with ${c}`))),
  );
  exited.catch(() => undefined);
  return { proc, pid: proc.pid!, joined, joinRetries: () => retries, exited };
}

/**
 * `docker swarm init` on a one-manager swarm whose manager is drained (it runs nothing itself,
 * so every task goes to simulated nodes): the manager's node ID and the worker join token.
 */
export async function initDrainedSwarm(d: Pick<TestDaemon, 'docker'>): Promise<{ managerId: string; token: string }> {
  const init = await d.docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
  if (init.code !== 0) throw new Error(`swarm init: ${init.stderr}`);
  const managerId = (await d.docker(['info', '--format', '{{.Swarm.NodeID}}'])).stdout.trim();
  await d.docker(['node', 'update', '--availability', 'drain', managerId]);
  return { managerId, token: (await d.docker(['swarm', 'join-token', '-q', 'worker'])).stdout.trim() };
}
