/**
 * Routing-mesh benchmark: requests/s through the mesh against requests/s straight to a
 * container, same run, same tool (wrk), on the real kernel data path the overlay tests use.
 * Run as root: `npx tsc -p . && node dist/bench/mesh.js [seconds]`.
 */
import { run } from '../src/util/run.js';
import { OverlayLab } from '../test/helpers/overlay-lab.js';
import { TEST_ROOT } from '../test/helpers/daemon.js';

const APP = 'a'.repeat(64);
const INGRESS = 'b'.repeat(64);
const seconds = Number(process.argv[2] ?? 5);

async function wrk(where: { pid: number } | { ns: string }, url: string): Promise<number> {
  const args = ['wrk', '-t1', '-c8', `-d${seconds}s`, url];
  const r =
    'pid' in where
      ? await run('nsenter', ['-t', String(where.pid), '-n', '--', ...args])
      : await run('ip', ['netns', 'exec', where.ns, ...args]);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

const lab = new OverlayLab(TEST_ROOT);
try {
  await lab.start(2);
  const [n1, n2] = lab.nodes;
  lab.networks.push(
    { id: APP, name: 'app', vni: 4200, subnet: '10.10.0.0/24', gateway: '10.10.0.1' },
    { id: INGRESS, name: 'ingress', vni: 4096, subnet: '10.255.0.0/24', gateway: '10.255.0.1', ingress: true },
  );
  lab.services.push({
    id: 's',
    name: 'web',
    endpointMode: 'vip',
    vips: { [APP]: '10.10.0.2', [INGRESS]: '10.255.0.2' },
    ports: [{ target: 8000, published: 30000, protocol: 'tcp', mode: 'ingress' }],
  });
  await lab.startContainer('w1', 'n2', { [APP]: '10.10.0.3', [INGRESS]: '10.255.0.3' }, 'web');
  const client = await lab.startContainer('c1', 'n1', { [APP]: '10.10.0.10' });
  for (const n of lab.nodes) await lab.openNode(n);
  const t0 = process.hrtime.bigint();
  await lab.applyAll();
  const applyMs = Number(process.hrtime.bigint() - t0) / 1e6;

  const url = '/name';
  const results = {
    directToContainer: await wrk(client, `http://10.10.0.3:8000${url}`),
    viaVip: await wrk(client, `http://10.10.0.2:8000${url}`),
    meshSameNode: await wrk({ ns: lab.clientNs }, `http://${n2.addr}:30000${url}`),
    meshOtherNode: await wrk({ ns: lab.clientNs }, `http://${n1.addr}:30000${url}`),
  };
  // A scale-up and a scale-down: how long until both nodes' rules follow.
  await lab.startContainer('w2', 'n1', { [APP]: '10.10.0.4', [INGRESS]: '10.255.0.4' }, 'web');
  let t = process.hrtime.bigint();
  await lab.applyAll();
  const scaleUpMs = Number(process.hrtime.bigint() - t) / 1e6;
  await lab.stopContainer('w2');
  t = process.hrtime.bigint();
  await lab.applyAll();
  const scaleDownMs = Number(process.hrtime.bigint() - t) / 1e6;
  console.log(
    JSON.stringify(
      {
        seconds,
        firstApplyMsBothNodes: Math.round(applyMs),
        scaleUpApplyMsBothNodes: Math.round(scaleUpMs),
        scaleDownApplyMsBothNodes: Math.round(scaleDownMs),
        requestsPerSecond: results,
        ratioMeshOtherNodeToDirect: +(results.meshOtherNode / results.directToContainer).toFixed(2),
        ratioMeshSameNodeToDirect: +(results.meshSameNode / results.directToContainer).toFixed(2),
      },
      null,
      2,
    ),
  );
} finally {
  await lab.destroy();
}
