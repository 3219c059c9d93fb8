/**
 * The chaos suite (`npm run chaos -- [--seed N] [--rounds N] [--managers 3|5] [--workers N]
 * [--faults a,b,…] [--heartbeat 2s]`): a lab of managers and workers made with `shoal machine`,
 * services of several kinds, a steady client load through the routing mesh from the lab hub,
 * and a write probe; then rounds of faults in an order drawn from the seed. After each fault the
 * swarm must heal: every node whose daemon is up Ready, every service as specified, each slot
 * running exactly once, no orphan containers, the mesh answering on every node, DNS pointing
 * only at running tasks. Each round prints a table of figures (time to detect, to converge,
 * write-unavailability, client requests failed); the run ends with a summary, and exits 1 when
 * an invariant did not come back within the convergence bound. The seed reproduces the order.
 * Run as root; it makes its own lab (unique prefix and subnet) and removes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run, type RunResult } from '../../src/util/run.js';
import { Lab } from '../../src/lab/lab.js';
import { resolveSettings } from '../../src/lab/settings.js';
import { sandboxPrefix } from '../../src/agent/network-agent.js';
import { WRITE_DEADLINE_MS } from '../../src/manager/store/store.js';
import { newTestLab, type TestLab } from '../../test/helpers/lab.js';
import { pushMicro } from '../../test/helpers/micro.js';
import { writeReport } from '../report.js';
import { FAULTS, runFault, type FaultName } from './faults.js';
import { mulberry32 } from './random.js';

interface Options {
  seed: number;
  rounds: number;
  managers: number;
  workers: number;
  faults: FaultName[];
  heartbeat: string;
  /** Seconds an invariant may take to come back after a fault healed. */
  convergeS: number;
  keep: boolean;
  /** No new round starts after this many minutes (0: no limit). */
  minutes: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    seed: Date.now() % 1_000_000,
    rounds: 10,
    managers: 3,
    workers: 2,
    faults: [...FAULTS],
    heartbeat: '2s',
    convergeS: 180,
    keep: false,
    minutes: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--seed') {
      o.seed = Number(v);
      i++;
    } else if (k === '--rounds') {
      o.rounds = Number(v);
      i++;
    } else if (k === '--managers') {
      o.managers = Number(v);
      i++;
    } else if (k === '--workers') {
      o.workers = Number(v);
      i++;
    } else if (k === '--heartbeat') {
      o.heartbeat = v;
      i++;
    } else if (k === '--converge') {
      o.convergeS = Number(v);
      i++;
    } else if (k === '--keep') o.keep = true;
    else if (k === '--help' || k === '-h') {
      console.log(
        `usage: chaos [--seed N] [--rounds N] [--managers 3|5] [--workers N] [--faults a,b,…] [--heartbeat 2s] [--converge S] [--minutes M] [--keep]\nfaults: ${FAULTS.join(', ')}`,
      );
      process.exit(0);
    } else if (k === '--minutes') {
      o.minutes = Number(v);
      i++;
    } else if (k === '--faults') {
      const names = v.split(',').filter(Boolean);
      for (const n of names)
        if (!FAULTS.includes(n as FaultName)) throw new Error(`unknown fault ${n}; known: ${FAULTS.join(', ')}`);
      o.faults = names as FaultName[];
      i++;
    } else throw new Error(`unknown argument ${k}`);
  }
  if (![3, 5].includes(o.managers)) throw new Error('--managers is 3 or 5');
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A CLI call never waits longer than this (a write's bound plus the CLI's own start). */
const CALL_TIMEOUT_MS = WRITE_DEADLINE_MS + 10_000;
/** A write answered later than this hung past the store's bound. */
const HANG_MS = WRITE_DEADLINE_MS + 3000;

export interface Machine {
  name: string;
  role: 'manager' | 'worker';
  ip: string;
  /** The suite's view: its daemon should be up and it is on the lab network. */
  up: boolean;
}

/** The services the suite keeps, with what each must look like. */
const REPLICATED = { web: 4, health: 2, sec: 2 } as const;
const PUBLISHED_PORT = 8080;
const NET = 'chaos-net';

export class Swarm {
  machines: Machine[] = [];
  private nextWorker = 1;
  hub: string;
  token = { worker: '', manager: '' };
  image = '';
  /** Set while a fault holds a machine: the load and the probe leave it alone. */
  faulted = new Set<string>();

  constructor(
    readonly lab: TestLab,
    readonly labApi: Lab,
    readonly opts: Options,
  ) {
    this.hub = `${lab.prefix}-hub`;
  }

  d(m: string, args: string[], timeout = CALL_TIMEOUT_MS): Promise<RunResult> {
    return this.lab
      .docker(m, args, { allowFail: true, timeout })
      .catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  }

  async ok(m: string, args: string[]): Promise<string> {
    const r = await this.d(m, args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} on ${m}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }

  up(role?: 'manager' | 'worker'): Machine[] {
    return this.machines.filter((m) => m.up && (!role || m.role === role));
  }

  /** A manager to ask: up and not under a fault, the leader when known. */
  async anyManager(): Promise<string> {
    for (let i = 0; i < 120; i++) {
      for (const m of this.up('manager').filter((x) => !this.faulted.has(x.name))) {
        const r = await this.d(m.name, ['node', 'ls', '--format', '{{.Hostname}}'], 10_000);
        if (r.code === 0) return m.name;
      }
      await sleep(1000);
    }
    throw new Error('no manager answers');
  }

  async leader(): Promise<string | undefined> {
    const via = await this.anyManager();
    const r = await this.d(via, ['node', 'ls', '--format', '{{.Hostname}} {{.ManagerStatus}}'], 10_000);
    return r.stdout
      .split('\n')
      .find((l) => l.endsWith(' Leader'))
      ?.split(' ')[0];
  }

  async ip(m: string): Promise<string> {
    return (await this.lab.machine(['ip', m])).stdout.trim();
  }

  async createMachine(name: string, role: 'manager' | 'worker'): Promise<Machine> {
    await this.lab.machine(['create', name]);
    const m: Machine = { name, role, ip: await this.ip(name), up: true };
    this.machines.push(m);
    return m;
  }

  async join(m: Machine): Promise<void> {
    const first = this.machines.find((x) => x.role === 'manager' && x !== m && x.up)!;
    await this.ok(m.name, ['swarm', 'join', '--token', this.token[m.role], `${first.ip}:2377`]);
  }

  newWorkerName(): string {
    return `w${this.nextWorker++}`;
  }

  async setup(): Promise<void> {
    const o = this.opts;
    const names = [
      ...Array.from({ length: o.managers }, (_, i) => [`m${i + 1}`, 'manager'] as const),
      ...Array.from({ length: o.workers }, () => [this.newWorkerName(), 'worker'] as const),
    ];
    for (const [n, role] of names) await this.createMachine(n, role);
    const m1 = this.machines[0];
    await this.ok(m1.name, ['swarm', 'init', '--advertise-addr', m1.ip, '--dispatcher-heartbeat', o.heartbeat]);
    this.token.worker = await this.ok(m1.name, ['swarm', 'join-token', '-q', 'worker']);
    this.token.manager = await this.ok(m1.name, ['swarm', 'join-token', '-q', 'manager']);
    for (const m of this.machines.slice(1)) await this.join(m);
    this.image = await pushMicro(
      { socket: (await this.lab.dockerHost(m1.name)).replace(/^unix:\/\//, '') },
      (await this.lab.machine(['registry'])).stdout.trim(),
    );
    const l = m1.name;
    await this.ok(l, ['network', 'create', '-d', 'overlay', NET]);
    await this.lab.docker(l, ['secret', 'create', 'chaos-secret', '-'], { input: 'a secret\n' });
    const common = ['--detach', '--network', NET, '--stop-grace-period', '2s'];
    await this.ok(l, [
      'service',
      'create',
      '--name',
      'web',
      '--replicas',
      String(REPLICATED.web),
      '-p',
      `${PUBLISHED_PORT}:8000`,
      ...common,
      this.image,
    ]);
    await this.ok(l, ['service', 'create', '--name', 'glob', '--mode', 'global', ...common, this.image]);
    await this.ok(l, [
      'service',
      'create',
      '--name',
      'health',
      '--replicas',
      String(REPLICATED.health),
      '--health-cmd',
      'test -d /www',
      '--health-interval',
      '2s',
      '--health-retries',
      '2',
      ...common,
      this.image,
    ]);
    await this.ok(l, [
      'service',
      'create',
      '--name',
      'sec',
      '--replicas',
      String(REPLICATED.sec),
      '--secret',
      'chaos-secret',
      ...common,
      this.image,
      'sh',
      '-c',
      'test -s /run/secrets/chaos-secret && exec httpd -f -p 8000 -h /www',
    ]);
    await this.ok(l, [
      'service',
      'create',
      '--name',
      'job',
      '--mode',
      'replicated-job',
      '--replicas',
      '2',
      '--detach',
      this.image,
      'true',
    ]);
  }
}

/** Requests through the mesh from the lab hub, a few per second, to machines not under a fault. */
class ClientLoad {
  ok = 0;
  failed = 0;
  private stopped = false;
  private done?: Promise<void>;
  constructor(private readonly s: Swarm) {}
  start(): void {
    this.done = (async () => {
      let i = 0;
      while (!this.stopped) {
        const targets = this.s.up().filter((m) => !this.s.faulted.has(m.name));
        if (targets.length) {
          const m = targets[i++ % targets.length];
          const r = await curl(this.s.hub, `http://${m.ip}:${PUBLISHED_PORT}/`);
          if (r) this.ok++;
          else this.failed++;
        }
        await sleep(250);
      }
    })();
  }
  take(): { ok: number; failed: number } {
    const r = { ok: this.ok, failed: this.failed };
    this.ok = this.failed = 0;
    return r;
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

async function curl(ns: string, url: string): Promise<boolean> {
  const r = await run(
    'nsenter',
    [`--net=/var/run/netns/${ns}`, '--', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-m', '3', url],
    { allowFail: true, timeout: 10_000 },
  ).catch(() => undefined);
  return r?.stdout.trim() === '200';
}

/** One write a second (a node label) through a manager not under a fault: latencies and failures. */
class WriteProbe {
  samples: { at: number; ms: number; ok: boolean; err?: string }[] = [];
  private stopped = false;
  private done?: Promise<void>;
  constructor(private readonly s: Swarm) {}
  start(): void {
    this.done = (async () => {
      let n = 0;
      while (!this.stopped) {
        const managers = this.s.up('manager').filter((m) => !this.s.faulted.has(m.name));
        if (managers.length) {
          const m = managers[n % managers.length];
          const t0 = Date.now();
          const r = await this.s.d(
            m.name,
            ['node', 'update', '--label-add', `chaos-probe=${n++}`, m.name],
            HANG_MS + 10_000,
          );
          const ms = Date.now() - t0;
          // A conflict is an answer (the leader changed the node meanwhile), not unavailability.
          const ok = r.code === 0 || /update out of sequence/.test(r.stderr);
          this.samples.push({ at: t0, ms, ok, ...(ok ? {} : { err: r.stderr.trim().split('\n').pop() }) });
        }
        await sleep(1000);
      }
    })();
  }
  /** From `since`: the longest time writes did not succeed, the slowest answer, hangs. */
  window(since: number): { unavailableMs: number; slowestMs: number; hangs: number; failed: number; errors: string[] } {
    const xs = this.samples.filter((x) => x.at >= since);
    let unavailableMs = 0;
    let failStart: number | undefined;
    for (const x of xs) {
      if (!x.ok) failStart ??= x.at;
      else if (failStart !== undefined) {
        unavailableMs = Math.max(unavailableMs, x.at + x.ms - failStart);
        failStart = undefined;
      }
      if (x.ok && x.ms > 3000) unavailableMs = Math.max(unavailableMs, x.ms);
    }
    if (failStart !== undefined) unavailableMs = Math.max(unavailableMs, Date.now() - failStart);
    return {
      unavailableMs,
      slowestMs: Math.max(0, ...xs.map((x) => x.ms)),
      hangs: xs.filter((x) => x.ms > HANG_MS).length,
      failed: xs.filter((x) => !x.ok).length,
      errors: [...new Set(xs.filter((x) => x.err).map((x) => x.err!))].slice(0, 3),
    };
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** Everything that must hold once the swarm healed; each problem is a sentence. */
async function invariants(s: Swarm, baseline: Map<string, string>): Promise<string[]> {
  const problems: string[] = [];
  const via = await s.anyManager();
  // Nodes: every machine whose daemon is up is Ready; managers reachable.
  const nodes = (
    await s.ok(via, ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'])
  )
    .split('\n')
    .map((l) => l.split(' '));
  for (const m of s.up()) {
    const n = nodes.filter((x) => x[0] === m.name);
    if (n.length !== 1) problems.push(`${m.name}: ${n.length} nodes of that name`);
    else if (n[0][1] !== 'Ready') problems.push(`${m.name}: ${n[0][1]}`);
    else if (m.role === 'manager' && !['Leader', 'Reachable'].includes(n[0][3] ?? ''))
      problems.push(`${m.name}: manager ${n[0][3] ?? 'none'}`);
  }
  // A manager in the node list is one on its own machine too (a quick demote and promote once
  // left a daemon that the list showed Reachable acting as a worker).
  for (const m of s.up('manager')) {
    const r = await s.d(m.name, ['info', '--format', '{{.Swarm.ControlAvailable}}'], 10_000);
    if (r.stdout.trim() !== 'true')
      problems.push(
        `${m.name}: its daemon is not acting as a manager (ControlAvailable ${r.stdout.trim() || r.stderr.trim()})`,
      );
  }
  if (problems.length) return problems;
  // Services as specified: none lost, spec and version as created.
  for (const [name, want] of baseline) {
    const r = await s.d(via, ['service', 'inspect', '--format', '{{json .Spec}} {{.Version.Index}}', name]);
    if (r.code !== 0) problems.push(`service ${name} lost: ${r.stderr.trim()}`);
    else if (r.stdout.trim() !== want) problems.push(`service ${name} changed: ${r.stdout.trim().slice(0, 200)}`);
  }
  // Slots: desired-running tasks, one Running per slot (global: per Ready active node).
  const ready = nodes.filter((x) => x[1] === 'Ready' && x[2] === 'Active').map((x) => x[0]);
  const wanted = new Map<string, string>(); // task ID → "service.slot"
  for (const svc of [...Object.keys(REPLICATED), 'glob']) {
    const ps = (
      await s.ok(via, [
        'service',
        'ps',
        svc,
        '--no-trunc',
        '--filter',
        'desired-state=running',
        '--format',
        '{{.ID}} {{.Name}} {{.Node}} {{.CurrentState}}',
      ])
    )
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '));
    const running = ps.filter((x) => x[3] === 'Running');
    for (const x of ps) wanted.set(x[0], svc === 'glob' ? `glob.${x[2]}` : x[1]);
    if (svc === 'glob') {
      const on = running.map((x) => x[2]).sort();
      if (JSON.stringify(on) !== JSON.stringify([...ready].sort()))
        problems.push(`glob runs on [${on}], want [${[...ready].sort()}]`);
    } else {
      const n = REPLICATED[svc as keyof typeof REPLICATED];
      const slots = running.map((x) => x[1]).sort();
      const want = Array.from({ length: n }, (_, i) => `${svc}.${i + 1}`).sort();
      if (JSON.stringify(slots) !== JSON.stringify(want))
        problems.push(`${svc} running slots [${slots}], want [${want}]`);
    }
  }
  if (problems.length) return problems;
  // Containers on the machines: no slot twice, no orphan.
  const seen = new Map<string, string[]>();
  for (const m of s.up()) {
    const r = await s.d(m.name, [
      'ps',
      '--filter',
      'label=com.docker.swarm.task.id',
      '--format',
      '{{.Label "com.docker.swarm.task.id"}} {{.Label "com.docker.swarm.service.name"}} {{.Names}}',
    ]);
    if (r.code !== 0) {
      problems.push(`${m.name}: docker ps failed: ${r.stderr.trim()}`);
      continue;
    }
    for (const [tid, svc, cname] of r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '))) {
      if (svc === 'job') continue;
      const slot = wanted.get(tid);
      if (!slot) {
        problems.push(`orphan container ${cname} on ${m.name} (task ${tid.slice(0, 12)} not desired running)`);
        continue;
      }
      seen.set(slot, [...(seen.get(slot) ?? []), `${m.name}:${cname}`]);
    }
  }
  for (const [slot, where] of seen)
    if (where.length > 1) problems.push(`slot ${slot} runs ${where.length} times: ${where.join(', ')}`);
  if (problems.length) return problems;
  // The mesh answers on every Ready node.
  for (const m of s.up()) {
    let okAny = false;
    for (let i = 0; i < 3 && !okAny; i++) okAny = await curl(s.hub, `http://${m.ip}:${PUBLISHED_PORT}/`);
    if (!okAny) problems.push(`mesh: ${m.name}:${PUBLISHED_PORT} does not answer`);
  }
  if (problems.length) return problems;
  // DNS: tasks.web from a web container lists exactly the running web tasks' addresses; the VIP answers.
  const webIds = [...wanted].filter(([, slot]) => slot.startsWith('web.')).map(([id]) => id);
  /** The running web tasks' addresses on the service's network (must all be listed), and on any network (may be). */
  const addrs = new Set<string>();
  const anyNet = new Set<string>();
  for (const id of webIds) {
    const out = await s.ok(via, [
      'inspect',
      '--type',
      'task',
      '--format',
      '{{range .NetworksAttachments}}{{.Network.Spec.Name}}={{range .Addresses}}{{.}} {{end}};{{end}}',
      id,
    ]);
    for (const part of out.split(';').filter((x) => x.includes('='))) {
      const [net, list] = part.trim().split('=');
      for (const a of list.split(' ').filter(Boolean)) {
        anyNet.add(a.split('/')[0]);
        if (net === NET) addrs.add(a.split('/')[0]);
      }
    }
  }
  for (const m of s.up()) {
    const c = (await s.d(m.name, ['ps', '-q', '--filter', 'label=com.docker.swarm.service.name=web'])).stdout
      .trim()
      .split('\n')
      .filter(Boolean)[0];
    if (!c) continue;
    const ns = await s.d(m.name, ['exec', c, 'busybox', 'nslookup', 'tasks.web'], 15_000);
    const got = new Set(
      [
        ...ns.stdout
          .split(/Name:\s+tasks\.web/)
          .slice(1)
          .join('\n')
          .matchAll(/Address:\s*(\d+\.\d+\.\d+\.\d+)/g),
      ].map((x) => x[1]),
    );
    // Every running task listed; nothing listed that is not a running task's address on the
    // asker's network (never an ingress address: Docker leaves ingress out of service discovery).
    const missing = [...addrs].filter((a) => !got.has(a));
    const stale = [...got].filter((a) => !addrs.has(a));
    if (missing.length || stale.length)
      problems.push(
        `DNS tasks.web from ${m.name}: missing [${missing}], not running tasks on ${NET} [${stale}${stale.some((a) => anyNet.has(a)) ? " (other networks' task addresses)" : ''}]`,
      );
    const vip = await s.d(
      m.name,
      ['exec', c, 'sh', '-c', "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 web 8000"],
      15_000,
    );
    if (!/Hostname/.test(vip.stdout))
      problems.push(`VIP web:8000 from ${m.name} does not answer: ${vip.stderr.trim().slice(0, 120)}`);
    break;
  }
  return problems;
}

async function baselineOf(s: Swarm): Promise<Map<string, string>> {
  const via = await s.anyManager();
  const b = new Map<string, string>();
  for (const name of [...Object.keys(REPLICATED), 'glob', 'job'])
    b.set(name, await s.ok(via, ['service', 'inspect', '--format', '{{json .Spec}} {{.Version.Index}}', name]));
  return b;
}

/** A problem seen while converging: from and until when (ms after the fault healed), how often. */
export interface Blocker {
  problem: string;
  fromMs: number;
  untilMs: number;
  seen: number;
}

async function waitHealthy(
  s: Swarm,
  baseline: Map<string, string>,
  bound: number,
): Promise<{ ms: number; problems: string[]; blockers: Blocker[] }> {
  const t0 = Date.now();
  let last: string[] = [];
  // What held convergence up, so a slow round can be told apart by cause (the checks stop at
  // the first kind that fails, so a later kind shows only once the earlier ones pass).
  const seen = new Map<string, Blocker>();
  const blockers = () => [...seen.values()].sort((a, b) => b.untilMs - a.untilMs).slice(0, 4);
  while (Date.now() - t0 < bound) {
    const at = Date.now() - t0;
    try {
      last = await invariants(s, baseline);
    } catch (e) {
      last = [(e as Error).message];
    }
    for (const p of last) {
      const b = seen.get(p) ?? { problem: p.slice(0, 240), fromMs: at, untilMs: at, seen: 0 };
      b.untilMs = at;
      b.seen++;
      seen.set(p, b);
    }
    if (!last.length) return { ms: Date.now() - t0, problems: [], blockers: blockers() };
    await sleep(1000);
  }
  return { ms: Date.now() - t0, problems: last, blockers: blockers() };
}

const blockerText = (b: Blocker) => `${b.problem} (${fmt(b.fromMs)} → ${fmt(b.untilMs)})`;

interface RoundResult {
  round: number;
  fault: string;
  target: string;
  detectMs?: number;
  faultMs: number;
  convergeMs: number;
  /** The problems that held convergence up, the last to clear first. */
  blockers: Blocker[];
  writeUnavailableMs: number;
  slowestWriteMs: number;
  writeHangs: number;
  writesFailed: number;
  writeErrors: string[];
  requestsFailed: number;
  requests: number;
  problems: string[];
}

const fmt = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const rand = mulberry32(o.seed);
  const lab = newTestLab();
  const labApi = Lab.open(resolveSettings({}, lab.env));
  const s = new Swarm(lab, labApi, o);
  const results: RoundResult[] = [];
  let broken = false;
  const started = new Date().toISOString();
  console.log(
    `chaos: seed ${o.seed}, ${o.rounds} rounds, ${o.managers} managers + ${o.workers} workers, heartbeat ${o.heartbeat}, faults ${o.faults.join(' ')}`,
  );
  const load = new ClientLoad(s);
  const probe = new WriteProbe(s);
  try {
    const t0 = Date.now();
    await s.setup();
    const baseline = await baselineOf(s);
    const first = await waitHealthy(s, baseline, 300_000);
    if (first.problems.length) throw new Error(`the swarm never became healthy: ${first.problems.join('; ')}`);
    console.log(`lab ready in ${fmt(Date.now() - t0)}`);
    load.start();
    probe.start();
    // SIGINT/SIGTERM: the round in progress ends, then the summary and the clean-up.
    let stop = false;
    for (const sig of ['SIGINT', 'SIGTERM'] as const)
      process.on(sig, () => {
        stop = true;
        console.log(`${sig}: stopping after this round`);
      });
    const runStart = Date.now();
    for (
      let round = 1;
      round <= o.rounds && !stop && !(o.minutes && Date.now() - runStart > o.minutes * 60_000);
      round++
    ) {
      const name = o.faults[Math.floor(rand() * o.faults.length)];
      load.take();
      const at = Date.now();
      let outcome;
      try {
        outcome = await runFault(name, s, rand);
      } catch (e) {
        outcome = { target: '?', detectMs: undefined, error: (e as Error).message };
      }
      const healedAt = Date.now();
      s.faulted.clear();
      const conv = await waitHealthy(s, baseline, o.convergeS * 1000);
      const w = probe.window(at);
      const req = load.take();
      const r: RoundResult = {
        round,
        fault: name,
        target: outcome.target,
        detectMs: outcome.detectMs,
        faultMs: healedAt - at,
        convergeMs: conv.ms,
        blockers: conv.blockers,
        writeUnavailableMs: w.unavailableMs,
        slowestWriteMs: w.slowestMs,
        writeHangs: w.hangs,
        writesFailed: w.failed,
        writeErrors: w.errors,
        requestsFailed: req.failed,
        requests: req.ok + req.failed,
        problems: [
          ...('error' in outcome && outcome.error ? [`fault failed: ${outcome.error}`] : []),
          ...conv.problems,
        ],
      };
      results.push(r);
      console.log(`round ${round}/${o.rounds}: ${name} (${r.target})`);
      for (const [k, v] of [
        ['time to detect', fmt(r.detectMs)],
        ['fault held', fmt(r.faultMs)],
        ['time to converge', fmt(r.convergeMs)],
        ['last to heal', r.blockers.length ? blockerText(r.blockers[0]) : '-'],
        [
          'write unavailability',
          `${fmt(r.writeUnavailableMs)} (slowest write ${fmt(r.slowestWriteMs)}, ${r.writesFailed} failed, ${r.writeHangs} past ${HANG_MS / 1000} s)${r.writeErrors.length ? ' ' + r.writeErrors.join(' | ') : ''}`,
        ],
        ['client requests failed', `${r.requestsFailed} of ${r.requests}`],
        ['invariants', r.problems.length ? `BROKEN: ${r.problems.join('; ')}` : 'ok'],
      ])
        console.log(`  ${k.padEnd(24)} ${v}`);
      if (r.problems.length || r.writeHangs) {
        broken = true;
        break;
      }
    }
  } finally {
    await load.stop();
    await probe.stop();
    const sum = (f: (r: RoundResult) => number) => results.reduce((a, r) => a + f(r), 0);
    const summary = {
      seed: o.seed,
      rounds: results.length,
      broken,
      roundsBroken: results.filter((r) => r.problems.length).length,
      writeHangs: sum((r) => r.writeHangs),
      maxWriteUnavailableMs: Math.max(0, ...results.map((r) => r.writeUnavailableMs)),
      maxConvergeMs: Math.max(0, ...results.map((r) => r.convergeMs)),
      requestsFailed: sum((r) => r.requestsFailed),
      requests: sum((r) => r.requests),
    };
    console.log(
      `summary: seed ${o.seed}, ${summary.rounds} rounds, ${summary.roundsBroken} broken, ${summary.writeHangs} writes hung, write unavailability max ${fmt(summary.maxWriteUnavailableMs)}, converge max ${fmt(summary.maxConvergeMs)}, client requests failed ${summary.requestsFailed}/${summary.requests}`,
    );
    const slowest = [...results].sort((a, b) => b.convergeMs - a.convergeMs).slice(0, 3);
    for (const r of slowest)
      console.log(
        `  slowest: round ${r.round} ${r.fault} (${r.target}): converge ${fmt(r.convergeMs)}, writes unavailable ${fmt(r.writeUnavailableMs)}; held up by: ${r.blockers.map(blockerText).join('; ') || '-'}`,
      );
    try {
      console.log(`written ${writeReport('chaos', { started, options: o, summary, rounds: results })}`);
    } catch {
      /* report only */
    }
    if (!o.keep) await cleanup(s);
  }
  process.exit(broken ? 1 : 0);
}

async function cleanup(s: Swarm): Promise<void> {
  const ids: string[] = [];
  for (const m of s.up()) {
    const id = (await s.d(m.name, ['info', '--format', '{{.Swarm.NodeID}}'], 10_000)).stdout.trim();
    if (id) ids.push(id);
  }
  // SHOAL_KEEP_LOGS=<dir>: every machine's daemon and etcd logs survive the prune, for a post-mortem.
  const keep = process.env.SHOAL_KEEP_LOGS;
  const machines = path.join(s.lab.labDir, 'machines');
  if (keep && fs.existsSync(machines)) {
    fs.mkdirSync(keep, { recursive: true });
    for (const m of fs.readdirSync(machines))
      for (const f of fs.readdirSync(path.join(machines, m)).filter((f) => f.endsWith('.log')))
        fs.copyFileSync(path.join(machines, m, f), path.join(keep, `${s.lab.prefix}-${m}-${f}`));
  }
  await s.lab.prune();
  for (const id of ids) {
    for (const ns of fs.readdirSync('/run/netns').filter((n) => n.startsWith(`${sandboxPrefix(id)}-`)))
      await run('ip', ['netns', 'delete', ns], { allowFail: true });
  }
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  main().catch((e) => {
    console.error(e);
    process.exit(2);
  });
}
