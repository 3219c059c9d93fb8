import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { hubAddress } from '../../src/lab/addresses.js';
import { run } from '../../src/util/run.js';
import { createSwarmLab, type SwarmLab } from '../helpers/swarm-lab.js';
import { tcpAsk, tcpTry, udpAsk } from '../helpers/echo-app.js';
import { waitFor as poll } from '../helpers/process.js';

// Needs root: a three-machine lab (namespaces, shoald, etcd, runc) driven by the real docker CLI;
// requests come from the lab's hub namespace, whose address the tasks must see.

const MACHINES = ['m1', 'm2', 'm3'];
const IMAGE = 'echo-app:latest';
const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, ms = 90_000) => poll(what, fn, ms, 300);

describe('routing mesh keeps the client address (3 machines, real docker CLI)', () => {
  let swarm: SwarmLab;
  let hubNs: string;
  let hub: string;
  let addrs: Map<string, string>;
  let nodeIds: Map<string, string>;
  const d = async (m: string, args: string[]) => {
    const r = await swarm.d(m, args);
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const running = (svc: string, n: number) =>
    waitFor(`${svc} ${n}/${n}`, async () => (await swarm.replicas(svc)) === `${n}/${n}`);
  /** Containers of a service across the machines (short IDs = the tasks' hostnames). */
  const containers = async (svc: string) => {
    const ids: string[] = [];
    for (const m of MACHINES)
      ids.push(
        ...(await d(m, ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${svc}`]))
          .split('\n')
          .filter(Boolean),
      );
    return ids.map((id) => id.slice(0, 12));
  };
  const peerOf = (answer: string) => answer.split(' ')[0];
  const hostOf = (answer: string) => answer.split(' ')[2];

  before(async () => {
    swarm = await createSwarmLab({ managers: ['m1'], workers: ['m2', 'm3'], echoApp: true });
    ({ ip: addrs, nodeIds } = swarm);
    hubNs = `${swarm.lab.prefix}-hub`;
    hub = hubAddress(swarm.lab.subnet);
  });

  after(async () => {
    await swarm?.cleanup();
  });

  it("ingress TCP and UDP: every machine answers with the hub's own address (task on m2: same-node and cross-node)", async () => {
    await d('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'echo',
      '--constraint',
      `node.id==${nodeIds.get('m2')}`,
      '-p',
      '30080:8080',
      '-p',
      '30090:9090/udp',
      IMAGE,
    ]);
    await running('echo', 1);
    for (const m of MACHINES) {
      const tcp = await waitFor(
        `TCP answer at ${m}:30080`,
        async () => (await tcpAsk(hubNs, addrs.get(m)!, 30080)) || undefined,
        30_000,
      );
      assert.equal(peerOf(tcp), hub, `TCP via ${m}: ${tcp}`);
      const udp = await waitFor(
        `UDP answer at ${m}:30090`,
        async () => (await udpAsk(hubNs, addrs.get(m)!, 30090)) || undefined,
        30_000,
      );
      assert.equal(peerOf(udp), hub, `UDP via ${m}: ${udp}`);
    }
    // Idle TCP connections through the mesh are kept 5 days in the task's conntrack (conntrack.ts).
    const [cid] = (
      await d('m2', ['ps', '-q', '--no-trunc', '--filter', 'label=com.docker.swarm.service.name=echo'])
    ).split('\n');
    const pid = await d('m2', ['inspect', '--format', '{{.State.Pid}}', cid]);
    const timeout = await run('nsenter', [
      `--net=/proc/${pid}/ns/net`,
      'sysctl',
      '-n',
      'net.netfilter.nf_conntrack_tcp_timeout_established',
    ]);
    assert.equal(timeout.stdout.trim(), '432000');
  });

  it('host-mode ports keep the client address too', async () => {
    await d('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'echo-host',
      '--constraint',
      `node.id==${nodeIds.get('m3')}`,
      '--publish',
      'mode=host,published=31080,target=8080',
      '--publish',
      'mode=host,published=31090,target=9090,protocol=udp',
      IMAGE,
    ]);
    await running('echo-host', 1);
    const tcp = await waitFor(
      'TCP answer at m3:31080',
      async () => (await tcpAsk(hubNs, addrs.get('m3')!, 31080)) || undefined,
      30_000,
    );
    assert.equal(peerOf(tcp), hub, tcp);
    const udp = await waitFor(
      'UDP answer at m3:31090',
      async () => (await udpAsk(hubNs, addrs.get('m3')!, 31090)) || undefined,
      30_000,
    );
    assert.equal(peerOf(udp), hub, udp);
  });

  it("label shoal.mesh.masquerade=true restores Docker's masquerade: the task sees an ingress address", async () => {
    await d('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'echo-masq',
      '--label',
      'shoal.mesh.masquerade=true',
      '--constraint',
      `node.id==${nodeIds.get('m2')}`,
      '-p',
      '30082:8080',
      IMAGE,
    ]);
    await running('echo-masq', 1);
    const ingress = JSON.parse(await d('m1', ['network', 'inspect', 'ingress']))[0];
    const prefix = (ingress.IPAM.Config[0].Subnet as string).split('.').slice(0, 3).join('.') + '.';
    for (const m of MACHINES) {
      const tcp = await waitFor(
        `TCP answer at ${m}:30082`,
        async () => (await tcpAsk(hubNs, addrs.get(m)!, 30082)) || undefined,
        30_000,
      );
      assert.notEqual(peerOf(tcp), hub, tcp);
      assert.ok(peerOf(tcp).startsWith(prefix), `${tcp} from the ingress network ${prefix}0`);
    }
  });

  it('a long-lived connection survives a scale up and a scale down of other tasks', async () => {
    await d('m1', ['service', 'create', '--detach', '--name', 'long', '-p', '30083:8080', IMAGE]);
    await running('long', 1);
    await waitFor(
      'long answers at m1',
      async () => (await tcpAsk(hubNs, addrs.get('m1')!, 30083)) || undefined,
      30_000,
    );
    const [own] = await containers('long');
    // The connection enters at a machine that does not run the task when there is one: cross-node.
    const entry = (await d(MACHINES[0], ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=long']))
      ? 'm2'
      : 'm1';
    const conn: ChildProcessWithoutNullStreams = spawn('ip', [
      'netns',
      'exec',
      hubNs,
      'socat',
      '-T',
      '600',
      'STDIO',
      `TCP4:${addrs.get(entry)}:30083`,
    ]);
    const lines = createInterface({ input: conn.stdout })[Symbol.asyncIterator]();
    const next = async () => {
      const r = await Promise.race([
        lines.next(),
        new Promise<never>((_, no) => setTimeout(() => no(new Error('no echo within 10 s')), 10_000)),
      ]);
      assert.ok(!r.done, 'connection closed');
      return r.value as string;
    };
    try {
      const first = await next();
      assert.equal(peerOf(first), hub, first);
      assert.equal(hostOf(first), own, 'answered by the only task');
      conn.stdin.write('before\n');
      assert.equal(await next(), 'before');
      await d('m1', ['service', 'scale', '--detach', 'long=3']);
      await running('long', 3);
      await waitFor('3 long containers', async () => (await containers('long')).length === 3);
      conn.stdin.write('scaled-up\n');
      assert.equal(await next(), 'scaled-up');
      await d('m1', ['service', 'scale', '--detach', 'long=1']);
      await running('long', 1);
      await waitFor('1 long container', async () => (await containers('long')).length === 1);
      assert.deepEqual(await containers('long'), [own], "the connection's task stays (lowest slot)");
      conn.stdin.write('scaled-down\n');
      assert.equal(await next(), 'scaled-down');
    } finally {
      conn.kill();
    }
  });

  it('a rolling update under steady requests loses none (drain, then stop)', async () => {
    // RUNNING means the process started, not that it listens (as in Docker): the health check
    // makes RUNNING mean "answers", which is what a rolling update without losses needs.
    await d('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      'roll',
      '--replicas',
      '2',
      '-p',
      '30084:8080',
      '--health-cmd',
      'socat /dev/null TCP4:127.0.0.1:8080',
      '--health-interval',
      '250ms',
      '--health-timeout',
      '2s',
      '--health-retries',
      '3',
      IMAGE,
    ]);
    await running('roll', 2);
    for (const m of MACHINES)
      await waitFor(
        `roll answers at ${m}`,
        async () => (await tcpAsk(hubNs, addrs.get(m)!, 30084)) || undefined,
        30_000,
      );
    const before = new Set(await containers('roll'));
    let stop = false;
    const failures: string[] = [];
    const seen = new Set<string>();
    let sent = 0;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const m = MACHINES[i % MACHINES.length];
        sent++;
        const { line: a, error } = await tcpTry(hubNs, addrs.get(m)!, 30084, 5);
        if (!a || peerOf(a) !== hub) failures.push(`${new Date().toISOString()} ${m}: '${a}' ${error}`);
        else seen.add(hostOf(a));
      }
    })();
    try {
      await d('m1', ['service', 'update', '--detach', '--env-add', 'ROLL=2', 'roll']);
      await waitFor(
        'update completed',
        async () =>
          (await d('m1', [
            'service',
            'inspect',
            '--format',
            '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}',
            'roll',
          ])) === 'completed',
        120_000,
      );
      await running('roll', 2);
      const after = await containers('roll');
      assert.equal(after.filter((c) => before.has(c)).length, 0, 'both tasks replaced');
      // Some requests on the new tasks too.
      await waitFor('new tasks answer', async () => after.every((c) => seen.has(c)), 30_000);
    } finally {
      stop = true;
      await load;
    }
    assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
    assert.ok(sent > 20, `${sent} requests`);
  });
});
