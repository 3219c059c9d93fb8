/**
 * The floor under `vs-docker`: N containers of the micro image started and stopped with the
 * runtime alone, no daemon, no network, no control plane. Each container gets what shoal's
 * engine gives it on the way to RUNNING: an overlayfs root over the micro layer, a bundle, and
 * then either
 *   conmon  conmon --sync → runc create, then start by reading exec.fifo (shoal's own path), or
 *   runc    `runc create` + `runc start` processes (the runtime alone; dockerd's containerd
 *           shim adds its own process per container on top of this).
 * `concurrency` containers are in flight at once. Then every container is SIGKILLed, deleted
 * and unmounted (the stop path minus the grace period).
 *
 *   node dist/bench/runtime-floor.js [n=50] [concurrency=50] [conmon|runc|both] [--shoal[=rounds]]   (root)
 *
 * `--shoal`: in the same run, rounds of (floor with conmon, then shoal: one shoald, a service of
 * n micro replicas with `--stop-signal SIGKILL` so it is stopped at once as the floor is; create →
 * n/n running, and `scale =0` → no container of the service left on the node; after a 1-replica
 * warm-up service, so the node's one-time swarm set-up is not counted), each shoal figure
 * next to its own round's floor (issue 17 item 6: within 1.15×).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildMicroRootfs, MICRO_CMD } from '../examples/micro/build.js';
import { conmonCreate, Runc, RUNC } from '../src/engine/containers/runtime.js';
import { run } from '../src/util/run.js';
import { printTable, writeReport } from './report.js';
import { shoalWorkload, type EngineTimes } from './vs-docker.js';

type Mode = 'conmon' | 'runc';

export interface FloorResult {
  mode: Mode;
  n: number;
  concurrency: number;
  startAllMs: number;
  stopAllMs: number;
  loadAvg: number[];
}

async function pool<T>(items: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

async function floor(mode: Mode, n: number, concurrency: number): Promise<FloorResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-floor-'));
  const runc = new Runc(path.join(dir, 'runc'));
  const exits = path.join(dir, 'exits');
  const lower = path.join(dir, 'lower');
  for (const d of [runc.root, exits, lower]) fs.mkdirSync(d, { recursive: true });
  const prefix = `floor${process.pid}x`;
  const ids = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  const pids = new Map<string, number>();
  try {
    fs.writeFileSync(path.join(dir, 'micro.tar'), await buildMicroRootfs());
    await run('tar', ['-xf', path.join(dir, 'micro.tar'), '-C', lower]);
    // runc's own default spec, made to run micro's httpd with its own net namespace and cgroup.
    await run(RUNC, ['spec', '--bundle', dir]);
    const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as {
      process: { terminal: boolean; args: string[] };
      root: { readonly: boolean };
      linux: { cgroupsPath?: string };
    };
    spec.process.terminal = false;
    spec.process.args = MICRO_CMD;
    spec.root.readonly = false;

    const t0 = performance.now();
    await pool(ids, concurrency, async (id) => {
      const b = path.join(dir, id);
      const [upper, work, rootfs] = ['upper', 'work', 'rootfs'].map((x) => path.join(b, x));
      for (const d of [upper, work, rootfs]) fs.mkdirSync(d, { recursive: true });
      await run('mount', [
        '-t',
        'overlay',
        'overlay',
        '-o',
        `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
        rootfs,
      ]);
      fs.writeFileSync(
        path.join(b, 'config.json'),
        JSON.stringify({ ...spec, linux: { ...spec.linux, cgroupsPath: `/shoal-floor/${id}` } }),
      );
      if (mode === 'conmon') {
        const pid = await conmonCreate({
          id,
          name: id,
          bundle: b,
          runDir: b,
          pidFile: path.join(b, 'pid'),
          conmonPidFile: path.join(b, 'conmon.pid'),
          exitDir: exits,
          logPath: path.join(b, 'log'),
          runcRoot: runc.root,
          tty: false,
          stdin: false,
          stdinOnce: false,
          stderrFile: path.join(b, 'conmon.err'),
        });
        pids.set(id, pid);
        await runc.start(id, pid);
      } else {
        // The init inherits create's stdio: pipes would never close, so it gets none.
        await new Promise<void>((resolve, reject) => {
          const c = spawn(RUNC, ['--root', runc.root, 'create', '--bundle', b, id], { stdio: 'ignore' });
          c.on('error', reject);
          c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`runc create exited with ${code}`))));
        });
        await run(RUNC, ['--root', runc.root, 'start', id]);
      }
    });
    const startAllMs = Math.round(performance.now() - t0);
    const running = (await run(RUNC, ['--root', runc.root, 'list', '-q'])).stdout.split('\n').filter(Boolean).length;
    if (running !== n) throw new Error(`${running} of ${n} containers running`);

    const t1 = performance.now();
    await pool(ids, concurrency, async (id) => {
      await run(RUNC, ['--root', runc.root, 'kill', id, 'KILL']);
      // conmon writes the exit file once the init is reaped; plain runc: wait for "stopped".
      for (let i = 0; i < 2000; i++) {
        if (
          mode === 'conmon'
            ? fs.existsSync(path.join(exits, id))
            : JSON.parse((await run(RUNC, ['--root', runc.root, 'state', id])).stdout).status === 'stopped'
        )
          break;
        await new Promise((r) => setTimeout(r, 5));
      }
      await run(RUNC, ['--root', runc.root, 'delete', '--force', id]);
      await run('umount', [path.join(dir, id, 'rootfs')]);
    });
    const stopAllMs = Math.round(performance.now() - t1);
    return { mode, n, concurrency, startAllMs, stopAllMs, loadAvg: os.loadavg().map((x) => +x.toFixed(1)) };
  } finally {
    for (const id of ids) await run(RUNC, ['--root', runc.root, 'delete', '--force', id], { allowFail: true });
    for (const id of ids) await run('umount', ['-l', path.join(dir, id, 'rootfs')], { allowFail: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function runtimeFloor(
  n = 50,
  concurrency = 50,
  modes: Mode[] = ['conmon', 'runc'],
): Promise<FloorResult[]> {
  const out: FloorResult[] = [];
  for (const m of modes) out.push(await floor(m, n, concurrency));
  return out;
}

interface ShoalRound {
  floor: FloorResult;
  shoal: EngineTimes;
  loadAvg: number[];
  startRatio: number;
  stopRatio: number;
}

/** Floor and shoal one after the other, `rounds` times: every ratio is within one round. */
async function againstShoal(n: number, concurrency: number, rounds: number): Promise<ShoalRound[]> {
  const out: ShoalRound[] = [];
  for (let i = 0; i < rounds; i++) {
    const [f] = await runtimeFloor(n, concurrency, ['conmon']);
    const shoal = await shoalWorkload(n, { stopSignal: 'SIGKILL', untilGone: true, pollMs: 20, warmUp: true });
    const r: ShoalRound = {
      floor: f,
      shoal,
      loadAvg: os.loadavg().map((x) => +x.toFixed(1)),
      startRatio: +(shoal.createTo50Ms / f.startAllMs).toFixed(2),
      stopRatio: +((shoal.scaleTo0GoneMs ?? NaN) / f.stopAllMs).toFixed(2),
    };
    out.push(r);
    const s = (ms: number | undefined) => `${((ms ?? NaN) / 1000).toFixed(2)} s`;
    printTable(`round ${i + 1}: ${n} micro containers, floor (conmon) against shoal`, [
      ['', 'floor | shoal | shoal/floor | load avg before → after'],
      [
        'start → all running',
        `${s(f.startAllMs)} | ${s(shoal.createTo50Ms)} | ${r.startRatio}× | ${f.loadAvg.join(' ')}`,
      ],
      [
        'stop → all deleted',
        `${s(f.stopAllMs)} | ${s(shoal.scaleTo0GoneMs)} (none running ${s(shoal.scaleTo0Ms)}) | ${r.stopRatio}× | ${r.loadAvg.join(' ')}`,
      ],
    ]);
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const shoalArg = process.argv.find((a) => a.startsWith('--shoal'));
  if (shoalArg) {
    const r = await againstShoal(
      Number(process.argv[2] ?? 50),
      Number(process.argv[3] ?? 50),
      Number(shoalArg.split('=')[1] ?? 3),
    );
    console.log(`written ${writeReport('runtime-floor-shoal', r)}`);
    process.exit(0);
  }
  const m = process.argv[4];
  const r = await runtimeFloor(
    Number(process.argv[2] ?? 50),
    Number(process.argv[3] ?? 50),
    m === 'conmon' || m === 'runc' ? [m] : ['conmon', 'runc'],
  );
  printTable(`runtime floor: ${r[0].n} micro containers, no daemon, no network`, [
    ['', 'all running | all stopped+deleted | load avg'],
    ...r.map((x): [string, string] => [
      `${x.mode}, ${x.concurrency} at once`,
      `${(x.startAllMs / 1000).toFixed(2)} s | ${(x.stopAllMs / 1000).toFixed(2)} s | ${x.loadAvg.join(' ')}`,
    ]),
  ]);
  console.log(`written ${writeReport('runtime-floor', r)}`);
}
