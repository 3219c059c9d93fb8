import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { DOCKER } from '../helpers/daemon.js';
import { startProcess, stopProcess } from '../helpers/process.js';
import { waitFor as poll } from '../helpers/process.js';

// Needs root: a two-machine lab (namespaces, shoald, etcd, runc) driven by the real docker CLI.

const MACHINES = ['m1', 'm2'];

const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000) => poll(what, fn, ms, 500);

describe('docker service logs on a two-machine swarm', () => {
  let swarm: SwarmLab;
  const d = (m: string, args: string[]) => swarm.d(m, args);
  /** `docker service logs` lines: `<name>.<slot>.<task>@<node> | <text>`. */
  const logs = async (args: string[]) => {
    const r = await d('m1', ['service', 'logs', ...args]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const m = /^(chatty\.\S+)@(\S+)\s+\| (.*)$/.exec(l);
        assert.ok(m, `log line shape: ${JSON.stringify(l)}`);
        return { task: m[1], node: m[2], text: m[3] };
      });
  };

  /** A global busybox service running `script` in sh, once its tasks run on both machines. */
  const globalShell = async (name: string, script: string) => {
    const r = await d('m1', [
      'service',
      'create',
      '--name',
      name,
      '--mode',
      'global',
      '--detach=false',
      'busybox',
      'sh',
      '-c',
      script,
    ]);
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2'], busybox: true });
    // Global: one task on each machine, each echoing five lines then idling.
    await globalShell('chatty', 'for i in 1 2 3 4 5; do echo line$i; done; sleep 100000');
  });

  after(async () => {
    await swarm?.cleanup();
  });

  it('shows every line of the tasks on both machines, prefixed with task and node', async () => {
    const lines = await waitFor('ten lines', async () => {
      const l = await logs(['chatty']);
      return l.length === 10 && l;
    });
    assert.deepEqual(new Set(lines.map((l) => l.node)), new Set(MACHINES));
    for (const m of MACHINES)
      assert.deepEqual(
        lines.filter((l) => l.node === m).map((l) => l.text),
        ['line1', 'line2', 'line3', 'line4', 'line5'],
      );
    assert.equal(new Set(lines.map((l) => l.task)).size, 2);
  });

  it('--tail N gives the last N lines of each task', async () => {
    const lines = await logs(['--tail', '2', 'chatty']);
    assert.equal(lines.length, 4);
    for (const m of MACHINES)
      assert.deepEqual(
        lines.filter((l) => l.node === m).map((l) => l.text),
        ['line4', 'line5'],
      );
  });

  it('a task ID gives only that task', async () => {
    const taskId = (await d('m1', ['service', 'ps', 'chatty', '-q', '--no-trunc', '--filter', 'node=m2'])).stdout
      .trim()
      .split('\n')[0];
    assert.ok(taskId);
    const r = await d('m1', ['service', 'logs', '--raw', taskId]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'line1\nline2\nline3\nline4\nline5\n');
  });

  it('-f follows: lines written after the request arrive from both machines', async () => {
    await globalShell('ticker', 'i=0; while true; do i=$((i+1)); echo tick$i; sleep 1; done');
    const out = path.join(swarm.lab.labDir, 'follow.out');
    const child = startProcess(DOCKER, ['service', 'logs', '-f', '--tail', '0', 'ticker'], out, {
      ...swarm.lab.env,
      DOCKER_HOST: await swarm.lab.dockerHost('m1'),
    });
    try {
      // --tail 0: nothing old; ticks keep coming on both machines while following.
      const nodes = await waitFor('ticks from both machines', async () => {
        const seen = new Set<string>();
        for (const l of fs.readFileSync(out, 'utf8').split('\n')) {
          const m = /^ticker\.\S+@(\S+)\s+\| tick(\d+)$/.exec(l);
          if (m && Number(m[2]) > 1) seen.add(m[1]);
        }
        return seen.size === 2 && seen;
      });
      assert.deepEqual(nodes, new Set(MACHINES));
      assert.equal(child.exitCode, null, 'still following');
    } finally {
      await stopProcess(child.pid);
    }
  });
});
