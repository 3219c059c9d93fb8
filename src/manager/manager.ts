import * as grpc from '@grpc/grpc-js';
import { openValue, storedValue } from './ca/unlock-key.js';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Etcd3, Watcher } from 'etcd3';
import type { Cluster, Node } from '../cluster/types.js';
import { attachmentHandlers } from './networks/attachments.js';
import { addRpcService, SwarmServerCredentials, SWARM_PORT } from '../cluster/rpc.js';
import { PeerIdentities, type TrustView } from './peer-identity.js';
import { ManagerMembership } from './membership.js';
import type { Logger } from '../util/log.js';
import { EtcdMember, etcdClient, waitForEtcd } from './store/etcd-member.js';
import { QuorumLost } from './store/etcd-reconfig.js';
import { EtcdStore } from './store/etcd-store.js';
import { LeaderElection } from './leader/election.js';
import { managerPortGone } from './leader/holder-probe.js';
import { LeaderLoops, type LeaderLoop } from './leader/loops.js';
import { controlLoops } from './control-loops.js';
import { Dispatcher, heartbeatPeriodMs, GRACE_MULTIPLIER } from './dispatcher/dispatcher.js';
import { livenessLoop } from './dispatcher/liveness.js';
import { networkViewHandler } from './dispatcher/network-view.js';
import { tunnelReportHandlers } from './dispatcher/tunnel-report.js';
import { imageIndexHandlers } from './dispatcher/image-index.js';
import { LogBroker } from './dispatcher/logs.js';
import { caHandlers } from './ca/server.js';
import { rootRotationLoop } from './ca/rotation.js';
import type { RootCAMaterial } from './ca/root-ca.js';
import { createApiCA, signApiCert } from '../cluster/api-certs.js';
import { CA_KEY, caRotating, finishRotation, startRotation, trustedRoots, type StoredCA } from './ca/stored-ca.js';
import { ManagerDataKeys } from './data-keys.js';
import { ManagerDashboardToken } from './dashboard-token.js';

export type { StoredCA };

export interface ManagerTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** etcd's CA and this manager's etcd certificate (same key). */
  etcdCaFile: string;
  etcdCertFile: string;
}

export interface ManagerOptions {
  nodeId: string;
  clusterId: string;
  advertiseAddr: string;
  /** host:port the cluster gRPC server binds. */
  listenAddr: string;
  tls: ManagerTls;
  /** <data-root>/swarm */
  swarmDir: string;
  log: Logger;
  /** The swarm's data-encryption key: seals the secrets kept in etcd (undefined: a swarm from before it). */
  dek?: Buffer;
  /** A data key rotation gave this manager a new DEK: the node keeps it at rest. */
  onDataKey?: (dek: Buffer) => void;
  /** Joining an existing cluster: the etcd initial-cluster string Membership.Join returned. */
  initialCluster?: string;
  forceNewCluster?: boolean;
}

export { QuorumLost };

/** Waits for an etcd clean-up step at most `ms`; its failure does not matter to the caller. */
async function bounded(p: Promise<unknown> | undefined, ms = 3000): Promise<void> {
  if (!p) return;
  let t: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise((r) => {
      t = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(t);
}

/**
 * Everything a manager runs: its etcd member and the store on it, the leader election and the
 * leader loops, and the cluster gRPC server (CA, dispatcher, membership) on port 2377.
 */
export class Manager {
  readonly store: EtcdStore;
  readonly election: LeaderElection;
  readonly dispatcher: Dispatcher;
  /** The agents' network view streams (dispatcher/network-view.ts). */
  private readonly networkView: ReturnType<typeof networkViewHandler>;
  /** `docker service logs`: subscriptions to the agents (dispatcher/logs.ts). */
  readonly logs: LogBroker;
  /** The swarm's dashboard login token, followed from the store. */
  readonly dashboardToken: ManagerDashboardToken;
  private readonly loops: LeaderLoops;
  private server?: grpc.Server;
  private credentials?: SwarmServerCredentials;
  private caMaterial?: StoredCA;
  private caWatch?: Watcher;
  private readonly keys: ManagerDataKeys;
  /** The stored CA as last seen, when it was sealed with a data key not yet followed. */
  private caPending?: Buffer;
  private stopping = false;
  private readonly identities: PeerIdentities;
  private readonly membership: ManagerMembership;

  private constructor(
    readonly o: ManagerOptions,
    readonly member: EtcdMember,
    readonly client: Etcd3,
    private readonly electionClient: Etcd3,
  ) {
    // A leader whose manager refuses connections (its shoald died) is replaced without waiting for its lease.
    const holderGone = async (nodeId: string) => {
      const addr = this.store.viewOne('nodes', nodeId)?.ManagerStatus?.Addr;
      return !!addr && (await managerPortGone(addr));
    };
    this.election = new LeaderElection(electionClient, o.nodeId, o.log.child({ part: 'election' }), holderGone);
    this.store = new EtcdStore(client, o.log.child({ part: 'store' }), this.election);
    this.identities = new PeerIdentities(o.clusterId, () => this.trustView());
    this.keys = new ManagerDataKeys(
      o,
      client,
      () => this.stopping,
      () => {
        if (this.caPending) this.caChanged(this.caPending);
        this.dashboardToken.retryPending();
      },
    );
    this.dashboardToken = new ManagerDashboardToken(client, () => this.o.dek, o.log.child({ part: 'dashboard-token' }));
    this.membership = new ManagerMembership({
      nodeId: o.nodeId,
      clusterId: o.clusterId,
      advertiseAddr: o.advertiseAddr,
      client,
      store: this.store,
      identities: this.identities,
      log: o.log.child({ part: 'membership' }),
      dek: () => this.o.dek,
    });
    // The leader loops, built here where leadership starts: the control loops plus the two that need this manager.
    const loops = new Map<string, LeaderLoop>([
      ...controlLoops(),
      ['liveness', livenessLoop(client, () => heartbeatPeriodMs(this.store) * GRACE_MULTIPLIER)],
      [
        'root-rotation',
        rootRotationLoop(
          () => this.rotationView(),
          (root) => this.finishRootRotation(root),
        ),
      ],
    ]);
    this.loops = new LeaderLoops(this.store, o.log.child({ part: 'leader' }), o.nodeId, loops);
    this.dispatcher = new Dispatcher({
      store: this.store,
      client,
      log: o.log.child({ part: 'dispatcher' }),
      identify: (call) => this.identify(call),
      rootCA: () => this.trustBundle(),
      signingRoot: () => this.rootCertPem(),
      apiClientCA: () => this.caMaterial?.apiClients?.certPem,
      dek: () => this.o.dek,
    });
    this.networkView = networkViewHandler(this.store, (c) => this.identify(c));
    this.logs = new LogBroker(this.store, (c) => this.identify(c));
  }

  /** Starts the etcd member and waits for it, then the store (not yet the RPC server: see serve()). */
  static async start(o: ManagerOptions): Promise<Manager> {
    const etcdDir = path.join(o.swarmDir, 'etcd');
    const member = new EtcdMember(
      {
        name: o.nodeId,
        dataDir: etcdDir,
        advertiseAddr: o.advertiseAddr,
        certFile: o.tls.etcdCertFile,
        keyFile: o.tls.keyFile,
        caFile: o.tls.etcdCaFile,
        clusterToken: o.clusterId,
        initialCluster: o.initialCluster,
        forceNewCluster: o.forceNewCluster,
        logFile: path.join(o.swarmDir, 'etcd.log'),
        pidFile: path.join(o.swarmDir, 'etcd.pid'),
      },
      o.log.child({ part: 'etcd' }),
    );
    await member.start();
    const tls = {
      ca: fs.readFileSync(o.tls.etcdCaFile),
      cert: fs.readFileSync(o.tls.etcdCertFile),
      key: fs.readFileSync(o.tls.keyFile),
    };
    const client = etcdClient(['https://127.0.0.1:2379'], tls);
    // The leader lease's keepalives on a connection of their own: behind megabytes of store
    // transactions and watch events on the shared one, they arrived late and the lease expired.
    const electionClient = etcdClient(['https://127.0.0.1:2379'], tls);
    try {
      await waitForEtcd(client, 60_000, member);
    } catch (e) {
      client.close();
      electionClient.close();
      await member.stop();
      throw e;
    }
    const m = new Manager(o, member, client, electionClient);
    await m.store.start();
    return m;
  }

  /** First manager of a new swarm: the CA, the cluster object and this node. */
  async bootstrap(ca: RootCAMaterial, cluster: Cluster, node: Node): Promise<void> {
    const stored: StoredCA = { ...ca, trust: [ca.certPem], etcd: ca };
    await this.client.put(CA_KEY).value(this.sealCA(stored)).exec();
    // Overlay keys' first epoch comes with the swarm: a first bump by the key loop raced `swarm update`.
    const keys = cluster.OverlayKeys ?? { Epoch: 1, RotatedAt: new Date().toISOString() };
    await this.store.commit([
      { kind: 'cluster', op: 'create', object: { ...cluster, OverlayKeys: keys } },
      { kind: 'nodes', op: 'create', object: node },
    ]);
  }

  /** Elections, presence, leader loops and the cluster RPC server. */
  async serve(): Promise<void> {
    const raw = await this.client.get(CA_KEY).buffer();
    if (!raw) throw new Error('swarm CA material missing from the store');
    this.caMaterial = this.openCA(raw);
    if (!this.caMaterial.apiClients) await this.addApiClientCA(raw);
    this.caWatch = await this.client.watch().key(CA_KEY).create();
    this.caWatch.on('put', (kv) => this.caChanged(kv.value));
    await this.dashboardToken.start();

    await this.membership.start();

    const server = new grpc.Server();
    addRpcService(
      server,
      'CA',
      caHandlers({
        store: this.store,
        log: this.o.log.child({ part: 'ca' }),
        clusterId: this.o.clusterId,
        ca: () => this.caMaterial!,
        shownRoot: () => this.shownRoot(),
        etcdCA: () => this.caMaterial!.etcd ?? this.caMaterial!,
        identify: (c) => this.identify(c),
      }),
    );
    addRpcService(server, 'Dispatcher', {
      ...this.dispatcher.handlers(),
      NetworkView: this.networkView.handler,
      ...this.logs.handlers(),
      ...attachmentHandlers(this.store, (c) => this.identify(c)),
      ...tunnelReportHandlers(this.store, (c) => this.identify(c), this.o.log.child({ part: 'tunnels' })),
      ...imageIndexHandlers(this.store, (c) => this.identify(c), this.o.log.child({ part: 'images' })),
    });
    addRpcService(server, 'Membership', this.membership.handlers());
    this.credentials = new SwarmServerCredentials(
      Buffer.from(this.trustBundle()),
      fs.readFileSync(this.o.tls.certFile),
      fs.readFileSync(this.o.tls.keyFile),
    );
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(this.o.listenAddr, this.credentials!, (e) => (e ? reject(e) : resolve())),
    );
    this.server = server;
    this.o.log.info({ listen: this.o.listenAddr }, 'cluster RPC server listening');
    // Campaign once the cluster port answers: the other managers take a leader whose port
    // refuses connections for a dead one (leader/election.ts).
    this.election.on('leader', (leading: boolean) => (leading ? this.loops.start() : this.loops.stop()));
    this.election.start();
  }

  /**
   * New certificate files on disk (renewal) or a new trust set (rotation): new connections to
   * 2377 use them, open ones keep what their handshake agreed; etcd re-reads its files per handshake.
   * Clients' certificates are checked against the swarm's trust as this manager knows it from the
   * store, not against its own node's copy, which follows a little later.
   */
  reloadTls(): void {
    this.credentials?.update(
      Buffer.from(this.trustBundle()),
      fs.readFileSync(this.o.tls.certFile),
      fs.readFileSync(this.o.tls.keyFile),
    );
  }

  /**
   * Stops campaigning and gives up leadership at once (a demotion): the other managers take over
   * without waiting out this leader's lease, which a removed etcd member can no longer revoke.
   */
  async resign(): Promise<void> {
    await bounded(this.election.stop());
  }

  isReachable(nodeId: string): boolean {
    return this.membership.isReachable(nodeId);
  }

  /** False once etcd stopped answering linearizable reads. */
  get hasQuorum(): boolean {
    return this.membership.hasQuorum;
  }

  rootCertPem(): string {
    return this.caMaterial?.certPem ?? fs.readFileSync(this.o.tls.caFile, 'utf8');
  }

  /** The root the cluster shows and joiners get: the old one until a rotation ends. */
  shownRoot(): string {
    const m = this.caMaterial;
    return this.store.list('cluster')[0]?.TLSInfo.TrustRoot ?? m?.rotatingFrom?.certPem ?? this.rootCertPem();
  }

  /** Every root certificate this swarm trusts now, the shown one first (what agents store). */
  trustBundle(): string {
    const m = this.caMaterial;
    if (!m) return fs.readFileSync(this.o.tls.caFile, 'utf8');
    return trustedRoots(m, this.store.list('cluster')[0]?.TLSInfo.TrustRoot);
  }

  /**
   * `swarm ca --rotate`: a new root signs from now on; nodes trust both roots until every node
   * holds a certificate from the new one (the root-rotation leader loop then ends the rotation).
   */
  async rotateRootCA(next: RootCAMaterial): Promise<void> {
    const stored = await startRotation(this.ca(), next);
    await this.client.put(CA_KEY).value(this.sealCA(stored)).exec();
    this.caMaterial = stored;
  }

  /** What the root-rotation loop needs: the signing root, and whether older roots are still trusted. */
  private rotationView() {
    const c = this.ca();
    return { signingRoot: c.certPem, caRotating: caRotating(c) };
  }

  /**
   * Ends the rotation to `signingRoot`: only it stays trusted. False when the stored CA is no
   * longer that rotation (another `--rotate` replaced it): compared and written in one etcd
   * transaction, as SwarmKit finishes only the rotation it watched.
   */
  async finishRootRotation(signingRoot: string): Promise<boolean> {
    const raw = await this.client.get(CA_KEY).buffer();
    if (!raw) return false;
    const current = this.openCA(raw);
    if (current.certPem !== signingRoot) return false;
    if (!caRotating(current)) return true;
    const txn = await this.client
      .if(CA_KEY, 'Value', '==', raw)
      .then(this.client.put(CA_KEY).value(this.sealCA(finishRotation(current))))
      .commit();
    return !!txn.succeeded;
  }

  /**
   * Makes the Engine API client CA once per swarm (a swarm from before it gets one at its
   * next manager start): compared on the stored value, so two managers never make two.
   */
  private async addApiClientCA(raw: Buffer): Promise<void> {
    const withClients: StoredCA = {
      ...this.openCA(raw),
      apiClients: await createApiCA(`swarm-api-clients ${this.o.clusterId}`),
    };
    const txn = await this.client
      .if(CA_KEY, 'Value', '==', raw)
      .then(this.client.put(CA_KEY).value(this.sealCA(withClients)))
      .commit();
    if (txn.succeeded) this.caMaterial = withClients;
    else this.caMaterial = this.openCA((await this.client.get(CA_KEY).buffer())!);
  }

  /**
   * `shoal cert create`: an Engine API client certificate for `name` with `role` as its OU,
   * from the CSR the client made (its key never leaves it). One year, or the CA's end.
   */
  async signApiClientCert(csrPem: string, name: string, role: string): Promise<{ certPem: string; caPem: string }> {
    const ca = this.ca().apiClients;
    if (!ca) throw new Error('the swarm has no API client CA yet');
    const { certPem } = await signApiCert(ca, {
      subject: `CN=${name}, OU=${role}, O=${this.o.clusterId}`,
      usage: 'client',
      csrPem,
      notAfter: new Date(Date.now() + 365 * 24 * 3600_000),
    });
    return { certPem, caPem: ca.certPem };
  }

  ca(): StoredCA {
    if (!this.caMaterial) throw new Error('CA not loaded');
    return this.caMaterial;
  }

  /** The roots identify() checks against (joined, and parsed), for the CA material they came from. */
  private trustCerts?: { material: StoredCA; root: string; certs: X509Certificate[] };

  private trustView(): TrustView {
    const m = this.caMaterial;
    if (m && this.trustCerts?.material === m) return this.trustCerts;
    const trust = [...(m?.trust?.length ? m.trust : [this.rootCertPem()]), ...(m?.retired ?? [])];
    const view = { root: trust.join(''), certs: trust.map((p) => new X509Certificate(p)) };
    if (m) this.trustCerts = { material: m, ...view };
    return view;
  }

  identify(call: Parameters<PeerIdentities['identify']>[0]): ReturnType<PeerIdentities['identify']> {
    return this.identities.identify(call);
  }

  /** etcd member add; returns the initial-cluster string for the new member (membership.ts). */
  addMember(nodeId: string, addr: string): Promise<string> {
    return this.membership.addMember(nodeId, addr);
  }

  /** etcd member remove, refused when the remaining reachable members would lose quorum. */
  removeMember(nodeId: string): Promise<void> {
    return this.membership.removeMember(nodeId);
  }

  memberCount(): Promise<number> {
    return this.membership.memberCount();
  }

  private sealCA(ca: StoredCA): Buffer | string {
    return storedValue(this.o.dek, Buffer.from(JSON.stringify(ca)));
  }

  private openCA(stored: Buffer): StoredCA {
    return JSON.parse(openValue(this.o.dek, stored).toString()) as StoredCA;
  }

  /** Autolock: the swarm's unlock key now and on every change (undefined: autolock off). */
  followUnlockKey(fn: (key: Buffer | undefined) => void): Promise<void> {
    return this.keys.followUnlockKey(fn);
  }

  rotateDataKey(): Promise<void> {
    return this.keys.rotateDataKey();
  }

  /**
   * The stored CA changed. A data key rotation re-seals it with a key this manager may not
   * follow yet (another watch brings it): kept until adoptDataKey opens it; a re-seal alone
   * changes nothing.
   */
  private caChanged(raw: Buffer): void {
    let ca: StoredCA;
    try {
      ca = this.openCA(raw);
    } catch {
      this.caPending = raw;
      return;
    }
    this.caPending = undefined;
    if (JSON.stringify(ca) === JSON.stringify(this.caMaterial)) return;
    this.caMaterial = ca;
    this.o.log.info('swarm root CA changed');
    this.reloadTls();
    this.dispatcher.resendSessions();
  }

  unlockKey(): Promise<Buffer | undefined> {
    return this.keys.unlockKey();
  }

  setUnlockKey(key: Buffer | undefined): Promise<void> {
    return this.keys.setUnlockKey(key);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.membership.stop();
    // Not awaited: etcd may already be gone (a demoted member); client.close() ends the watch anyway.
    this.keys.stop();
    this.loops.stop();
    this.dispatcher.close();
    this.networkView.close();
    this.logs.close();
    if (this.server)
      await new Promise<void>((r) => {
        this.server!.tryShutdown(() => r());
        setTimeout(() => {
          this.server?.forceShutdown();
          r();
        }, 2000);
      });
    // Each step talks to etcd, which may be gone (a demoted member ends itself once removed) or
    // slow: etcd3 waits for a watch cancel's answer until it reconnects, which for a removed
    // member is never. Bounded, as the member is stopped and the client closed below anyway.
    await bounded(this.election.stop());
    await bounded(this.membership.revokePresence());
    await bounded(this.membership.cancelWatch());
    await bounded(this.caWatch?.cancel());
    await bounded(this.dashboardToken.stop());
    await bounded(this.store.close());
    this.client.close();
    this.electionClient.close();
    await this.member.stop();
  }
}

export { SWARM_PORT };
