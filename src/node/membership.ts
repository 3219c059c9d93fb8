import fs from 'node:fs';
import path from 'node:path';
import type { Cluster, Node } from '../cluster/types.js';
import { ApiError, badRequest, unavailable } from '../util/errors.js';
import { newSwarmId } from '../util/ids.js';
import { Manager, QuorumLost } from '../manager/manager.js';
import type { Store } from '../manager/store/store.js';
import { ingressNetwork } from '../manager/networks/swarm-networks.js';
import { createRootCA, signNodeCert } from '../manager/ca/root-ca.js';
import { generateJoinToken, InvalidTokenError, parseJoinToken, rootDigest } from '../manager/ca/tokens.js';
import { tlsInfo } from '../manager/ca/tls-info.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../cluster/pki.js';
import { ERR_SWARM_LOCKED, newUnlockKey } from '../manager/ca/unlock-key.js';
import {
  clientCredentials,
  grpcAddr,
  insecureCredentials,
  RpcClient,
  type IssueResponse,
  type RequestOf,
  type ResponseOf,
  type UnaryMethodName,
} from '../cluster/rpc.js';
import {
  ERR_NOT_MANAGER,
  ERR_SWARM_EXISTS,
  ERR_NO_SWARM,
  type SwarmState,
  type InitRequest,
  type JoinRequest,
  defaultClusterSpec,
  mergeClusterSpec,
} from './swarm-spec.js';
import { parseListenAddr, resolveAdvertiseAddr, resolveDataPathAddr, localAddrTowards, rpcError } from './addresses.js';
import { NodeCertificates } from './certificates.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A new swarm's first writes are done: the node's ingress address given (a write of its node
 * object), and its images reported (their own object: a `service create` of an image loaded
 * before `swarm init` resolves it right away, as on Docker).
 */
function nodeSettled(store: Store, nodeId: string): boolean {
  const n = store.viewOne('nodes', nodeId);
  return !!store.viewOne('nodeImages', nodeId) && !!n?.Attachments?.some((a) => a.Network.Spec.Ingress);
}

/** Joining and leaving a swarm: init, join, leave, and the role changes (promote, demote) managers decide. */
export abstract class NodeMembership extends NodeCertificates {
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
      const cert = await signNodeCert(ca, {
        csrPem: await createCsr(keys),
        nodeId,
        role: 'manager',
        clusterId,
        addresses: [advertise.host],
        expiryMs: (spec.CAConfig?.NodeCertExpiry ?? 0) / 1e6 || undefined,
      });
      this.writeCerts(ca.certPem, cert, await privateKeyToPem(keys.privateKey));
      this.writeEtcdCerts(ca.certPem, cert);
      const state: SwarmState = {
        nodeId,
        clusterId,
        role: 'manager',
        advertiseAddr: advertise.host,
        listenAddr: `${listen.host}:${listen.port}`,
        managers: [{ nodeId, addr: `${advertise.host}:${advertise.port}` }],
      };
      try {
        this.state = state;
        this.saveState();
        this.dek = newUnlockKey();
        this.writeDek();
        await this.startManager(async (m) => {
          const now = new Date().toISOString();
          const cluster: Cluster = {
            ID: clusterId,
            Version: { Index: 0 },
            CreatedAt: now,
            UpdatedAt: now,
            Spec: spec,
            TLSInfo: tlsInfo(ca.certPem),
            RootRotationInProgress: false,
            DefaultAddrPool: req.DefaultAddrPool?.length ? req.DefaultAddrPool : ['10.0.0.0/8'],
            SubnetSize: req.SubnetSize || 24,
            DataPathPort: req.DataPathPort || 4789,
            JoinTokens: { Worker: generateJoinToken(ca.certPem), Manager: generateJoinToken(ca.certPem) },
          };
          const node: Node = {
            ID: nodeId,
            Version: { Index: 0 },
            CreatedAt: now,
            UpdatedAt: now,
            Spec: { Labels: {}, Role: 'manager', Availability: 'active' },
            Description: this.description(),
            Status: { State: 'ready', Addr: advertise.host },
            ManagerStatus: { Reachability: 'reachable', Addr: `${advertise.host}:${advertise.port}` },
          };
          await m.bootstrap(ca, cluster, node);
          if (spec.EncryptionConfig?.AutoLockManagers) await m.setUnlockKey(newUnlockKey());
          await m.store.commit([{ kind: 'networks', op: 'create', object: ingressNetwork() }]);
        });
        // As dockerd: when init answers, this node leads (node ls shows it Leader).
        const settled = Date.now() + 10_000;
        while (this.manager && !this.manager.election.isLeader && Date.now() < settled) await sleep(20);
        this.startSession();
        // And its node object is settled: a client that lists then inspects it reads one Version
        // (docker-py's test_inspect_node), not one from before the allocator's and agent's first writes.
        while (this.manager && !nodeSettled(this.manager.store, nodeId) && Date.now() < settled) await sleep(20);
      } catch (e) {
        await this.teardown();
        throw e;
      }
      return nodeId;
    });
  }

  protected async forceNewCluster(): Promise<string> {
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
      const advertiseHost = req.AdvertiseAddr
        ? (await resolveAdvertiseAddr(req.AdvertiseAddr, listen.host)).host
        : await localAddrTowards(remote);

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
        issued = await ca.call(
          'IssueNodeCertificate',
          { csr: await createCsr(keys), token: req.JoinToken ?? '', addr: advertiseHost },
          15_000,
        );
      } catch (e) {
        throw rpcError(e);
      } finally {
        ca.close();
      }
      this.writeCerts(rootPem, issued.certificate, keyPem);
      if (issued.etcdCertificate && issued.etcdCA) this.writeEtcdCerts(issued.etcdCA, issued.etcdCertificate);
      this.state = {
        nodeId: issued.nodeId,
        clusterId: issued.clusterId,
        role: issued.role,
        advertiseAddr: advertiseHost,
        listenAddr: `${listen.host}:${listen.port}`,
        managers: [{ nodeId: '', addr: remote }],
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

  protected async membershipCall<M extends UnaryMethodName<'Membership'>>(
    remote: string,
    method: M,
    req: RequestOf<'Membership', M>,
  ): Promise<ResponseOf<'Membership', M>> {
    const f = this.files;
    const c = new RpcClient(
      'Membership',
      remote,
      clientCredentials(fs.readFileSync(f.ca), fs.readFileSync(f.cert), fs.readFileSync(f.key)),
    );
    try {
      return await c.call(method, req, 30_000);
    } finally {
      c.close();
    }
  }

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
            if (reachable === 1 && unreachable === 0)
              throw unavailable(
                msg +
                  'Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. ',
              );
            msg += `Removing this node leaves ${reachable - 1} managers out of ${reachable + unreachable}. Without a Raft quorum your swarm will be inaccessible. `;
          }
        } else {
          msg += 'Doing so may lose the consensus of your cluster. ';
        }
        throw unavailable(
          msg +
            'The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.',
        );
      }
      if (this.manager) {
        // Leave the etcd cluster first so the remaining members do not wait for us.
        const others = (await this.manager.memberCount().catch(() => 1)) > 1;
        if (others)
          await this.manager
            .removeMember(this.state.nodeId)
            .catch((err) => this.log.warn({ err }, 'etcd member remove failed'));
      }
      await this.teardown();
    });
  }

  /**
   * Follows the role managers decided for this node; retries every 5 s as SwarmKit's role manager.
   * A role decided while a change runs (a promote right after a demote: the session message
   * arrives while the demotion still waits for its certificate) is followed once that change ends.
   */
  protected reconcileRole(want: 'manager' | 'worker'): void {
    this.wantedRole = want;
    if (!this.state || (want === this.state.role && !this.state.roleChange)) return;
    if (this.roleChange) {
      this.log.info({ role: want }, 'role change requested while another runs; following it next');
      return;
    }
    this.roleChange = this.exclusive(() => this.changeRole(want))
      .then(
        () => 0,
        (err) => {
          this.log.warn({ err, role: want }, 'role change failed; retrying');
          return 5000;
        },
      )
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
  protected async changeRole(role: 'manager' | 'worker'): Promise<void> {
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
    if (issued.renewed.role !== role)
      throw new Error(`CA issued a ${issued.renewed.role} certificate, expected ${role}`);
    this.installCertificate(issued);
    if (role === 'manager' && !this.manager) {
      fs.rmSync(path.join(this.dir, 'etcd'), { recursive: true, force: true });
      const joined = await this.fromAnyManager(remotes, (r) =>
        this.membershipCall(r, 'Join', { addr: s.advertiseAddr, promotion: true }),
      );
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
  protected otherManagers(): string[] {
    const s = this.state;
    if (!s) return [];
    const own = `${s.advertiseAddr}:${s.listenAddr.split(':').pop()}`;
    const all = [this.session?.current, ...s.managers.filter((m) => m.nodeId !== s.nodeId).map((m) => m.addr)];
    return [...new Set(all.filter((a): a is string => !!a && a !== own))];
  }

  /** `call` on the first manager that answers: one that is down or slow must not hold up a role change. */
  protected async fromAnyManager<T>(remotes: string[], call: (remote: string) => Promise<T>): Promise<T> {
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
  protected async removeOwnMember(m: Manager, nodeId: string, remotes: string[]): Promise<void> {
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
}
