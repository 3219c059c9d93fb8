import fs from 'node:fs';
import type { ManagerEndpoints, ManagerTarget, SwarmMembership } from '../agent/link.js';
import { AgentSession } from '../agent/session/session.js';
import { Manager } from '../manager/manager.js';
import { watchSwarmEvents, type SwarmEvent } from '../manager/events/swarm-events.js';
import { tlsInfo } from '../manager/ca/tls-info.js';
import type { SwarmState } from './swarm-spec.js';
import { NodeMembership } from './membership.js';

export {
  ERR_NO_SWARM_MANAGER,
  ERR_NOT_MANAGER,
  ERR_SWARM_EXISTS,
  ERR_NO_SWARM,
  ERR_NO_LEADER,
  defaultClusterSpec,
  mergeClusterSpec,
  type InitRequest,
  type JoinRequest,
} from './swarm-spec.js';
export { resolveAdvertiseAddr, resolveDataPathAddr, rpcError } from './addresses.js';
export { tlsInfo };

/** How long a restarting daemon waits for its manager before it serves anyway (dockerd: 20 s). */
const MANAGER_START_WAIT_MS = 20_000;

/**
 * This daemon's membership in a swarm (swarmkit's node.Node): init, join, leave, and what runs
 * because of it (the manager on managers, the agent session everywhere). The API asks it for
 * the manager's store. Startup, shutdown and the running parts are here; the seams are in
 * membership.ts, certificates.ts, unlock.ts, on the shared state of core.ts.
 */
export class SwarmNode extends NodeMembership implements SwarmMembership {
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
    // A role change cut short: no manager until the session's role finishes it (reconcileRole).
    if (this.state.role === 'manager' && !this.state.roleChange) await this.resumeManagerAtMost(MANAGER_START_WAIT_MS);
    try {
      // The agent runs even while the manager cannot (etcd down on a full disk): the node stays
      // Ready through the other managers and its tasks are handled, as swarmkit's agent does.
      this.startSession();
    } catch (err) {
      this.log.error({ err }, 'could not resume swarm membership');
    }
  }

  /**
   * Starts the manager after a restart; on failure (etcd cannot write on a full disk, say) tries
   * again with a backoff instead of giving up until the next daemon restart.
   */
  private async resumeManager(delayMs = 2000): Promise<void> {
    try {
      await this.startManager();
    } catch (err) {
      this.log.error({ err, retryInMs: delayMs }, 'could not resume the manager; will retry');
      this.resumeTimer = setTimeout(() => {
        this.resumeTimer = undefined;
        if (this.state?.role === 'manager' && !this.manager && !this.locked)
          this.resumeManager(Math.min(delayMs * 2, 30_000)).catch((e: unknown) =>
            this.log.error({ err: e }, 'could not resume the manager'),
          );
      }, delayMs);
      this.resumeTimer.unref();
    }
  }

  private resumeTimer?: NodeJS.Timeout;

  /**
   * Waits for the manager at most `ms`, then lets the daemon go on (its API, the agent session)
   * while the manager keeps starting: in a full-cluster restart, started one machine at a time,
   * the first manager's etcd has no quorum until the others run. dockerd waits 20 s likewise.
   */
  private async resumeManagerAtMost(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const resumed = this.resumeManager().then(
      () => true,
      (err: unknown) => {
        this.log.error({ err }, 'could not resume the manager');
        return true;
      },
    );
    const done = await Promise.race([resumed, waited]);
    clearTimeout(timer);
    if (!done) this.log.warn({ waitedMs: ms }, 'the manager is still starting (no etcd quorum yet); serving meanwhile');
  }

  async close(): Promise<void> {
    clearTimeout(this.renewTimer);
    clearTimeout(this.resumeTimer);
    this.session?.stop();
    await this.manager?.stop();
    // Autolocked: only the sealed key stays behind, so the next start is locked.
    if (this.kek && fs.existsSync(this.files.sealedKey)) fs.rmSync(this.files.key, { force: true });
  }

  /** Stops everything swarm and forgets the membership. */
  protected override async teardown(): Promise<void> {
    clearTimeout(this.renewTimer);
    clearTimeout(this.resumeTimer);
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

  /** The swarm's dashboard token as this manager last saw it; undefined off managers or before one is made. */
  dashboardToken(): string | undefined {
    return this.manager?.dashboardToken.current();
  }

  /** The swarm's dashboard token as stored now (read again, rate-limited); undefined off managers. */
  async confirmedDashboardToken(): Promise<string | undefined> {
    return this.manager?.dashboardToken.confirmed();
  }

  /** Called when the dashboard token changes, or stops being this node's (demoted, left). */
  onDashboardToken(fn: () => void): () => void {
    this.dashboardTokenListeners.push(fn);
    return () => {
      const i = this.dashboardTokenListeners.indexOf(fn);
      if (i >= 0) this.dashboardTokenListeners.splice(i, 1);
    };
  }

  protected override async startManager(
    bootstrap?: (m: Manager) => Promise<void>,
    forceNewCluster = false,
    initialCluster?: string,
  ): Promise<void> {
    const s = this.state!;
    const f = this.files;
    const m = await Manager.start({
      nodeId: s.nodeId,
      clusterId: s.clusterId,
      advertiseAddr: s.advertiseAddr,
      listenAddr: s.listenAddr,
      tls: { caFile: f.ca, certFile: f.cert, keyFile: f.key, etcdCaFile: f.etcdCa, etcdCertFile: f.etcdCert },
      swarmDir: this.dir,
      log: this.log.child({ part: 'manager' }),
      forceNewCluster,
      initialCluster,
      dek: this.dek,
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
    m.dashboardToken.onChange(() => {
      for (const fn of this.dashboardTokenListeners) fn();
    });
    // Ends with the manager's store (a demoted node's store sends nothing more).
    watchSwarmEvents(m.store, (e) => {
      for (const fn of this.swarmEventListeners) fn(e);
    });
  }

  /** Where agent-side streams besides the session (the network view, logs) reach a manager; undefined outside a swarm. */
  agentTarget(): ManagerTarget | undefined {
    const s = this.state;
    if (!s || !this.session) return undefined;
    return { nodeId: s.nodeId, ...this.managerEndpoints(s) };
  }

  /** The node's TLS files (read per connection) and the managers, this node's own first when it is one. */
  private managerEndpoints(s: SwarmState): ManagerEndpoints {
    const f = this.files;
    return {
      tls: () => ({ ca: fs.readFileSync(f.ca), cert: fs.readFileSync(f.cert), key: fs.readFileSync(f.key) }),
      managers: () => {
        const own = this.manager ? [`${s.advertiseAddr}:${s.listenAddr.split(':').pop()}`] : [];
        return [...new Set([...own, ...s.managers.map((m) => m.addr)])];
      },
    };
  }

  protected override startSession(): void {
    const s = this.state!;
    const session = new AgentSession({
      log: this.log.child({ part: 'session' }),
      ...this.managerEndpoints(s),
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

  info(): Record<string, unknown> {
    const s = this.state;
    if (!s) return inactiveSwarmInfo();
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

/** The Swarm part of GET /info on a daemon that is in no swarm (or has no swarm node at all). */
export function inactiveSwarmInfo(): Record<string, unknown> {
  return {
    NodeID: '',
    NodeAddr: '',
    LocalNodeState: 'inactive',
    ControlAvailable: false,
    Error: '',
    RemoteManagers: null,
  };
}
