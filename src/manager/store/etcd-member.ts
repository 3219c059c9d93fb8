import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
// etcd3's own fault-handling library (its dependency): used to switch its circuit breaker off.
import { noop } from 'cockatiel';
import type { Logger } from '../../util/log.js';

/**
 * This manager's etcd member, run as a child process with client and peer TLS from the swarm
 * CA. setpriv --pdeathsig ties its life to shoald's: a kill -9 of shoald takes etcd with it,
 * as a crashed dockerd takes its raft node.
 */
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

export interface EtcdMemberOptions {
  name: string;
  dataDir: string;
  advertiseAddr: string;
  /** PEM files: the node's certificate and key, the swarm root CA. */
  certFile: string;
  keyFile: string;
  caFile: string;
  clusterToken: string;
  /** Set when joining: `name=https://addr:2380,…` including this member. */
  initialCluster?: string;
  forceNewCluster?: boolean;
  logFile: string;
  pidFile: string;
  /** Tests on loopback pick free ports; swarm nodes use 2379/2380. */
  clientPort?: number;
  peerPort?: number;
}

const peerUrlOf = (addr: string, port?: number) => peerUrl(addr, port);
const clientUrlOf = (addr: string, port?: number) => clientUrl(addr, port);
export const peerUrl = (addr: string, port = ETCD_PEER_PORT) => `https://${addr}:${port}`;
export const clientUrl = (addr: string, port = ETCD_CLIENT_PORT) => `https://${addr}:${port}`;

/** etcd's raft heartbeat interval and election timeout (ms). */
export const ETCD_HEARTBEAT_MS = 50;
export const ETCD_ELECTION_MS = 500;

/** A member that died on its own is started again after this (doubling up to the max). */
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 10_000;

export class EtcdMember {
  private child?: ChildProcess;
  private exited = false;
  /** How many times the member's process has exited (the supervisor may have started it again since). */
  exits = 0;
  /** stop() was called: an exit is expected, not restarted. */
  private stopping = false;
  private restartDelay = RESTART_MIN_MS;
  private restartTimer?: NodeJS.Timeout;
  private startedAt = 0;

  constructor(
    private readonly o: EtcdMemberOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.stopping = false;
    killStale(this.o.pidFile);
    fs.mkdirSync(path.dirname(this.o.dataDir), { recursive: true });
    const fresh = !fs.existsSync(path.join(this.o.dataDir, 'member'));
    const addr = this.o.advertiseAddr;
    const args = etcdArgs(this.o, fresh);
    if (this.o.forceNewCluster) args.push('--force-new-cluster');
    // Once: a member restarted after a crash rejoins the cluster it has become.
    this.o.forceNewCluster = false;
    const fd = fs.openSync(this.o.logFile, 'a');
    this.child = spawn('setpriv', args, { stdio: ['ignore', fd, fd], env: etcdEnv(process.env) });
    fs.closeSync(fd);
    this.exited = false;
    this.startedAt = Date.now();
    const child = this.child;
    child.on('exit', (code, sig) => {
      if (this.child !== child) return;
      this.exited = true;
      this.log.warn({ code, sig, exits: ++this.exits }, 'etcd exited');
      // A member killed under a running manager (OOM, kill -9) is started again, as a service
      // manager would: without it the manager's store stayed dead until shoald restarted.
      if (this.stopping) return;
      if (Date.now() - this.startedAt > 60_000) this.restartDelay = RESTART_MIN_MS;
      const delay = this.restartDelay;
      this.restartDelay = Math.min(RESTART_MAX_MS, this.restartDelay * 2);
      this.log.warn({ delayMs: delay }, 'etcd member died; starting it again');
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (!this.stopping) this.start().catch((err) => this.log.error({ err }, 'etcd member restart failed'));
      }, delay);
    });
    fs.writeFileSync(this.o.pidFile, String(this.child.pid));
    this.log.info({ pid: this.child.pid, addr }, 'etcd member started');
  }

  get running(): boolean {
    return !!this.child && !this.exited;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const c = this.child;
    if (!c || this.exited) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => c.kill('SIGKILL'), 5000);
      c.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      c.kill('SIGTERM');
    });
    fs.rmSync(this.o.pidFile, { force: true });
  }
}

/** setpriv's and etcd's arguments for this member. */
function etcdArgs(o: EtcdMemberOptions, fresh: boolean): string[] {
  const addr = o.advertiseAddr;
  const peerUrl = (a: string) => peerUrlOf(a, o.peerPort);
  const clientUrl = (a: string) => clientUrlOf(a, o.clientPort);
  return [
    '--pdeathsig',
    'KILL',
    '--',
    'etcd',
    '--name',
    o.name,
    '--data-dir',
    o.dataDir,
    '--listen-peer-urls',
    peerUrl(addr),
    '--initial-advertise-peer-urls',
    peerUrl(addr),
    // Clients only on loopback: each manager talks to its own member, and a worker's
    // certificate (same CA) must not reach the store.
    '--listen-client-urls',
    clientUrl('127.0.0.1'),
    '--advertise-client-urls',
    clientUrl('127.0.0.1'),
    '--initial-cluster',
    o.initialCluster ?? `${o.name}=${peerUrl(addr)}`,
    '--initial-cluster-state',
    o.initialCluster && fresh ? 'existing' : 'new',
    '--initial-cluster-token',
    o.clusterToken,
    '--cert-file',
    o.certFile,
    '--key-file',
    o.keyFile,
    '--client-cert-auth',
    '--trusted-ca-file',
    o.caFile,
    '--peer-cert-file',
    o.certFile,
    '--peer-key-file',
    o.keyFile,
    '--peer-client-cert-auth',
    '--peer-trusted-ca-file',
    o.caFile,
    // Only manager certificates (SAN swarm-manager) may be peers.
    '--peer-cert-allowed-hostname',
    'swarm-manager',
    // Leader loops commit many objects at once; the store also splits batches.
    '--max-txn-ops',
    '2048',
    '--max-request-bytes',
    String(8 * 1024 * 1024),
    // Raft timings (src/manager/leader/README.md): a dead raft leader is replaced 0.5–1 s after its last
    // heartbeat (election timeout 500 ms, randomised up to 2×), which bounds the first write
    // accepted after a manager dies. Pre-vote keeps a member starved of CPU, or cut off, from
    // deposing a healthy leader when it comes back with a higher term.
    '--heartbeat-interval',
    String(ETCD_HEARTBEAT_MS),
    '--election-timeout',
    String(ETCD_ELECTION_MS),
    '--pre-vote',
    // Every task state change is a revision: without compaction the database grows until
    // etcd's quota stops all writes. The store's watch only ever needs the latest revisions.
    '--auto-compaction-mode',
    'periodic',
    '--auto-compaction-retention',
    '5m',
    '--quota-backend-bytes',
    String(8 * 1024 ** 3),
    '--logger',
    'zap',
    '--log-level',
    'warn',
  ];
}

/**
 * Go runtime's soft memory limit for etcd (bench/README.md, "etcd's GOMEMLIMIT"). etcd's heap is
 * mostly its in-memory raft log (3.4 keeps every entry since the last snapshot, at least 5,000):
 * with the default GOGC=100 alone it grew to twice that before collecting (388 MiB anonymous at
 * 100,000 tasks; 292 MiB with this limit, same time and CPU). Soft: past it Go keeps collecting
 * but never fails, its GC capped at half the CPU (a store of a million tasks goes past it).
 */
export const ETCD_GOMEMLIMIT = '300MiB';

/** etcd's environment: shoald's own, with the memory limit unless the operator set GOMEMLIMIT/GOGC. */
export function etcdEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.GOMEMLIMIT !== undefined || env.GOGC !== undefined) return env;
  return { ...env, GOMEMLIMIT: ETCD_GOMEMLIMIT };
}

/** An etcd left over from a shoald that died before its child (same pid file): end it. */
function killStale(pidFile: string): void {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8'));
  } catch {
    return;
  }
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmd.includes('etcd') && cmd.includes(path.dirname(pidFile))) process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

export interface EtcdClientTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** A client of the local member (or of other managers' members, given their addresses). */
export function etcdClient(hosts: string[], tls: EtcdClientTls): Etcd3 {
  return new Etcd3({
    hosts,
    credentials: { rootCertificate: tls.ca, certChain: tls.cert, privateKey: tls.key },
    grpcOptions: {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      // HTTP/2's default 64 KiB window makes a watch response of a 1,000-object transaction
      // (~1.5 MiB) wait for dozens of window updates, each one a turn of a busy event loop:
      // the store's cache then lagged its own writes by seconds.
      'grpc-node.flow_control_window': 16 * 1024 * 1024,
      // Each client its own connection (grpc-js shares one between equal channels otherwise):
      // the manager keeps the leader lease on a client of its own.
      'grpc.use_local_subchannel_pool': 1,
    },
    // The default breaker stops all calls for 5 s after 3 failures: too long for a local member
    // that is restarting or a reconfiguration that is refused once; callers retry themselves.
    faultHandling: { host: () => noop },
  });
}

/**
 * Resolves once the member answers a read; rejects as soon as the member exited during the wait,
 * even when its supervisor already started it again (a member that dies on every start, on a
 * full disk say, looked running at each check and held the daemon's start for the whole timeout).
 */
export async function waitForEtcd(
  client: Pick<Etcd3, 'get'>,
  timeoutMs: number,
  member?: Pick<EtcdMember, 'running' | 'exits'>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const exitsAtStart = member?.exits ?? 0;
  const exited = () => !!member && (!member.running || member.exits !== exitsAtStart);
  let last: unknown;
  while (Date.now() < deadline) {
    if (exited()) throw new Error('etcd exited during start; see its log');
    try {
      await client.get('/shoal/ping').string();
      return;
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`etcd did not become ready: ${(last as Error)?.message}`);
}
