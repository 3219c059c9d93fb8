/**
 * Images across the swarm (`node dist/bench/image-sharing.js [machines] [MiB] [layers]`, root):
 * N machines (default 5) start a global service of an image of MiB of random data (default
 * 200, in 4 layers, plus busybox) at once, twice, from a cold start each time:
 *  - registry: the image is only in the lab registry (Debian docker-registry); every node pulls.
 *  - peers: one node pulls it from the registry (the seed), then the service starts and the
 *    other nodes fetch it from the nodes that hold it (mutual TLS, verified by digest).
 * Reported: seconds from `service create` to all tasks RUNNING (peers: also with the seed pull),
 * and bytes the registry sent (an nftables counter on its port, in the lab's hub namespace).
 * The registry's uplink is limited to SHOAL_BENCH_REGISTRY_MBIT (default 1000; 0: no limit) in
 * both scenarios alike, an htb class for what leaves its port: a real registry has one uplink
 * that all nodes share, while each node has its own (the machines' veths stay unlimited).
 */
import fs from 'node:fs';
import path from 'node:path';
import { run } from '../src/util/run.js';
import { LabNames, REGISTRY_PORT } from '../src/lab/settings.js';
import { readMachine } from '../src/lab/state.js';
import { createSwarmLab, type SwarmLab } from '../test/helpers/swarm-lab.js';
import { randomImageArchive } from '../test/helpers/image-archive.js';
import { waitFor } from '../test/helpers/process.js';
import { api, printTable, writeReport } from './report.js';
import { profileChildrenIfAsked } from './sim/profile-children.js';

const machines = Number(process.argv[2] ?? 5);
const mib = Number(process.argv[3] ?? 200);
const layers = Number(process.argv[4] ?? 4);
if (!(machines >= 2 && mib > 0 && layers >= 1)) {
  console.error('usage: node dist/bench/image-sharing.js [machines ≥ 2] [MiB] [layers]');
  process.exit(2);
}
const TABLE = 'shoalbench_registry';
const registryMbit = Number(process.env.SHOAL_BENCH_REGISTRY_MBIT ?? 1000);

let swarm: SwarmLab;
const ok = async (m: string, args: string[]) => {
  const r = await swarm.d(m, args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} on ${m}: ${r.stderr}`);
  return r.stdout.trim();
};
const hub = () => `/var/run/netns/${swarm.lab.prefix}-hub`;
const nft = (args: string[], input?: string) =>
  run('nsenter', [`--net=${hub()}`, 'nft', ...args], input !== undefined ? { input: Buffer.from(input) } : {});

/** Counts what the registry sends (its replies leave the hub namespace from REGISTRY_PORT). */
async function resetRegistryCounter(): Promise<void> {
  await nft(['-f', '-'], `table inet ${TABLE}\ndelete table inet ${TABLE}\n`);
  await nft(
    ['-f', '-'],
    `table inet ${TABLE} {\n chain out {\n  type filter hook output priority 0;\n  tcp sport ${REGISTRY_PORT} counter\n }\n}\n`,
  );
}
async function registryBytes(): Promise<number> {
  const out = JSON.parse((await nft(['-j', 'list', 'table', 'inet', TABLE])).stdout) as {
    nftables: Array<{ rule?: { expr: Array<{ counter?: { bytes: number } }> } }>;
  };
  return out.nftables.flatMap((o) => o.rule?.expr ?? []).reduce((n, e) => n + (e.counter?.bytes ?? 0), 0);
}

/** The registry's one uplink: what leaves its port through the lab bridge, at `registryMbit`. */
async function limitRegistryLink(): Promise<void> {
  if (!registryMbit) return;
  const tc = (args: string) => run('nsenter', [`--net=${hub()}`, 'tc', ...args.split(' ')]);
  const dev = LabNames.hubBridge;
  await tc(`qdisc add dev ${dev} root handle 1: htb default 20`);
  await tc(
    `class add dev ${dev} parent 1: classid 1:10 htb rate ${registryMbit}mbit burst 256k cburst 256k quantum 60000`,
  );
  await tc(`class add dev ${dev} parent 1: classid 1:20 htb rate 100gbit quantum 60000`);
  await tc(`filter add dev ${dev} parent 1: protocol ip u32 match ip sport ${REGISTRY_PORT} 0xffff flowid 1:10`);
}

/** Bytes that went through the registry's limited class so far (0 without a limit): the limit was in force. */
async function limitedBytes(): Promise<number> {
  if (!registryMbit) return 0;
  const r = await run('nsenter', [`--net=${hub()}`, 'tc', '-s', 'class', 'show', 'dev', LabNames.hubBridge]);
  // This tc prints no JSON for classes: "class htb 1:10 … \n Sent N bytes …".
  return Number(/class htb 1:10 [^\n]*\n\s*Sent (\d+) bytes/.exec(r.stdout)?.[1] ?? 0);
}

/** Bytes each node got, summed per source: the seed, or a node that got it from peers itself. */
function peerSources(from: Map<string, number>, seedId: string): { seed: number; others: number } {
  const out = { seed: 0, others: 0 };
  for (const m of swarm.machines) {
    const log = fs.readFileSync(path.join(swarm.lab.labDir, 'machines', m, 'shoald.log'), 'utf8').slice(from.get(m));
    for (const line of log.split('\n').filter((l) => l.includes('image fetched from peers')))
      for (const [node, n] of Object.entries((JSON.parse(line) as { from: Record<string, number> }).from))
        out[node === seedId ? 'seed' : 'others'] += n;
  }
  return out;
}

/** Seconds each machine's peer fetch took, from the agents' "image fetched from peers" lines since `from`. */
function peerFetchSeconds(from: Map<string, number>): number[] {
  const out: number[] = [];
  for (const m of swarm.machines) {
    const log = fs.readFileSync(path.join(swarm.lab.labDir, 'machines', m, 'shoald.log'), 'utf8').slice(from.get(m));
    for (const line of log.split('\n').filter((l) => l.includes('image fetched from peers')))
      out.push((JSON.parse(line) as { seconds: number }).seconds);
  }
  return out.sort((a, b) => a - b);
}

/** Creates a global service and returns the seconds until every machine runs its task. */
async function startEverywhere(name: string, image: string): Promise<number> {
  const t0 = Date.now();
  await ok(swarm.machines[0], [
    'service',
    'create',
    '--detach',
    '--name',
    name,
    '--mode',
    'global',
    image,
    'sleep',
    '1d',
  ]);
  await waitFor(
    `${machines} running tasks of ${name}`,
    async () => {
      const states = (await ok(swarm.machines[0], ['service', 'ps', name, '--format', '{{.CurrentState}}|{{.Error}}']))
        .split('\n')
        .filter(Boolean);
      const failed = states.find((s) => !s.endsWith('|'));
      if (failed) throw new Error(`a task failed: ${failed}`);
      return states.filter((s) => s.startsWith('Running')).length === machines;
    },
    900_000,
    250,
  );
  return (Date.now() - t0) / 1000;
}

/**
 * Waits until the managers know the seed holds the image it just pulled (its report reached
 * them), and returns the seconds that took. What the bench can see of that: a name only the
 * seed (a worker) gives the image (in the lab registry's namespace, where the registry has nothing under
 * it) resolves through GET /distribution, which falls back to the swarm's images; the seed's
 * reports go one at a time, whole, so the one with the name has the pulled image too.
 */
async function untilManagersKnow(seed: string, ref: string): Promise<number> {
  const t0 = Date.now();
  const marker = `${swarm.registry}/bigimg:seed-holds-${process.pid}`;
  await ok(seed, ['tag', ref, marker]);
  const socket = (await swarm.lab.dockerHost(swarm.machines[0])).replace(/^unix:\/\//, '');
  await waitFor(
    'the managers to know the seed holds the image',
    async () => (await api(socket, 'GET', `/distribution/${marker}/json`)).status === 200,
    60_000,
    20,
  );
  return (Date.now() - t0) / 1000;
}

/** Removes the service and the image from every machine: the next scenario starts cold. */
async function clean(service: string, imageId: string): Promise<void> {
  await ok(swarm.machines[0], ['service', 'rm', service]);
  for (const m of swarm.machines)
    await waitFor(
      `${service} gone on ${m}`,
      async () => (await ok(m, ['ps', '-aq', '--filter', `name=${service}`])) === '',
      120_000,
      500,
    );
  for (const m of swarm.machines) await swarm.d(m, ['rmi', '-f', imageId]);
}

/** Bytes each machine received from peers, from the agents' "image fetched from peers" lines since `from`. */
function peerBytes(from: Map<string, number>): number {
  let total = 0;
  for (const m of swarm.machines) {
    const log = fs.readFileSync(path.join(swarm.lab.labDir, 'machines', m, 'shoald.log'), 'utf8').slice(from.get(m));
    for (const line of log.split('\n').filter((l) => l.includes('image fetched from peers'))) {
      const f = (JSON.parse(line) as { from: Record<string, number> }).from;
      total += Object.values(f).reduce((a, b) => a + b, 0);
    }
  }
  return total;
}

/** With SHOAL_BENCH_PROFILE: each shoald writes its CPU profile so far (cpu-profile.ts), one file per phase. */
function profilePhaseEnd(): void {
  if (!process.env.SHOAL_BENCH_PROFILE) return;
  for (const m of swarm.machines) {
    const pid = readMachine(swarm.lab.labDir, m)?.pid;
    if (pid) process.kill(pid, 'SIGUSR2');
  }
}

/** The machine's CPU time so far (/proc/stat, in clock ticks): user+nice, system (+irq), iowait, idle. */
function cpuTicks(): { busy: number; sys: number; iowait: number; idle: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return { busy: f[0] + f[1], sys: f[2] + f[5] + f[6], iowait: f[4], idle: f[3] };
}
/** Where the cores' time went since `from`, in percent: was the machine CPU-bound, or waiting on the disk? */
function cpuSince(from: ReturnType<typeof cpuTicks>): { user: number; sys: number; iowait: number; idle: number } {
  const now = cpuTicks();
  const d = {
    user: now.busy - from.busy,
    sys: now.sys - from.sys,
    iowait: now.iowait - from.iowait,
    idle: now.idle - from.idle,
  };
  const all = d.user + d.sys + d.iowait + d.idle || 1;
  const pct = (n: number) => Math.round((100 * n) / all);
  return { user: pct(d.user), sys: pct(d.sys), iowait: pct(d.iowait), idle: pct(d.idle) };
}
const cpuText = (c: ReturnType<typeof cpuSince>) =>
  `user ${c.user} %, system ${c.sys} %, iowait ${c.iowait} %, idle ${c.idle} %`;

async function main(): Promise<void> {
  profileChildrenIfAsked();
  const names = Array.from({ length: machines }, (_, i) => `b${i + 1}`);
  swarm = await createSwarmLab({ managers: [names[0]], workers: names.slice(1), registry: true });
  try {
    const dir = fs.mkdtempSync(path.join(swarm.lab.labDir, 'bench-'));
    const ref = `${swarm.registry}/bigimg:1`;
    const per = Math.floor((mib << 20) / layers);
    const img = await randomImageArchive(
      dir,
      ref,
      Array.from({ length: layers }, () => per),
    );
    await ok(names[0], ['load', '-i', img.file]);
    await ok(names[0], ['push', ref]);
    await swarm.d(names[0], ['rmi', '-f', img.id]);
    // A worker: the manager's own answer (below) must come from what it was told, not its images.
    const seed = names[1];
    await limitRegistryLink();

    await resetRegistryCounter();
    const loadBefore = fs.readFileSync('/proc/loadavg', 'utf8').trim();
    const registryCpuFrom = cpuTicks();
    const registrySeconds = await startEverywhere('fromregistry', ref);
    const registryCpu = cpuSince(registryCpuFrom);
    profilePhaseEnd();
    const registrySent = await registryBytes();
    const registryLimited = await limitedBytes();
    await clean('fromregistry', img.id);

    await resetRegistryCounter();
    const logFrom = new Map(
      swarm.machines.map((m) => [m, fs.statSync(path.join(swarm.lab.labDir, 'machines', m, 'shoald.log')).size]),
    );
    profilePhaseEnd();
    const peersCpuFrom = cpuTicks();
    const t0 = Date.now();
    await ok(seed, ['pull', ref]);
    const seedSeconds = (Date.now() - t0) / 1000;
    // Counted below: until the managers know, the other nodes would pull from the registry too.
    const pauseSeconds = await untilManagersKnow(seed, ref);
    const peerSeconds = await startEverywhere('frompeers', ref);
    const peersCpu = cpuSince(peersCpuFrom);
    profilePhaseEnd();
    const peersRegistrySent = await registryBytes();
    const fromPeers = peerBytes(logFrom);
    const fetchSeconds = peerFetchSeconds(logFrom);
    const seedId = await ok(seed, ['info', '--format', '{{.Swarm.NodeID}}']);
    const sources = peerSources(logFrom, seedId);
    const limited = await limitedBytes();

    const imageBytes = fs.statSync(img.file).size;
    const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;
    const link = registryMbit ? `registry uplink ${registryMbit} Mbit/s` : 'registry uplink unlimited';
    printTable(`${machines} machines, image ${mb(imageBytes)} (${layers} random layers + busybox), ${link}, one run`, [
      ['registry only: create → all RUNNING', `${registrySeconds.toFixed(1)} s`],
      [
        'registry only: bytes the registry sent',
        `${mb(registrySent)} (${(registrySent / imageBytes).toFixed(2)} × image)`,
      ],
      ['peers: seed pull on one node', `${seedSeconds.toFixed(1)} s`],
      ['peers: seed pull → managers know the seed holds it', `${pauseSeconds.toFixed(2)} s`],
      ['peers: create → all RUNNING', `${peerSeconds.toFixed(1)} s`],
      ['peers: seed pull + that + create → all RUNNING', `${(seedSeconds + pauseSeconds + peerSeconds).toFixed(1)} s`],
      ["peers: each node's fetch from peers", fetchSeconds.map((x) => `${x.toFixed(1)} s`).join(', ')],
      [
        'peers: bytes the registry sent',
        `${mb(peersRegistrySent)} (${(peersRegistrySent / imageBytes).toFixed(2)} × image)`,
      ],
      ['peers: bytes nodes got from peers', mb(fromPeers)],
      ['peers: … of which from the seed / from other nodes', `${mb(sources.seed)} / ${mb(sources.others)}`],
      ['bytes through the registry uplink limit (registry only, both)', `${mb(registryLimited)}, ${mb(limited)}`],
      ['CPU (whole machine) registry only', cpuText(registryCpu)],
      ['CPU (whole machine) peers, seed pull included', cpuText(peersCpu)],
      ['load average before / after', `${loadBefore} / ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`],
    ]);
    console.log(
      `written ${writeReport('image-sharing', {
        when: new Date().toISOString(),
        machines,
        imageBytes,
        layers,
        registryMbit,
        loadAverage: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
        loadAverageBefore: loadBefore,
        registry: { seconds: registrySeconds, registryBytes: registrySent, cpu: registryCpu },
        limitedBytes: { registryOnly: registryLimited, total: limited },
        peers: {
          seedSeconds,
          seconds: peerSeconds,
          registryBytes: peersRegistrySent,
          peerBytes: fromPeers,
          pauseSeconds,
          fetchSeconds,
          cpu: peersCpu,
          totalSeconds: seedSeconds + pauseSeconds + peerSeconds,
        },
      })}`,
    );
  } finally {
    await swarm.cleanup();
  }
}

await main();
