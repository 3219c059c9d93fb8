import fs from 'node:fs';
import type { ManagerEndpoints, ManagerTarget } from '../agent/link.js';
import { AgentSession } from '../agent/session/session.js';
import type { SessionMessage } from '../cluster/rpc.js';
import { Manager } from '../manager/manager.js';
import { watchSwarmEvents } from '../manager/events/swarm-events.js';
import type { SwarmState } from './swarm-spec.js';
import type { NodeCore, NodeRunner } from './core.js';
import type { KeysAtRest } from './unlock.js';
import type { NodeCertificates } from './certificates.js';

/** How long a restarting daemon waits for its manager before it serves anyway (dockerd: 20 s). */
const MANAGER_START_WAIT_MS = 20_000;

/**
 * What runs because of the membership, and when: the manager on managers, the agent session
 * everywhere; resumed after a restart, stopped on shutdown, torn down on leave.
 */
export class NodeLifecycle implements NodeRunner {
  private resumeTimer?: NodeJS.Timeout;

  /** `onSession`: each session message from the managers (role, trust, API client CA to follow). */
  constructor(
    private readonly core: NodeCore,
    private readonly keys: KeysAtRest,
    private readonly certs: Pick<NodeCertificates, 'scheduleRenewal' | 'stopRenewal'>,
    private readonly onSession: (msg: SessionMessage) => void,
  ) {}

  /** Resumes membership after a restart. */
  async open(): Promise<void> {
    try {
      this.core.state = JSON.parse(fs.readFileSync(this.core.files.state, 'utf8')) as SwarmState;
    } catch {
      return;
    }
    if (this.core.state.role === 'manager' && fs.existsSync(this.core.files.sealedKey)) {
      // Autolocked: the plain key must not outlive the previous run (it does after a crash).
      fs.rmSync(this.core.files.key, { force: true });
      this.core.locked = true;
      this.core.log.info('swarm is locked; waiting for docker swarm unlock');
      return;
    }
    this.core.dek = this.keys.readDek();
    // A role change cut short: no manager until the session's role finishes it (reconcileRole).
    if (this.core.state.role === 'manager' && !this.core.state.roleChange)
      await this.resumeManagerAtMost(MANAGER_START_WAIT_MS);
    try {
      // The agent runs even while the manager cannot (etcd down on a full disk): the node stays
      // Ready through the other managers and its tasks are handled, as swarmkit's agent does.
      this.startSession();
    } catch (err) {
      this.core.log.error({ err }, 'could not resume swarm membership');
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
      this.core.log.error({ err, retryInMs: delayMs }, 'could not resume the manager; will retry');
      this.resumeTimer = setTimeout(() => {
        this.resumeTimer = undefined;
        if (this.core.state?.role === 'manager' && !this.core.manager && !this.core.locked)
          this.resumeManager(Math.min(delayMs * 2, 30_000)).catch((e: unknown) =>
            this.core.log.error({ err: e }, 'could not resume the manager'),
          );
      }, delayMs);
      this.resumeTimer.unref();
    }
  }

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
        this.core.log.error({ err }, 'could not resume the manager');
        return true;
      },
    );
    const done = await Promise.race([resumed, waited]);
    clearTimeout(timer);
    if (!done)
      this.core.log.warn({ waitedMs: ms }, 'the manager is still starting (no etcd quorum yet); serving meanwhile');
  }

  async close(): Promise<void> {
    this.certs.stopRenewal();
    clearTimeout(this.resumeTimer);
    this.core.session?.stop();
    await this.core.manager?.stop();
    // Autolocked: only the sealed key stays behind, so the next start is locked.
    if (this.core.kek && fs.existsSync(this.core.files.sealedKey)) fs.rmSync(this.core.files.key, { force: true });
  }

  /** Stops everything swarm and forgets the membership. */
  async teardown(): Promise<void> {
    this.certs.stopRenewal();
    clearTimeout(this.resumeTimer);
    this.core.session?.stop();
    this.core.session = undefined;
    await this.core.manager?.stop().catch((err) => this.core.log.warn({ err }, 'manager stop failed'));
    this.core.manager = undefined;
    this.core.state = undefined;
    this.core.kek = undefined;
    this.core.locked = false;
    this.core.dek = undefined;
    fs.rmSync(this.core.dir, { recursive: true, force: true });
  }

  async startManager(
    bootstrap?: (m: Manager) => Promise<void>,
    forceNewCluster = false,
    initialCluster?: string,
  ): Promise<void> {
    const s = this.core.state!;
    const f = this.core.files;
    const m = await Manager.start({
      nodeId: s.nodeId,
      clusterId: s.clusterId,
      advertiseAddr: s.advertiseAddr,
      listenAddr: s.listenAddr,
      tls: { caFile: f.ca, certFile: f.cert, keyFile: f.key, etcdCaFile: f.etcdCa, etcdCertFile: f.etcdCert },
      swarmDir: this.core.dir,
      log: this.core.log.child({ part: 'manager' }),
      forceNewCluster,
      initialCluster,
      dek: this.core.dek,
      onDataKey: (dek) => {
        this.core.dek = dek;
        this.keys.writeDek();
      },
    });
    try {
      if (bootstrap) await bootstrap(m);
      await m.serve();
      await m.followUnlockKey((key) => {
        try {
          this.keys.applyUnlockKey(key);
        } catch (err) {
          this.core.log.error({ err }, 'could not seal the TLS key with the new unlock key');
        }
      });
    } catch (e) {
      await m.stop();
      throw e;
    }
    this.core.manager = m;
    m.dashboardToken.onChange(() => {
      for (const fn of this.core.dashboardTokenListeners) fn();
    });
    // Ends with the manager's store (a demoted node's store sends nothing more).
    watchSwarmEvents(m.store, (e) => {
      for (const fn of this.core.swarmEventListeners) fn(e);
    });
  }

  /** Where agent-side streams besides the session (the network view, logs) reach a manager; undefined outside a swarm. */
  agentTarget(): ManagerTarget | undefined {
    const s = this.core.state;
    if (!s || !this.core.session) return undefined;
    return { nodeId: s.nodeId, ...this.managerEndpoints(s) };
  }

  /** The node's TLS files (read per connection) and the managers, this node's own first when it is one. */
  private managerEndpoints(s: SwarmState): ManagerEndpoints {
    const f = this.core.files;
    return {
      tls: () => ({ ca: fs.readFileSync(f.ca), cert: fs.readFileSync(f.cert), key: fs.readFileSync(f.key) }),
      managers: () => {
        const own = this.core.manager ? [`${s.advertiseAddr}:${s.listenAddr.split(':').pop()}`] : [];
        return [...new Set([...own, ...s.managers.map((m) => m.addr)])];
      },
    };
  }

  startSession(): void {
    const s = this.core.state!;
    const session = new AgentSession({
      log: this.core.log.child({ part: 'session' }),
      ...this.managerEndpoints(s),
      onManagers: (list) => {
        if (JSON.stringify(list) !== JSON.stringify(s.managers)) {
          s.managers = list;
          this.core.saveState();
        }
      },
      description: () => this.core.description(),
      addr: s.advertiseAddr,
      onSession: (msg) => this.onSession(msg),
    });
    session.onAssignments((tasks, files, changes) => {
      for (const fn of this.core.assignmentListeners) fn(tasks, files, changes);
    });
    this.core.session = session;
    session.start();
    this.certs.scheduleRenewal();
  }
}
