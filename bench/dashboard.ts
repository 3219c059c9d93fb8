/**
 * The dashboard at scale: one real manager (shoald + etcd in its own netns, drained) serving
 * `--dashboard-addr`, N simulated nodes (bench/sim/sim-nodes.ts) and one service of M tasks,
 * watched by headless chromium (puppeteer-core) logged in to the page. Measured: the page's
 * first full picture, the time from a change through the Engine API (a node label, one
 * replica more) to the page showing it, and the page's memory (puppeteer's page.metrics()).
 *
 *   node dist/bench/dashboard.js [nodes=1000] [tasks=10000]    (root; needs /usr/bin/chromium)
 */
import os from 'node:os';
import { startDaemon } from '../test/helpers/daemon.js';
import { stopProcess } from '../test/helpers/process.js';
import { launchInNetns } from '../test/helpers/browser.js';
import { api, pct, printTable, rssMiB, writeReport } from './report.js';
import { initDrainedSwarm, spawnSimNodes } from './sim/sim-process.js';

const nodes = Number(process.argv[2] ?? 1000);
const tasks = Number(process.argv[3] ?? 10000);
const ADDR = '127.0.0.1:8080';

/** The machine's load when the run starts and ends: the figures depend on it (a shared 2-core box). */
const loadAtStart = os.loadavg().map((l) => +l.toFixed(1));
const d = await startDaemon({ prefix: 'bdash', extraArgs: ['--dashboard-addr', ADDR] });
let simPid: number | undefined;
// A page busy with thousands of tasks on a loaded machine answers a DevTools call late: 180 s (the default) was not enough at 500 nodes / 5,000 tasks under load 25.
const browser = await launchInNetns(`/run/netns/${d.ns}`, { protocolTimeoutMs: 1_800_000 });
/** One clean-up, awaited by whoever asks (a signal and the run's own end): the daemon goes before the process does. */
let cleaning: Promise<void> | undefined;
const cleanUp = () =>
  (cleaning ??= (async () => {
    await browser.close().catch(() => {});
    if (simPid) await stopProcess(simPid).catch(() => {});
    await d.destroy();
  })());
// Stopped early (Ctrl-C, a timeout): the daemon, etcd and the simulated nodes go too.
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(
    sig,
    () =>
      void cleanUp()
        .catch((err: unknown) => console.error('cleanup failed', err))
        .finally(() => process.exit(130)),
  );
try {
  const call = async (method: string, p: string, body?: unknown) => {
    const r = await api(d.socket, method, p, body);
    if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${r.body}`);
    return r.body ? (JSON.parse(r.body) as Record<string, unknown>) : {};
  };
  const { managerId: self, token } = await initDrainedSwarm(d);
  const sim = spawnSimNodes({
    ns: d.ns,
    managers: '127.0.0.1:2377',
    token,
    count: nodes,
    nodeFlags: ['--max-old-space-size=4096'],
  });
  simPid = sim.pid;
  const join = { ms: await Promise.race([sim.joined, sim.exited]), retries: 0 };
  join.retries = sim.joinRetries();
  console.error(`${nodes} simulated nodes joined in ${join.ms} ms (${join.retries} retried joins)`);
  await call('POST', '/v1.41/services/create', {
    Name: 'sim',
    Mode: { Replicated: { Replicas: tasks } },
    TaskTemplate: { ContainerSpec: { Image: 'simulated:latest' } },
  });

  const dashToken = String((await call('GET', '/shoal/dashboard/token')).Token);
  const page = await browser.newPage();
  await page.goto(`http://${ADDR}/`);
  await page.type('input[name=token]', dashToken);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  // Only tasks meant to run: a Down node's replaced tasks still show as running cards (as the
  // visualizer shows them), and counting them made 5,000 tasks look like 7,574.
  const running = () =>
    page.evaluate(() => document.querySelectorAll('.node .task[data-state=running][data-desired=running]').length);
  const t0 = Date.now();
  await page.waitForFunction(
    (n) => document.querySelectorAll('.node').length >= n,
    { timeout: 600_000, polling: 100 },
    nodes + 1,
  );
  const firstPictureMs = Date.now() - t0;
  console.error(`page shows ${nodes + 1} nodes after ${firstPictureMs} ms; waiting for ${tasks} running tasks`);
  await page.waitForFunction(
    (n) => document.querySelectorAll('.node .task[data-state=running][data-desired=running]').length >= n,
    { timeout: 1_800_000, polling: 1000 },
    tasks,
  );
  console.error(`page shows ${await running()} running tasks`);

  // A change the page must show: one node drained (one store write, one patch; its card turns grey).
  const labelMs: number[] = [];
  const list = JSON.parse((await api(d.socket, 'GET', '/v1.41/nodes')).body) as {
    ID: string;
    Version: { Index: number };
    Spec: Record<string, unknown>;
  }[];
  const workers = list.filter((n) => n.ID !== self);
  // At most 20, and never every node: the scale +1 below needs an active node to go to.
  for (let i = 0; i < Math.min(20, workers.length - 1); i++) {
    const n = workers[i];
    const fresh = JSON.parse((await api(d.socket, 'GET', `/v1.41/nodes/${n.ID}`)).body) as typeof n;
    const start = Date.now();
    await call('POST', `/v1.41/nodes/${n.ID}/update?version=${fresh.Version.Index}`, {
      ...fresh.Spec,
      Availability: 'pause',
    });
    await page.waitForFunction(
      (id) => document.querySelector<HTMLElement>(`.node[data-id="${id}"]`)?.dataset.avail === 'pause',
      { timeout: 60_000, polling: 'mutation' },
      n.ID,
    );
    labelMs.push(Date.now() - start);
  }
  // A task change: one replica more, until the page shows it running (includes scheduling and the simulated agent).
  const svc = JSON.parse((await api(d.socket, 'GET', '/v1.41/services/sim')).body) as {
    ID: string;
    Version: { Index: number };
    Spec: { Mode: { Replicated: { Replicas: number } } };
  };
  const scaleStart = Date.now();
  await call('POST', `/v1.41/services/${svc.ID}/update?version=${svc.Version.Index}`, {
    ...svc.Spec,
    Mode: { Replicated: { Replicas: tasks + 1 } },
  });
  await page.waitForFunction(
    (n) => document.querySelectorAll('.node .task[data-state=running][data-desired=running]').length >= n,
    { timeout: 300_000, polling: 'mutation' },
    tasks + 1,
  );
  const scaleMs = Date.now() - scaleStart;
  const m = await page.metrics();
  const patches = await page.evaluate(
    () => (window as unknown as { __dashboard: { patches: number; ops: number } }).__dashboard,
  );
  const sorted = [...labelMs].sort((a, b) => a - b);
  const result = {
    nodes,
    tasks,
    loadAverage: { start: loadAtStart, end: os.loadavg().map((l) => +l.toFixed(1)) },
    join: { ms: join.ms, retriedJoins: join.retries },
    firstPictureMs,
    pauseNodeToPageMs: {
      p50: pct(sorted, 50),
      p99: pct(sorted, 99),
      max: sorted[sorted.length - 1],
      samples: sorted.length,
    },
    scaleOneMoreToPageMs: scaleMs,
    page: {
      jsHeapUsedMiB: +((m.JSHeapUsedSize ?? 0) / 2 ** 20).toFixed(1),
      jsHeapTotalMiB: +((m.JSHeapTotalSize ?? 0) / 2 ** 20).toFixed(1),
      domNodes: m.Nodes,
      patchesApplied: patches.patches,
      opsApplied: patches.ops,
    },
    shoaldRssMiB: rssMiB(d.pid).rss,
  };
  printTable(`dashboard: ${nodes} simulated nodes, ${tasks} tasks`, [
    ['load average (1/5/15 min) at start / end', `${loadAtStart.join(' ')} / ${result.loadAverage.end.join(' ')}`],
    ['simulated nodes joined', `${join.ms} ms (${join.retries} retried joins)`],
    ['first picture (all nodes on the page)', `${firstPictureMs} ms`],
    ['pause a node → page (p50 / max)', `${result.pauseNodeToPageMs.p50} / ${result.pauseNodeToPageMs.max} ms`],
    ['scale +1 → running on the page', `${scaleMs} ms`],
    ['page JS heap used / total', `${result.page.jsHeapUsedMiB} / ${result.page.jsHeapTotalMiB} MiB`],
    ['page DOM nodes', String(m.Nodes)],
    ['shoald RSS', `${result.shoaldRssMiB} MiB`],
  ]);
  console.log(writeReport('dashboard', result));
} finally {
  await cleanUp();
}
