/**
 * Container start latency on one shoald (root; runc + conmon + overlayfs + bridge):
 *  - 50 sequential `docker run -d` (the CLI returns once the container is running): p50/p99
 *  - the same through the Engine API alone (create + start), without CLI start-up cost
 *  - 50 `docker run -d` started at once: wall time until all are running
 * Prints a table and writes JSON to bench/results/.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { startDaemon, REPO_ROOT, type TestDaemon } from '../test/helpers/daemon.js';
import { importBusybox } from '../test/helpers/busybox.js';

const N = 50;
const IMG = 'benchbusybox';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function api(d: TestDaemon, method: string, p: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { socketPath: d.socket, path: p, method, headers: data ? { 'Content-Type': 'application/json' } : {} },
      (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function isRunning(d: TestDaemon, id: string): Promise<boolean> {
  const r = await api(d, 'GET', `/v1.41/containers/${id}/json`);
  return (JSON.parse(r.body) as { State: { Running: boolean } }).State.Running;
}

async function removeAll(d: TestDaemon): Promise<void> {
  const ids = (await d.docker(['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 10) await d.docker(['rm', '-f', ...ids.slice(i, i + 10)]);
}

async function main(): Promise<void> {
  const d = await startDaemon({ prefix: 'shbench' });
  try {
    await importBusybox(d.docker, d.dir, IMG);
    // Warm-up: first run pays for page cache and the bridge's first veth.
    await d.docker(['run', '-d', IMG, 'sleep', '600']);
    await removeAll(d);

    const cli: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      const id = (await d.docker(['run', '-d', IMG, 'sleep', '600'])).stdout.trim();
      cli.push(performance.now() - t0);
      if (!(await isRunning(d, id))) throw new Error(`container ${id} not running after docker run -d`);
    }
    await removeAll(d);

    const apiTimes: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      const c = await api(d, 'POST', '/v1.41/containers/create', { Image: IMG, Cmd: ['sleep', '600'] });
      if (c.status !== 201) throw new Error(`create: ${c.status} ${c.body}`);
      const id = (JSON.parse(c.body) as { Id: string }).Id;
      const s = await api(d, 'POST', `/v1.41/containers/${id}/start`);
      if (s.status !== 204) throw new Error(`start: ${s.status} ${s.body}`);
      apiTimes.push(performance.now() - t0);
    }
    await removeAll(d);

    const t0 = performance.now();
    const ids = await Promise.all(
      Array.from({ length: N }, async () => (await d.docker(['run', '-d', IMG, 'sleep', '600'])).stdout.trim()),
    );
    const concurrentMs = performance.now() - t0;
    const running = (await Promise.all(ids.map((id) => isRunning(d, id)))).filter(Boolean).length;
    if (running !== N) throw new Error(`only ${running}/${N} running after the concurrent start`);
    await removeAll(d);

    cli.sort((a, b) => a - b);
    apiTimes.sort((a, b) => a - b);
    const result = {
      when: new Date().toISOString(),
      n: N,
      sequentialDockerRunD: { p50Ms: pct(cli, 50), p99Ms: pct(cli, 99), minMs: cli[0], maxMs: cli[N - 1] },
      sequentialApiCreateStart: {
        p50Ms: pct(apiTimes, 50),
        p99Ms: pct(apiTimes, 99),
        minMs: apiTimes[0],
        maxMs: apiTimes[N - 1],
      },
      concurrentDockerRunD: { totalMs: concurrentMs, running },
    };
    const f = (n: number) => n.toFixed(0).padStart(7);
    console.log(`container start, ${N} containers (ms)`);
    console.log('                                    p50      p99      min      max');
    console.log(
      `sequential docker run -d        ${f(result.sequentialDockerRunD.p50Ms)}  ${f(result.sequentialDockerRunD.p99Ms)}  ${f(cli[0])}  ${f(cli[N - 1])}`,
    );
    console.log(
      `sequential API create+start     ${f(result.sequentialApiCreateStart.p50Ms)}  ${f(result.sequentialApiCreateStart.p99Ms)}  ${f(apiTimes[0])}  ${f(apiTimes[N - 1])}`,
    );
    console.log(`${N} concurrent docker run -d: all running after ${concurrentMs.toFixed(0)} ms`);
    const out = path.join(REPO_ROOT, 'bench/results', `container-start-${result.when.replace(/[:.]/g, '-')}.json`);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    console.log(`written ${path.relative(REPO_ROOT, out)}`);
  } finally {
    await d.destroy();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
