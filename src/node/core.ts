import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Cluster, NodeDescription, TaskStatus } from '../cluster/types.js';
import type { DaemonConfig } from '../engine/config.js';
import { daemonPaths, ENGINE_VERSION } from '../engine/config.js';
import type { Logger } from '../util/log.js';
import { writeFileAtomicSync } from '../util/atomic-file.js';
import { unavailable } from '../util/errors.js';
import type { AgentLink } from '../agent/link.js';
import { AgentSession } from '../agent/session/session.js';
import { Manager } from '../manager/manager.js';
import { type SwarmEvent } from '../manager/events/swarm-events.js';
import type { Store } from '../manager/store/store.js';
import { nodeTlsInfo } from '../manager/ca/tls-info.js';
import { ERR_SWARM_LOCKED, sealPrivateKey } from '../manager/ca/unlock-key.js';
import {
  ERR_NO_SWARM_MANAGER,
  ERR_NOT_MANAGER,
  ERR_NO_SWARM,
  ERR_NO_LEADER,
  type SwarmState,
  NS,
} from './swarm-spec.js';

/** Starting and stopping what a node runs (lifecycle.ts): what unlock and membership call back. */
export interface NodeRunner {
  /** Starts this node's manager; `bootstrap` writes a new swarm's first objects. */
  startManager(
    bootstrap?: (m: Manager) => Promise<void>,
    forceNewCluster?: boolean,
    initialCluster?: string,
  ): Promise<void>;
  /** Starts the agent session to the managers. */
  startSession(): void;
  /** Stops everything swarm and forgets the membership. */
  teardown(): Promise<void>;
}

/**
 * The node's shared state (swarmkit's node.Node fields): the membership on disk (state and
 * certificate files), the running manager and session, the keys, and the lock that serializes
 * membership changes. The parts work on it, each given what it needs: unlock.ts (keys at rest,
 * `swarm unlock`), certificates.ts (renewal, trust), membership.ts and roles.ts (init, join,
 * leave, promote, demote), lifecycle.ts (startup, shutdown, what runs); node.ts builds them.
 */
export class NodeCore {
  state?: SwarmState;
  manager?: Manager;
  session?: AgentSession;
  readonly dir: string;
  readonly certDir: string;
  private busy = Promise.resolve();
  /** Autolock's current unlock key, while this manager follows one. */
  kek?: Buffer;
  /** A restarted autolocked manager: nothing runs until `swarm unlock`. */
  locked = false;
  /** The swarm's data-encryption key (managers only): etcd holds secrets sealed with it. */
  dek?: Buffer;
  /** Forwarded to whichever session is current, so the worker registers once. */
  readonly link: AgentLink;
  readonly assignmentListeners: Parameters<AgentLink['onAssignments']>[0][] = [];
  /** `docker events` listeners for the swarm's events, fed while this node is a manager. */
  readonly swarmEventListeners: ((e: SwarmEvent) => void)[] = [];
  /** The dashboard's listeners for a new (or no) login token, fed by whichever manager runs. */
  readonly dashboardTokenListeners: (() => void)[] = [];

  constructor(
    readonly config: DaemonConfig,
    readonly log: Logger,
  ) {
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

  get files() {
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

  /** Serializes init/join/leave as dockerd's controlMutex does. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn);
    this.busy = run.then(
      () => undefined,
      () => undefined,
    );
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
          { Type: 'Network', Name: 'bridge' },
          { Type: 'Network', Name: 'host' },
          { Type: 'Network', Name: 'null' },
          { Type: 'Network', Name: 'overlay' },
          { Type: 'Volume', Name: 'local' },
        ],
      },
      TLSInfo: fs.existsSync(this.files.ca) ? this.nodeTlsInfo() : undefined,
    };
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

  writeEtcdCerts(ca: string, cert: string): void {
    // Atomic: a full disk during a renewal must not leave a half certificate that breaks the next start.
    writeFileAtomicSync(this.files.etcdCa, ca);
    writeFileAtomicSync(this.files.etcdCert, cert);
  }

  writeCerts(ca: string, cert: string, key: string): void {
    fs.mkdirSync(this.certDir, { recursive: true, mode: 0o700 });
    writeFileAtomicSync(this.files.ca, ca);
    writeFileAtomicSync(this.files.cert, cert);
    writeFileAtomicSync(this.files.key, key, 0o600);
    if (this.kek) writeFileAtomicSync(this.files.sealedKey, sealPrivateKey(key, this.kek), 0o600);
  }

  saveState(): void {
    fs.mkdirSync(this.dir, { recursive: true });
    writeFileAtomicSync(this.files.state, JSON.stringify(this.state, null, 2));
  }
}
