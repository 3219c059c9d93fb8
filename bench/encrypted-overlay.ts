/**
 * Encrypted overlay (`--opt encrypted`: VXLAN inside WireGuard, wireguard-go on this kernel)
 * against a plain overlay, same run, same two containers on two lab machines: requests/s and
 * p50/p99 with wrk (micro's page, 1 thread, 8 connections) and MB/s of one TCP stream (socat,
 * 256 MiB from /dev/zero to /dev/null). wrk and socat are the host's binaries run inside the
 * client and server containers' network namespaces.
 * Run as root: `npx tsc -p . && node dist/bench/encrypted-overlay.js [seconds] [MiB]`.
 */
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { run } from '../src/util/run.js';
import { createMachines, newTestLab } from '../test/helpers/lab.js';
import { pushMicro } from '../test/helpers/micro.js';
import { sandboxPrefix } from '../src/agent/network-agent.js';
import { printTable, writeReport } from './report.js';
import { parseWrk, wrkArgs, type WrkResult } from './wrk.js';

const seconds = Number(process.argv[2] ?? 5);
const mib = Number(process.argv[3] ?? 256);
const MACHINES = ['m1', 'm2'];

const inNs = (pid: string, cmd: string, args: string[]) =>
  run('nsenter', [`--net=/proc/${pid}/ns/net`, '--', cmd, ...args]);

async function wrk(pid: string, url: string): Promise<WrkResult> {
  return parseWrk(await inNs(pid, 'wrk', wrkArgs(seconds, url)));
}

/** One TCP stream of `mib` MiB from the client's namespace to a socat sink in the server's: MB/s (10^6 bytes). */
async function stream(clientPid: string, serverPid: string, ip: string, port: number): Promise<number> {
  const sink = spawn(
    'nsenter',
    [`--net=/proc/${serverPid}/ns/net`, '--', 'socat', '-u', `TCP-LISTEN:${port},reuseaddr`, 'OPEN:/dev/null'],
    { stdio: 'ignore' },
  );
  try {
    await new Promise((r) => setTimeout(r, 300));
    const t0 = process.hrtime.bigint();
    await run('sh', [
      '-c',
      `head -c ${mib * 1048576} /dev/zero | nsenter --net=/proc/${clientPid}/ns/net -- socat -u - TCP:${ip}:${port}`,
    ]);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return +((mib * 1048576) / 1e6 / s).toFixed(1);
  } finally {
    sink.kill();
  }
}

async function until(what: string, fn: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 180_000;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const lab = newTestLab();
const nodeIds: string[] = [];
try {
  await createMachines(lab, MACHINES);
  const ip = (m: string) => lab.machine(['ip', m]).then((r) => r.stdout.trim());
  const d = (m: string, args: string[]) => lab.docker(m, args);
  await d('m1', ['swarm', 'init', '--advertise-addr', await ip('m1')]);
  const token = (await d('m1', ['swarm', 'join-token', '-q', 'worker'])).stdout.trim();
  await d('m2', ['swarm', 'join', '--token', token, `${await ip('m1')}:2377`]);
  for (const m of MACHINES) nodeIds.push((await d(m, ['info', '--format', '{{.Swarm.NodeID}}'])).stdout.trim());
  const image = await pushMicro(
    { socket: (await lab.dockerHost('m1')).replace(/^unix:\/\//, '') },
    (await lab.machine(['registry'])).stdout.trim(),
  );
  await d('m1', ['network', 'create', '-d', 'overlay', 'plain']);
  await d('m1', ['network', 'create', '-d', 'overlay', '--opt', 'encrypted', 'secret']);
  for (const [name, m] of [
    ['srv', 'm2'],
    ['cli', 'm1'],
  ]) {
    await d('m1', [
      'service',
      'create',
      '--detach',
      '--name',
      name,
      '--constraint',
      `node.hostname==${m}`,
      '--network',
      'plain',
      '--network',
      'secret',
      image,
    ]);
  }
  await until('srv and cli running', async () =>
    (await d('m1', ['service', 'ls', '--format', '{{.Replicas}}'])).stdout
      .trim()
      .split('\n')
      .every((r) => r === '1/1'),
  );
  const container = async (m: string, svc: string) =>
    (await d(m, ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${svc}`])).stdout.trim().split('\n')[0];
  const srv = await container('m2', 'srv');
  const cli = await container('m1', 'cli');
  const pidOf = async (m: string, c: string) =>
    (await d(m, ['inspect', '--format', '{{.State.Pid}}', c])).stdout.trim();
  const srvPid = await pidOf('m2', srv);
  const cliPid = await pidOf('m1', cli);
  const nets = JSON.parse(
    (await d('m2', ['inspect', '--format', '{{json .NetworkSettings.Networks}}', srv])).stdout,
  ) as Record<string, { IPAddress: string }>;
  const target = { plain: nets.plain.IPAddress, secret: nets.secret.IPAddress };
  for (const [k, a] of Object.entries(target)) {
    await until(
      `${k} answers`,
      async () =>
        (
          await run('nsenter', [`--net=/proc/${cliPid}/ns/net`, '--', 'curl', '-sf', '-m', '2', `http://${a}:8000/`], {
            allowFail: true,
          })
        ).code === 0,
    );
  }
  const loadBefore = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const started = new Date().toISOString();
  const plainWrk = await wrk(cliPid, `http://${target.plain}:8000/`);
  const secretWrk = await wrk(cliPid, `http://${target.secret}:8000/`);
  const plainMBs = await stream(cliPid, srvPid, target.plain, 9000);
  const secretMBs = await stream(cliPid, srvPid, target.secret, 9001);
  const mode = JSON.parse(
    (
      await run('sh', [
        '-c',
        `curl -s --unix-socket ${(await lab.dockerHost('m1')).replace(/^unix:\/\//, '')} http://x/v1.41/nodes/${nodeIds[1]}`,
      ])
    ).stdout,
  ).Tunnel?.Mode;
  const result = {
    when: started,
    loadavg: { before: loadBefore, after: fs.readFileSync('/proc/loadavg', 'utf8').trim() },
    seconds,
    mib,
    tool: 'wrk --latency -t1 -c8 (micro / CGI); socat one TCP stream',
    tunnel: mode,
    plain: { ...plainWrk, MBps: plainMBs },
    encrypted: { ...secretWrk, MBps: secretMBs },
    ratioEncryptedToPlain: {
      requestsPerSecond: +(secretWrk.requestsPerSecond / plainWrk.requestsPerSecond).toFixed(2),
      p99: +(secretWrk.p99Ms / plainWrk.p99Ms).toFixed(2),
      MBps: +(secretMBs / plainMBs).toFixed(2),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  const row = (w: WrkResult, mbs: number) =>
    `${w.requestsPerSecond.toFixed(0).padStart(6)} req/s  p50 ${w.p50Ms.toFixed(2)} ms  p99 ${w.p99Ms.toFixed(2)} ms  ${mbs.toFixed(1)} MB/s`;
  printTable(
    `overlay m1 → m2, ${seconds} s wrk, ${mib} MiB stream, tunnel ${mode}, load ${loadBefore} → ${result.loadavg.after}`,
    [
      ['plain overlay', row(plainWrk, plainMBs)],
      ['encrypted overlay', row(secretWrk, secretMBs)],
    ],
  );
  console.log(`written ${writeReport('encrypted-overlay', result)}`);
} finally {
  for (const m of MACHINES)
    await lab.docker(m, ['swarm', 'leave', '--force'], { allowFail: true }).catch(() => undefined);
  await lab.prune();
  for (const id of nodeIds) {
    for (const ns of fs.readdirSync('/run/netns').filter((n) => n.startsWith(`${sandboxPrefix(id)}-`)))
      await run('ip', ['netns', 'delete', ns], { allowFail: true });
  }
}
