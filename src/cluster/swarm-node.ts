import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Cluster, ClusterSpec, Node, NodeDescription, Task, TaskStatus } from './types.js';
import type { DaemonConfig } from '../engine/config.js';
import { daemonPaths, ENGINE_VERSION } from '../engine/config.js';
import type { Logger } from '../util/log.js';
import { ApiError, badRequest, unavailable } from '../util/errors.js';
import { newSwarmId } from '../util/ids.js';
import type { AgentLink } from '../agent/link.js';
import { AgentSession } from '../agent/session/session.js';
import { Manager, QuorumLost } from '../manager/manager.js';
import { ingressNetwork } from '../manager/networks/swarm-networks.js';
import { watchSwarmEvents, type SwarmEvent } from '../manager/events/swarm-events.js';
import type { Store } from '../manager/store/store.js';
import { createRootCA, renewalTime, signNodeCert } from '../manager/ca/root-ca.js';
import { generateJoinToken, InvalidTokenError, parseJoinToken, rootDigest } from '../manager/ca/tokens.js';
import { nodeTlsInfo, tlsInfo } from '../manager/ca/tls-info.js';
import { certIdentity, createCsr, firstPem, generateKeyPair, privateKeyToPem } from './pki.js';
import { X509Certificate } from 'node:crypto';
import { chooseSystemAddr, listSystemLinks } from './system-addr.js';
import { ERR_SWARM_LOCKED, humanReadableKey, newUnlockKey, openPrivateKey, openValue, parseHumanReadableKey, sealPrivateKey, sealValue } from '../manager/ca/unlock-key.js';
import { clientCredentials, grpcAddr, insecureCredentials, RpcClient, SWARM_PORT, type IssueResponse, type ManagerAddr, type RenewResponse, type RequestOf, type ResponseOf, type UnaryMethodName } from './rpc.js';

/** Docker's messages for a node that cannot answer manager calls. */
export const ERR_NO_SWARM_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
export const ERR_NOT_MANAGER = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
export const ERR_SWARM_EXISTS = 'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.';
export const ERR_NO_SWARM = 'This node is not part of a swarm';
export const ERR_NO_LEADER = "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.";

/** What this node remembers about its swarm membership (<data-root>/swarm/state.json). */
interface SwarmState {
  nodeId: string;
  clusterId: string;
  role: 'manager' | 'worker';
  advertiseAddr: string;
  listenAddr: string;
  managers: ManagerAddr[];
  /**
   * A role change began toward this role and has not ended: the etcd member and its data may be
   * in any state (a demotion's member removed, a promotion's member added but not started). Kept
   * on disk so that a daemon killed midway finishes the change instead of starting a removed member.
   */
  roleChange?: 'manager' | 'worker';
}

export interface InitRequest {
  ListenAddr?: string;
  AdvertiseAddr?: string;
  DataPathAddr?: string;
  DataPathPort?: number;
  DefaultAddrPool?: string[];
  SubnetSize?: number;
  ForceNewCluster?: boolean;
  Spec?: ClusterSpec;
}

export interface JoinRequest {
  ListenAddr?: string;
  AdvertiseAddr?: string;
  RemoteAddrs?: string[];
  JoinToken?: string;
  DataPathAddr?: string;
}

const NS = 1e9;
export function defaultClusterSpec(): ClusterSpec {
  return {
    Name: 'default',
    Labels: {},
    Orchestration: { TaskHistoryRetentionLimit: 5 },
    Raft: { SnapshotInterval: 10000, KeepOldSnapshots: 0, LogEntriesForSlowFollowers: 500, ElectionTick: 10, HeartbeatTick: 1 },
    Dispatcher: { HeartbeatPeriod: 5 * NS },
    CAConfig: { NodeCertExpiry: 90 * 24 * 3600 * NS },
    TaskDefaults: {},
    EncryptionConfig: { AutoLockManagers: false },
  };
}

/**
 * Fields Docker declares as pointers (*int64/*uint64): a sent 0 is a value ("keep no task
 * history"), not "unset". Other numeric fields treat 0 as unset, as moby's MergeSwarmSpecToGRPC does.
 */
const ZERO_IS_A_VALUE = new Set(['Orchestration.TaskHistoryRetentionLimit', 'Raft.KeepOldSnapshots']);

/** Client-sent spec fields override the defaults only where set (the CLI sends zero values for unset flags). */
export function mergeClusterSpec(base: ClusterSpec, given: ClusterSpec | undefined): ClusterSpec {
  const out = structuredClone(base) as Record<string, unknown>;
  for (const [k, v] of Object.entries(given ?? {})) {
    if (v && typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' && out[k]) {
      const sub = { ...(out[k] as Record<string, unknown>) };
      for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) {
        if (v2 === undefined || v2 === null || v2 === '') continue;
        if (v2 === 0 && !ZERO_IS_A_VALUE.has(`${k}.${k2}`)) continue;
        sub[k2] = v2;
      }
      out[k] = sub;
    } else if (v !== undefined && v !== null && v !== '') {
      out[k] = v;
    }
  }
  return out as ClusterSpec;
}

export { tlsInfo };

/**
 * This daemon's membership in a swarm: init, join, leave, and what runs because of it (the
 * manager on managers, the agent session everywhere). The API asks it for the manager's store.
 */
export class SwarmNode {
  private state?: SwarmState;
  private manager?: Manager;
  private session?: AgentSession;
  private readonly dir: string;
  private readonly certDir: string;
  private busy = Promise.resolve();
  private roleChange?: Promise<void>;
  private trustChange?: Promise<void>;
  private renewTimer?: NodeJS.Timeout;
  private wantedRole?: 'manager' | 'worker';
  /** Autolock's current unlock key, while this manager follows one. */
  private kek?: Buffer;
  /** A restarted autolocked manager: nothing runs until `swarm unlock`. */
  private locked = false;
  /** The swarm's data-encryption key (managers only): etcd holds secrets sealed with it. */
  private dek?: Buffer;
  /** Forwarded to whichever session is current, so the worker registers once. */
  readonly link: AgentLink;
  private readonly assignmentListeners: Parameters<AgentLink['onAssignments']>[0][] = [];
  /** `docker events` listeners for the swarm's events, fed while this node is a manager. */
  private readonly swarmEventListeners: ((e: SwarmEvent) => void)[] = [];

  constructor(private readonly config: DaemonConfig, private readonly log: Logger) {
    this.dir = daemonPaths(config).swarm;
    this.certDir = path.join(this.dir, 'certificates');
    const self = this;
    this.link = {
      onAssignments(fn) {
        self.assignmentListeners.push(fn);
      },
      async reportStatus(updates: { taskId: string; status: TaskStatus }[]) {
        if (!self.session) throw new Error(ERR_NO_SWARM);
        await self.session.reportStatus(updates);
      },
    };
  }

  private get files() {
    return {
      state: path.join(this.dir, 'state.json'),
      ca: path.join(this.certDir, 'swarm-root-ca.crt'),
      cert: path.join(this.certDir, 'swarm-node.crt'),
      key: path.join(this.certDir, 'swarm-node.key'),
      /** The TLS key sealed with the unlock key: what an autolocked manager keeps at rest. */
      sealedKey: path.join(this.certDir, 'swarm-node.key.locked'),
      /** The DEK: "plain:<base64>", or "sealed:<…>" with the unlock key while autolocked. */
      dek: path.join(this.certDir, 'swarm-node.dek'),
      etcdCa: path.join(this.certDir, 'etcd-ca.crt'),
      etcdCert: path.join(this.certDir, 'etcd-node.crt'),
      /** The CA of Engine API client certificates, as the managers hand it out. */
      apiClientCa: path.join(this.certDir, 'api-client-ca.crt'),
    };
  }

  /** Resumes membership after a restart. */
  async open(): Promise<void> {
    try {
      this.state = JSON.parse(fs.readFileSync(this.files.state, 'utf8')) as SwarmState;
    } catch {
      return;
    }
    if (this.state.role === 'manager' && fs.existsSync(this.files.sealedKey)) {
      // Autolocked: the plain key must not outlive the previous run (it does after a crash).
      fs.rmSync(this.files.key, { force: true });
      this.locked = true;
      this.log.info('swarm is locked; waiting for docker swarm unlock');
      return;
    }
    this.dek = this.readDek();
    try {
      // A role change cut short: no manager until the session's role finishes it (reconcileRole).
      if (this.state.role === 'manager' && !this.state.roleChange) await this.startManager();
      this.startSession();
    } catch (err) {
      this.log.error({ err }, 'could not resume swarm membership');
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.renewTimer);
    this.session?.stop();
    await this.manager?.stop();
    // Autolocked: only the sealed key stays behind, so the next start is locked.
    if (this.kek && fs.existsSync(this.files.sealedKey)) fs.rmSync(this.files.key, { force: true });
  }

  // ---- autolock ----
  /** The DEK from disk: undefined when absent (a swarm from before it); sealed needs the unlock key. */
  private readDek(kek?: Buffer): Buffer | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.files.dek, 'utf8').trim();
    } catch {
      return undefined;
    }
    if (text.startsWith('plain:')) return Buffer.from(text.slice(6), 'base64');
    if (text.startsWith('sealed:') && kek) return openValue(kek, Buffer.from(text.slice(7)));
    return undefined;
  }

  /** Writes the DEK as autolock wants it now; removes it when this node holds none. */
  private writeDek(): void {
    if (!this.dek) {
      fs.rmSync(this.files.dek, { force: true });
      return;
    }
    const tmp = this.files.dek + '.tmp';
    fs.writeFileSync(tmp, this.kek ? 'sealed:' + sealValue(this.kek, this.dek) : 'plain:' + this.dek.toString('base64'), { mode: 0o600 });
    fs.renameSync(tmp, this.files.dek);
  }

  /** Follows the swarm's unlock key: seals this manager's TLS key with it, or unseals. */
  private applyUnlockKey(key: Buffer | undefined): void {
    if (!this.state || this.locked) return;
    if (key && this.kek?.equals(key) && fs.existsSync(this.files.sealedKey)) return;
    this.kek = key;
    if (key) {
      const tmp = this.files.sealedKey + '.tmp';
      fs.writeFileSync(tmp, sealPrivateKey(fs.readFileSync(this.files.key, 'utf8'), key), { mode: 0o600 });
      fs.renameSync(tmp, this.files.sealedKey);
      this.writeDek();
    } else {
      this.writeDek();
      fs.rmSync(this.files.sealedKey, { force: true });
    }
  }

  /** `swarm update --autolock` / `unlock-key --rotate`: the new key (or none) for every manager. */
  async setUnlockKey(key: Buffer | undefined): Promise<void> {
    const m = this.requireManager();
    // A new key-encrypting key gets a new data key too (as SwarmKit's raft DEK): the old one
    // may have lain on disk unsealed, or sealed with the old unlock key.
    if (key) await m.rotateDataKey();
    await m.setUnlockKey(key);
    this.applyUnlockKey(key);
  }

  /** `swarm unlock-key`: Docker's text form, empty when autolock is off. */
  async unlockKey(): Promise<string> {
    const m = this.requireManager();
    const k = await m.unlockKey();
    return k ? humanReadableKey(k) : '';
  }

  /** `swarm unlock`: opens the sealed TLS key and starts what a manager runs. */
  unlock(keyText: string): Promise<void> {
    return this.exclusive(async () => {
      if (!this.state) throw unavailable(ERR_NO_SWARM);
      if (!this.locked) throw new ApiError(409, 'swarm is not locked');
      const key = parseHumanReadableKey(keyText);
      const plain = openPrivateKey(fs.readFileSync(this.files.sealedKey, 'utf8'), key);
      const dek = this.readDek(key);
      fs.writeFileSync(this.files.key, plain, { mode: 0o600 });
      this.locked = false;
      this.kek = key;
      this.dek = dek;
      try {
        await this.startManager();
        this.startSession();
      } catch (e) {
        this.log.error({ err: e }, 'could not start the manager after unlock');
        throw e;
      }
    });
  }

  /** Serializes init/join/leave as dockerd's controlMutex does. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn);
    this.busy = run.then(() => undefined, () => undefined);
    return run;
  }

  get nodeId(): string | undefined {
    return this.state?.nodeId;
  }

  get isManager(): boolean {
    return !!this.manager;
  }

  /** The manager, or Docker's 503 for a node that is not one. */
  requireManager(): Manager {
    if (!this.state) throw unavailable(ERR_NO_SWARM_MANAGER);
    if (this.locked) throw unavailable(ERR_SWARM_LOCKED);
    if (!this.manager) throw unavailable(ERR_NOT_MANAGER);
    if (!this.manager.hasQuorum) throw unavailable(ERR_NO_LEADER);
    return this.manager;
  }

  /** The cluster store for API handlers (services, tasks, networks…); 503 off managers. */
  controlStore(): Store {
    return this.requireManager().store;
  }

  // ---- init ----
  init(req: InitRequest): Promise<string> {
    return this.exclusive(async () => {
      // Only a real `true` restarts the cluster: any other value is "already part of a swarm".
      const force = req.ForceNewCluster === true;
      if (this.state && !force) throw unavailable(ERR_SWARM_EXISTS);
      if (this.state && this.locked) throw unavailable(ERR_SWARM_LOCKED);
      if (this.state && force) return this.forceNewCluster();
      const listen = parseListenAddr(req.ListenAddr);
      const advertise = await resolveAdvertiseAddr(req.AdvertiseAddr, listen.host);
      resolveDataPathAddr(req.DataPathAddr);
      const nodeId = newSwarmId();
      const clusterId = newSwarmId();
      const ca = await createRootCA();
      const spec = mergeClusterSpec(defaultClusterSpec(), req.Spec);
      const keys = await generateKeyPair();
      const cert = await signNodeCert(ca, { csrPem: await createCsr(keys), nodeId, role: 'manager', clusterId, addresses: [advertise.host], expiryMs: (spec.CAConfig?.NodeCertExpiry ?? 0) / 1e6 || undefined });
      this.writeCerts(ca.certPem, cert, await privateKeyToPem(keys.privateKey));
      this.writeEtcdCerts(ca.certPem, cert);
      const state: SwarmState = { nodeId, clusterId, role: 'manager', advertiseAddr: advertise.host, listenAddr: `${listen.host}:${listen.port}`, managers: [{ nodeId, addr: `${advertise.host}:${advertise.port}` }] };
      try {
        this.state = state;
        this.saveState();
        this.dek = newUnlockKey();
        this.writeDek();
        await this.startManager(async (m) => {
          const now = new Date().toISOString();
          const cluster: Cluster = {
            ID: clusterId, Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now, Spec: spec, TLSInfo: tlsInfo(ca.certPem), RootRotationInProgress: false,
            DefaultAddrPool: req.DefaultAddrPool?.length ? req.DefaultAddrPool : ['10.0.0.0/8'], SubnetSize: req.SubnetSize || 24, DataPathPort: req.DataPathPort || 4789,
            JoinTokens: { Worker: generateJoinToken(ca.certPem), Manager: generateJoinToken(ca.certPem) },
          };
          const node: Node = {
            ID: nodeId, Version: { Index: 0 }, CreatedAt: now, UpdatedAt: now,
            Spec: { Labels: {}, Role: 'manager', Availability: 'active' },
            Description: this.description(),
            Status: { State: 'ready', Addr: advertise.host },
            ManagerStatus: { Reachability: 'reachable', Addr: `${advertise.host}:${advertise.port}` },
          };
          await m.bootstrap(ca, cluster, node);
          if (spec.EncryptionConfig?.AutoLockManagers) await m.setUnlockKey(newUnlockKey());
          await m.store.commit([{ kind: 'networks', op: 'create', object: ingressNetwork() }]);
        });
        this.startSession();
      } catch (e) {
        await this.teardown();
        throw e;
      }
      return nodeId;
    });
  }

  private async forceNewCluster(): Promise<string> {
    if (this.state!.role !== 'manager') throw unavailable(ERR_NOT_MANAGER);
    this.session?.stop();
    this.session = undefined;
    await this.manager?.stop();
    this.manager = undefined;
    await this.startManager(undefined, true);
    // Only this manager remains: forget the others' addresses.
    this.state!.managers = this.state!.managers.filter((m) => m.nodeId === this.state!.nodeId);
    this.saveState();
    this.startSession();
    return this.state!.nodeId;
  }

  // ---- join ----
  join(req: JoinRequest): Promise<void> {
    return this.exclusive(async () => {
      if (this.state) throw unavailable(ERR_SWARM_EXISTS);
      const remotes = req.RemoteAddrs ?? [];
      if (remotes.length === 0) throw badRequest('at least 1 RemoteAddr is required to join');
      let token;
      try {
        token = parseJoinToken(req.JoinToken ?? '');
      } catch (e) {
        if (e instanceof InvalidTokenError) throw badRequest('invalid join token');
        throw e;
      }
      const remote = grpcAddr(remotes[0]);
      const listen = parseListenAddr(req.ListenAddr);
      resolveDataPathAddr(req.DataPathAddr);
      const advertiseHost = req.AdvertiseAddr ? (await resolveAdvertiseAddr(req.AdvertiseAddr, listen.host)).host : await localAddrTowards(remote);

      // 1. The root CA, trusted only if its digest is the one in the token.
      const insecure = new RpcClient('CA', remote, insecureCredentials());
      let rootPem: string;
      try {
        rootPem = (await insecure.call('GetRootCACertificate', {}, 10_000)).certificate;
      } catch (e) {
        throw rpcError(e);
      } finally {
        insecure.close();
      }
      if (rootDigest(rootPem) !== token.digest) {
        throw new ApiError(500, `remote CA does not match fingerprint. Expected: ${token.digest}`);
      }
      // 2. A certificate for a CSR, on a connection that now verifies the manager.
      const keys = await generateKeyPair();
      const keyPem = await privateKeyToPem(keys.privateKey);
      const ca = new RpcClient('CA', remote, clientCredentials(Buffer.from(rootPem)));
      let issued: IssueResponse;
      try {
        issued = await ca.call('IssueNodeCertificate', { csr: await createCsr(keys), token: req.JoinToken ?? '', addr: advertiseHost }, 15_000);
      } catch (e) {
        throw rpcError(e);
      } finally {
        ca.close();
      }
      this.writeCerts(rootPem, issued.certificate, keyPem);
      if (issued.etcdCertificate && issued.etcdCA) this.writeEtcdCerts(issued.etcdCA, issued.etcdCertificate);
      this.state = {
        nodeId: issued.nodeId, clusterId: issued.clusterId, role: issued.role, advertiseAddr: advertiseHost,
        listenAddr: `${listen.host}:${listen.port}`, managers: [{ nodeId: '', addr: remote }],
      };
      this.saveState();
      try {
        if (issued.role === 'manager') {
          const joined = await this.membershipCall(remote, 'Join', { addr: advertiseHost });
          this.dek = joined.dek ? Buffer.from(joined.dek, 'base64') : undefined;
          this.writeDek();
          await this.startManager(undefined, false, joined.initialCluster);
          this.state.managers.unshift({ nodeId: issued.nodeId, addr: `${advertiseHost}:${listen.port}` });
          this.saveState();
        }
        this.startSession();
      } catch (e) {
        await this.teardown();
        throw e instanceof ApiError ? e : rpcError(e);
      }
    });
  }

  private async membershipCall<M extends UnaryMethodName<'Membership'>>(remote: string, method: M, req: RequestOf<'Membership', M>): Promise<ResponseOf<'Membership', M>> {
    const f = this.files;
    const c = new RpcClient('Membership', remote, clientCredentials(fs.readFileSync(f.ca), fs.readFileSync(f.cert), fs.readFileSync(f.key)));
    try {
      return await c.call(method, req, 30_000);
    } finally {
      c.close();
    }
  }

  // ---- leave ----
  leave(force: boolean): Promise<void> {
    return this.exclusive(async () => {
      if (!this.state) throw unavailable(ERR_NO_SWARM);
      if (this.state.role === 'manager' && !force) {
        let msg = 'You are attempting to leave the swarm on a node that is participating as a manager. ';
        if (this.manager) {
          const managers = this.manager.store.list('nodes').filter((n) => n.Spec.Role === 'manager');
          const reachable = managers.filter((n) => this.manager!.isReachable(n.ID)).length;
          const unreachable = managers.length - reachable;
          if (reachable - 1 <= unreachable) {
            if (reachable === 1 && unreachable === 0) throw unavailable(msg + 'Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. ');
            msg += `Removing this node leaves ${reachable - 1} managers out of ${reachable + unreachable}. Without a Raft quorum your swarm will be inaccessible. `;
          }
        } else {
          msg += 'Doing so may lose the consensus of your cluster. ';
        }
        throw unavailable(msg + 'The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.');
      }
      if (this.manager) {
        // Leave the etcd cluster first so the remaining members do not wait for us.
        const others = (await this.manager.memberCount().catch(() => 1)) > 1;
        if (others) await this.manager.removeMember(this.state.nodeId).catch((err) => this.log.warn({ err }, 'etcd member remove failed'));
      }
      await this.teardown();
    });
  }

  /** Stops everything swarm and forgets the membership. */
  private async teardown(): Promise<void> {
    clearTimeout(this.renewTimer);
    this.session?.stop();
    this.session = undefined;
    await this.manager?.stop().catch((err) => this.log.warn({ err }, 'manager stop failed'));
    this.manager = undefined;
    this.state = undefined;
    this.kek = undefined;
    this.locked = false;
    this.dek = undefined;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** Swarm events (dockerd's scope "swarm") from this node's manager, whenever it is one. */
  onSwarmEvent(fn: (e: SwarmEvent) => void): void {
    this.swarmEventListeners.push(fn);
  }

  // ---- running parts ----
  private async startManager(bootstrap?: (m: Manager) => Promise<void>, forceNewCluster = false, initialCluster?: string): Promise<void> {
    const s = this.state!;
    const f = this.files;
    const m = await Manager.start({
      nodeId: s.nodeId, clusterId: s.clusterId, advertiseAddr: s.advertiseAddr, listenAddr: s.listenAddr,
      tls: { caFile: f.ca, certFile: f.cert, keyFile: f.key, etcdCaFile: f.etcdCa, etcdCertFile: f.etcdCert }, swarmDir: this.dir, log: this.log.child({ part: 'manager' }),
      forceNewCluster, initialCluster, dek: this.dek,
      onDataKey: (dek) => {
        this.dek = dek;
        this.writeDek();
      },
    });
    try {
      if (bootstrap) await bootstrap(m);
      await m.serve();
      await m.followUnlockKey((key) => {
        try {
          this.applyUnlockKey(key);
        } catch (err) {
          this.log.error({ err }, 'could not seal the TLS key with the new unlock key');
        }
      });
    } catch (e) {
      await m.stop();
      throw e;
    }
    this.manager = m;
    // Ends with the manager's store (a demoted node's store sends nothing more).
    watchSwarmEvents(m.store, (e) => { for (const fn of this.swarmEventListeners) fn(e); });
  }

  /** Where agent-side streams besides the session (the network view) reach a manager; undefined outside a swarm. */
  agentTarget(): { nodeId: string; tls(): { ca: Buffer; cert: Buffer; key: Buffer }; managers(): string[] } | undefined {
    const s = this.state;
    if (!s || !this.session) return undefined;
    const f = this.files;
    return {
      nodeId: s.nodeId,
      tls: () => ({ ca: fs.readFileSync(f.ca), cert: fs.readFileSync(f.cert), key: fs.readFileSync(f.key) }),
      managers: () => {
        const own = this.manager ? [`${s.advertiseAddr}:${s.listenAddr.split(':').pop()}`] : [];
        return [...new Set([...own, ...s.managers.map((m) => m.addr)])];
      },
    };
  }

  private startSession(): void {
    const s = this.state!;
    const f = this.files;
    const session = new AgentSession({
      log: this.log.child({ part: 'session' }),
      tls: () => ({ ca: fs.readFileSync(f.ca), cert: fs.readFileSync(f.cert), key: fs.readFileSync(f.key) }),
      managers: () => {
        const own = this.manager ? [`${s.advertiseAddr}:${s.listenAddr.split(':').pop()}`] : [];
        return [...new Set([...own, ...s.managers.map((m) => m.addr)])];
      },
      onManagers: (list) => {
        if (JSON.stringify(list) !== JSON.stringify(s.managers)) {
          s.managers = list;
          this.saveState();
        }
      },
      description: () => this.description(),
      addr: s.advertiseAddr,
      onSession: (msg) => {
        this.reconcileRole(msg.node.Spec.Role);
        this.reconcileTrust(msg.rootCA, msg.signingRoot);
        this.keepApiClientCA(msg.apiClientCA);
      },
    });
    session.onAssignments((tasks, files, changes) => {
      for (const fn of this.assignmentListeners) fn(tasks, files, changes);
    });
    this.session = session;
    session.start();
    this.scheduleRenewal();
  }

  /** Renews this node's certificate at a random point between 50 % and 80 % of its life. */
  private scheduleRenewal(delayMs?: number): void {
    clearTimeout(this.renewTimer);
    if (!this.state) return;
    let delay = delayMs;
    if (delay === undefined) {
      const id = certIdentity(fs.readFileSync(this.files.cert, 'utf8'));
      delay = renewalTime(id.notBefore, id.notAfter).getTime() - Date.now();
    }
    this.renewTimer = setTimeout(() => {
      this.exclusive(() => this.renewCertificate())
        .then(() => this.scheduleRenewal())
        .catch((err) => {
          this.log.warn({ err }, 'certificate renewal failed; retrying');
          this.scheduleRenewal(2000);
        });
    }, Math.min(Math.max(delay, 1000), 2 ** 31 - 1));
    this.renewTimer.unref();
  }

  /** A new key and certificate for the same identity and role, from a manager's CA. */
  async renewCertificate(): Promise<void> {
    const s = this.state;
    if (!s) return;
    const remote = this.session?.current ?? s.managers[0]?.addr;
    if (!remote) throw new Error('no manager to renew the certificate with');
    const issued = await this.requestCertificate(remote);
    if (issued.renewed.role !== s.role) return; // a role change is under way; it brings its own certificate
    this.installCertificate(issued);
    this.manager?.reloadTls();
    this.log.info('node certificate renewed');
    // The managers follow a root rotation by the issuer in each node's TLSInfo: tell them within
    // the session (new connections already use the new certificate; open ones go on).
    await this.session?.updateDescription();
  }

  /** A new key, and a certificate for it from `remote`'s CA: this node's identity, the role the managers decided. */
  private async requestCertificate(remote: string): Promise<{ renewed: RenewResponse; keyPem: string }> {
    const f = this.files;
    const keys = await generateKeyPair();
    const ca = new RpcClient('CA', remote, clientCredentials(fs.readFileSync(f.ca), fs.readFileSync(f.cert), fs.readFileSync(f.key)));
    try {
      const renewed = await ca.call('RenewNodeCertificate', { csr: await createCsr(keys) }, 15_000);
      return { renewed, keyPem: await privateKeyToPem(keys.privateKey) };
    } finally {
      ca.close();
    }
  }

  /** Puts a certificate from requestCertificate in place; managers' etcd certificate too (etcd reads its files per connection). */
  private installCertificate({ renewed, keyPem }: { renewed: RenewResponse; keyPem: string }): void {
    this.writeCerts(fs.readFileSync(this.files.ca, 'utf8'), renewed.certificate, keyPem);
    if (renewed.etcdCertificate && renewed.etcdCA) this.writeEtcdCerts(renewed.etcdCA, renewed.etcdCertificate);
  }

  description(): NodeDescription {
    return {
      Hostname: this.config.hostname,
      Platform: { Architecture: os.arch() === 'x64' ? 'x86_64' : os.arch(), OS: 'linux' },
      Resources: { NanoCPUs: os.cpus().length * NS, MemoryBytes: os.totalmem() },
      Engine: {
        EngineVersion: ENGINE_VERSION,
        Labels: this.config.labels,
        Plugins: [
          { Type: 'Log', Name: 'json-file' },
          { Type: 'Network', Name: 'bridge' }, { Type: 'Network', Name: 'host' }, { Type: 'Network', Name: 'null' }, { Type: 'Network', Name: 'overlay' },
          { Type: 'Volume', Name: 'local' },
        ],
      },
      TLSInfo: fs.existsSync(this.files.ca) ? this.nodeTlsInfo() : undefined,
    };
  }

  /** Stores the API client CA the managers sent (the API's TLS reads it: apiClientCAPem). */
  private keepApiClientCA(pem: string | undefined): void {
    if (!pem || !this.state) return;
    const f = this.files.apiClientCa;
    if (fs.existsSync(f) && fs.readFileSync(f, 'utf8') === pem) return;
    fs.mkdirSync(this.certDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(f + '.tmp', pem);
    fs.renameSync(f + '.tmp', f);
    this.log.info('API client CA stored');
  }

  /** The swarm's API client CA certificate, while this node is in a swarm; undefined otherwise. */
  apiClientCAPem(): string | undefined {
    if (!this.state) return undefined;
    try {
      return fs.readFileSync(this.files.apiClientCa, 'utf8');
    } catch {
      return undefined;
    }
  }

  /**
   * Follows the swarm's trust bundle (root CA rotation): store it, so new connections trust what
   * the managers trust (during a rotation the old and the new root, the one the cluster shows
   * first), and get a certificate from the signing root. The session stays: the new TLSInfo is
   * reported within it.
   */
  private reconcileTrust(bundle: string | undefined, signingRoot?: string): void {
    if (!bundle || !this.state || this.trustChange) return;
    const signing = new X509Certificate(signingRoot ?? firstPem(bundle));
    const fromSigningRoot = () => new X509Certificate(fs.readFileSync(this.files.cert)).verify(signing.publicKey);
    if (fs.readFileSync(this.files.ca, 'utf8') === bundle && fromSigningRoot()) return;
    this.trustChange = this.exclusive(async () => {
      const f = this.files;
      if (!this.state) return;
      if (fs.readFileSync(f.ca, 'utf8') !== bundle) {
        fs.writeFileSync(f.ca, bundle);
        this.log.info('swarm trust roots changed');
      }
      if (!fromSigningRoot()) await this.renewCertificate();
      // The managers read TrustRoot (docker swarm ca's progress) and the issuer from the description.
      else await this.session?.updateDescription();
    })
      .catch((err) => this.log.warn({ err }, 'trust update failed; will retry on the next session message'))
      .finally(() => (this.trustChange = undefined));
  }

  /**
   * Follows the role managers decided for this node; retries every 5 s as SwarmKit's role manager.
   * A role decided while a change runs (a promote right after a demote: the session message
   * arrives while the demotion still waits for its certificate) is followed once that change ends.
   */
  private reconcileRole(want: 'manager' | 'worker'): void {
    this.wantedRole = want;
    if (!this.state || (want === this.state.role && !this.state.roleChange)) return;
    if (this.roleChange) {
      this.log.info({ role: want }, 'role change requested while another runs; following it next');
      return;
    }
    this.roleChange = this.exclusive(() => this.changeRole(want))
      .then(() => 0, (err) => {
        this.log.warn({ err, role: want }, 'role change failed; retrying');
        return 5000;
      })
      .then((delay) => {
        this.roleChange = undefined;
        const again = () => this.wantedRole && this.reconcileRole(this.wantedRole);
        if (delay) setTimeout(again, delay);
        else again();
      });
  }

  /**
   * Promotion or demotion decided by a manager (node update --role): a certificate for the new
   * role from the CA, then joining or leaving the etcd cluster.
   */
  private async changeRole(role: 'manager' | 'worker'): Promise<void> {
    const s = this.state;
    // Other managers' CAs: after a demotion this node's own manager is gone.
    const remotes = this.otherManagers();
    if (!s || (s.role === role && !s.roleChange)) return;
    if (!remotes.length) throw new Error('no other manager known for the role change');
    // A change cut short (a kill, a stop, a failed step) left the member in an unknown state.
    const interrupted = !!s.roleChange;
    s.roleChange = role;
    this.saveState();
    // Every step may be tried again (reconcileRole retries the whole change): each is idempotent.
    if (role === 'worker') {
      if (this.manager) {
        await this.manager.resign();
        try {
          await this.removeOwnMember(this.manager, s.nodeId, remotes);
        } catch (e) {
          this.manager.election.resume(); // still a manager until a retry succeeds
          throw e;
        }
        this.log.info('etcd member removed for the demotion');
        await this.manager.stop();
        this.manager = undefined;
        this.log.info('manager stopped for the demotion');
      } else {
        await this.leaveEtcd(s.nodeId, remotes);
      }
      fs.rmSync(path.join(this.dir, 'etcd'), { recursive: true, force: true });
      this.applyUnlockKey(undefined); // workers are never locked
      this.dek = undefined;
      this.writeDek();
    } else if (interrupted && !this.manager) {
      // A member from the cut-short change must go before joining again: a member whose data
      // is gone must never come back under its old identity.
      await this.leaveEtcd(s.nodeId, remotes);
    }
    const issued = await this.fromAnyManager(remotes, (r) => this.requestCertificate(r));
    if (issued.renewed.role !== role) throw new Error(`CA issued a ${issued.renewed.role} certificate, expected ${role}`);
    this.installCertificate(issued);
    if (role === 'manager' && !this.manager) {
      fs.rmSync(path.join(this.dir, 'etcd'), { recursive: true, force: true });
      const joined = await this.fromAnyManager(remotes, (r) => this.membershipCall(r, 'Join', { addr: s.advertiseAddr, promotion: true }));
      this.dek = joined.dek ? Buffer.from(joined.dek, 'base64') : undefined;
      this.writeDek();
      await this.startManager(undefined, false, joined.initialCluster);
    }
    s.role = role;
    delete s.roleChange;
    this.saveState();
    this.log.info({ role }, 'node role changed');
  }

  /** Takes this node's etcd member out through another manager (idempotent: gone is fine). */
  private async leaveEtcd(nodeId: string, remotes: string[]): Promise<void> {
    await this.fromAnyManager(remotes, (r) => this.membershipCall(r, 'Leave', { nodeId }));
    this.log.info('etcd member of a cut-short role change removed');
  }

  /** Other managers' addresses, the session's own first. */
  private otherManagers(): string[] {
    const s = this.state;
    if (!s) return [];
    const own = `${s.advertiseAddr}:${s.listenAddr.split(':').pop()}`;
    const all = [this.session?.current, ...s.managers.filter((m) => m.nodeId !== s.nodeId).map((m) => m.addr)];
    return [...new Set(all.filter((a): a is string => !!a && a !== own))];
  }

  /** `call` on the first manager that answers: one that is down or slow must not hold up a role change. */
  private async fromAnyManager<T>(remotes: string[], call: (remote: string) => Promise<T>): Promise<T> {
    let last: unknown;
    for (const r of remotes) {
      try {
        return await call(r);
      } catch (err) {
        last = err;
        this.log.warn({ err, manager: r }, 'manager call failed; trying the next manager');
      }
    }
    throw last;
  }

  /**
   * Leaves the etcd cluster for a demotion: through this manager's own member, or through another
   * manager when that fails. etcd ends a member once it is removed, so a removal whose answer
   * was lost (a timeout under load) leaves no local member to ask again.
   */
  private async removeOwnMember(m: Manager, nodeId: string, remotes: string[]): Promise<void> {
    if (m.member.running) {
      try {
        await m.removeMember(nodeId);
        return;
      } catch (err) {
        if (err instanceof QuorumLost) throw err;
        this.log.warn({ err }, 'etcd member remove through the local member failed; asking another manager');
      }
    }
    await this.fromAnyManager(remotes, (r) => this.membershipCall(r, 'Leave', { nodeId }));
  }

  /** TrustRoot: the first root this node trusts; issuer: whatever signed its certificate. */
  private nodeTlsInfo(): Cluster['TLSInfo'] {
    const bundle = fs.readFileSync(this.files.ca, 'utf8');
    let chain: string | undefined;
    try {
      chain = fs.readFileSync(this.files.cert, 'utf8');
    } catch {
      /* no certificate yet */
    }
    return nodeTlsInfo(bundle, chain);
  }

  private writeEtcdCerts(ca: string, cert: string): void {
    fs.writeFileSync(this.files.etcdCa, ca);
    fs.writeFileSync(this.files.etcdCert, cert);
  }

  private writeCerts(ca: string, cert: string, key: string): void {
    fs.mkdirSync(this.certDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(this.files.ca, ca);
    fs.writeFileSync(this.files.cert, cert);
    fs.writeFileSync(this.files.key, key, { mode: 0o600 });
    if (this.kek) fs.writeFileSync(this.files.sealedKey, sealPrivateKey(key, this.kek), { mode: 0o600 });
  }

  private saveState(): void {
    fs.mkdirSync(this.dir, { recursive: true });
    const tmp = this.files.state + '.tmp';
    fs.writeFileSync(tmp, JSON.stringify(this.state, null, 2));
    fs.renameSync(tmp, this.files.state);
  }

  // ---- what /info shows ----
  info(): Record<string, unknown> {
    const s = this.state;
    if (!s) return { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null };
    const base: Record<string, unknown> = {
      NodeID: s.nodeId,
      NodeAddr: s.advertiseAddr,
      LocalNodeState: this.locked ? 'locked' : 'active',
      ControlAvailable: !!this.manager,
      Error: '',
      RemoteManagers: s.managers.filter((m) => m.nodeId).map((m) => ({ NodeID: m.nodeId, Addr: m.addr })),
    };
    if (this.manager) {
      const nodes = this.manager.store.list('nodes');
      base.Nodes = nodes.length;
      base.Managers = nodes.filter((n) => n.Spec.Role === 'manager').length;
      const c = this.manager.store.list('cluster')[0];
      if (c) {
        const { JoinTokens: _tokens, ...cluster } = c;
        base.Cluster = cluster;
      }
    }
    return base;
  }
}

function parseListenAddr(addr: string | undefined): { host: string; port: number } {
  const a = addr || `0.0.0.0:${SWARM_PORT}`;
  const m = /^(.*?)(?::(\d+))?$/.exec(a)!;
  return { host: m[1] || '0.0.0.0', port: m[2] ? Number(m[2]) : SWARM_PORT };
}

/** --advertise-addr: an IP, IP:port or interface name; else the listen IP; else the system address dockerd would pick. */
export async function resolveAdvertiseAddr(given: string | undefined, listenHost: string): Promise<{ host: string; port: number }> {
  const ifaces = os.networkInterfaces();
  if (given) {
    const m = /^(.*?)(?::(\d+))?$/.exec(given)!;
    let host = m[1];
    const port = m[2] ? Number(m[2]) : SWARM_PORT;
    if (!net.isIP(host)) {
      const addrs = (ifaces[host] ?? []).filter((a) => a.family === 'IPv4');
      if (!ifaces[host]) throw badRequest(`advertise address must be a non-zero IP address or network interface (with optional port number)`);
      if (addrs.length === 0) throw badRequest(`interface ${host} has no usable IPv4 address`);
      host = addrs[0].address;
    }
    return { host, port };
  }
  if (listenHost && listenHost !== '0.0.0.0' && net.isIP(listenHost)) return { host: listenHost, port: SWARM_PORT };
  return { host: chooseSystemAddr(await listSystemLinks()), port: SWARM_PORT };
}

/**
 * --data-path-addr: an IP (not 0.0.0.0, no port) or the name of an interface with an address,
 * checked as dockerd's resolveDataPathAddr does; undefined when not given.
 */
export function resolveDataPathAddr(given: string | undefined): string | undefined {
  if (!given) return undefined;
  const bad = () => badRequest('data path address must be a non-zero IP address or network interface (without a port number)');
  if (net.isIP(given)) {
    if (given === '0.0.0.0' || given === '::') throw bad();
    return given;
  }
  const iface = os.networkInterfaces()[given];
  if (!iface) throw bad();
  const addr = iface.find((a) => a.family === 'IPv4' && !a.internal) ?? iface.find((a) => a.family === 'IPv6' && !a.internal && !a.address.startsWith('fe80'));
  if (!addr) throw badRequest(`interface ${given} has no usable IPv4 or IPv6 address`);
  return addr.address;
}

/** The local address the kernel would use to reach `remote` (how dockerd picks a joiner's address). */
function localAddrTowards(remote: string): Promise<string> {
  const i = remote.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: remote.slice(0, i), port: Number(remote.slice(i + 1)), timeout: 5000 });
    s.once('connect', () => { resolve(s.localAddress!.replace(/^::ffff:/, '')); s.destroy(); });
    s.once('timeout', () => { s.destroy(); reject(rpcError({ code: grpc.status.UNAVAILABLE, details: `connection error: desc = "transport: Error while dialing: dial tcp ${remote}: i/o timeout"` })); });
    s.once('error', (e) => reject(rpcError({ code: grpc.status.UNAVAILABLE, details: `connection error: desc = "transport: Error while dialing: dial tcp ${remote}: ${(e as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? 'connect: connection refused' : e.message}"` })));
  });
}

const CODE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(grpc.status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k.split('_').map((w) => w[0] + w.slice(1).toLowerCase()).join('')]));

/** A gRPC failure in the words dockerd uses: "rpc error: code = X desc = …". */
export function rpcError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const err = e as { code?: number; details?: string; message?: string };
  const code = err.code ?? grpc.status.UNKNOWN;
  const status = code === grpc.status.INVALID_ARGUMENT ? 400 : code === grpc.status.UNAVAILABLE ? 503 : 500;
  const name = CODE_NAMES[code] === 'Invalidargument' ? 'InvalidArgument' : CODE_NAMES[code] === 'Permissiondenied' ? 'PermissionDenied' : CODE_NAMES[code];
  return new ApiError(status, `rpc error: code = ${name} desc = ${err.details ?? err.message}`);
}
