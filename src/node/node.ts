import type { NodeDescription } from '../cluster/types.js';
import type { DaemonConfig } from '../engine/config.js';
import type { Logger } from '../util/log.js';
import type { AgentLink, ManagerTarget, SwarmMembership } from '../agent/link.js';
import type { Manager } from '../manager/manager.js';
import type { Store } from '../manager/store/store.js';
import type { SwarmEvent } from '../manager/events/swarm-events.js';
import { tlsInfo } from '../manager/ca/tls-info.js';
import type { InitRequest, JoinRequest } from './swarm-spec.js';
import { NodeCore } from './core.js';
import { KeysAtRest, NodeUnlock } from './unlock.js';
import { NodeCertificates } from './certificates.js';
import { NodeLifecycle } from './lifecycle.js';
import { NodeMembership } from './membership.js';
import { NodeRoles } from './roles.js';

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

/**
 * This daemon's membership in a swarm (swarmkit's node.Node): init, join, leave, and what runs
 * because of it (the manager on managers, the agent session everywhere). The API asks it for
 * the manager's store. A façade: the state is one NodeCore (core.ts), the work is in the parts
 * it builds here, each given what it needs: keys at rest and `swarm unlock` (unlock.ts), the
 * certificate (certificates.ts), init/join/leave (membership.ts), role changes (roles.ts), and
 * startup, shutdown and what runs (lifecycle.ts).
 */
export class SwarmNode implements SwarmMembership {
  private readonly core: NodeCore;
  private readonly certs: NodeCertificates;
  private readonly lifecycle: NodeLifecycle;
  private readonly unlocking: NodeUnlock;
  private readonly membership: NodeMembership;
  private readonly roles: NodeRoles;

  constructor(config: DaemonConfig, log: Logger) {
    const core = (this.core = new NodeCore(config, log));
    const keys = new KeysAtRest(core);
    this.certs = new NodeCertificates(core);
    // Each session message: the role, the trust roots and the API client CA the managers decided.
    this.lifecycle = new NodeLifecycle(core, keys, this.certs, (msg) => {
      this.roles.reconcileRole(msg.node.Spec.Role);
      this.certs.reconcileTrust(msg.rootCA, msg.signingRoot);
      this.certs.keepApiClientCA(msg.apiClientCA);
    });
    this.unlocking = new NodeUnlock(core, keys, this.lifecycle);
    this.membership = new NodeMembership(core, keys, this.lifecycle);
    this.roles = new NodeRoles(core, keys, this.certs, this.lifecycle);
  }

  /** Forwarded to whichever session is current, so the worker registers once. */
  get link(): AgentLink {
    return this.core.link;
  }

  get nodeId(): string | undefined {
    return this.core.nodeId;
  }

  get isManager(): boolean {
    return this.core.isManager;
  }

  /** The manager, or Docker's 503 for a node that is not one. */
  requireManager(): Manager {
    return this.core.requireManager();
  }

  /** The cluster store for API handlers (services, tasks, networks…); 503 off managers. */
  controlStore(): Store {
    return this.core.controlStore();
  }

  description(): NodeDescription {
    return this.core.description();
  }

  /** Resumes membership after a restart. */
  open(): Promise<void> {
    return this.lifecycle.open();
  }

  close(): Promise<void> {
    return this.lifecycle.close();
  }

  init(req: InitRequest): Promise<string> {
    return this.membership.init(req);
  }

  join(req: JoinRequest): Promise<void> {
    return this.membership.join(req);
  }

  leave(force: boolean): Promise<void> {
    return this.membership.leave(force);
  }

  /** `swarm update --autolock` / `unlock-key --rotate`: the new key (or none) for every manager. */
  setUnlockKey(key: Buffer | undefined): Promise<void> {
    return this.unlocking.setUnlockKey(key);
  }

  /** `swarm unlock-key`: Docker's text form, empty when autolock is off. */
  unlockKey(): Promise<string> {
    return this.unlocking.unlockKey();
  }

  /** `swarm unlock`: opens the sealed TLS key and starts what a manager runs. */
  unlock(keyText: string): Promise<void> {
    return this.unlocking.unlock(keyText);
  }

  /** A new key and certificate for the same identity and role, from a manager's CA. */
  renewCertificate(): Promise<void> {
    return this.certs.renewCertificate();
  }

  /** The swarm's API client CA certificate, while this node is in a swarm; undefined otherwise. */
  apiClientCAPem(): string | undefined {
    return this.certs.apiClientCAPem();
  }

  /** Where agent-side streams besides the session (the network view, logs) reach a manager; undefined outside a swarm. */
  agentTarget(): ManagerTarget | undefined {
    return this.lifecycle.agentTarget();
  }

  /** Swarm events (dockerd's scope "swarm") from this node's manager, whenever it is one. */
  onSwarmEvent(fn: (e: SwarmEvent) => void): void {
    this.core.swarmEventListeners.push(fn);
  }

  /** The swarm's dashboard token as this manager last saw it; undefined off managers or before one is made. */
  dashboardToken(): string | undefined {
    return this.core.manager?.dashboardToken.current();
  }

  /** The swarm's dashboard token as stored now (read again, rate-limited); undefined off managers. */
  async confirmedDashboardToken(): Promise<string | undefined> {
    return this.core.manager?.dashboardToken.confirmed();
  }

  /** Called when the dashboard token changes, or stops being this node's (demoted, left). */
  onDashboardToken(fn: () => void): () => void {
    this.core.dashboardTokenListeners.push(fn);
    return () => {
      const i = this.core.dashboardTokenListeners.indexOf(fn);
      if (i >= 0) this.core.dashboardTokenListeners.splice(i, 1);
    };
  }

  info(): Record<string, unknown> {
    const s = this.core.state;
    if (!s) return inactiveSwarmInfo();
    const base: Record<string, unknown> = {
      NodeID: s.nodeId,
      NodeAddr: s.advertiseAddr,
      LocalNodeState: this.core.locked ? 'locked' : 'active',
      ControlAvailable: !!this.core.manager,
      Error: '',
      RemoteManagers: s.managers.filter((m) => m.nodeId).map((m) => ({ NodeID: m.nodeId, Addr: m.addr })),
    };
    if (this.core.manager) {
      const nodes = this.core.manager.store.list('nodes');
      base.Nodes = nodes.length;
      base.Managers = nodes.filter((n) => n.Spec.Role === 'manager').length;
      const c = this.core.manager.store.list('cluster')[0];
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
