import fs from 'node:fs';
import path from 'node:path';
import type { Cluster, Node } from '../cluster/types.js';
import { ApiError, badRequest, unavailable } from '../util/errors.js';
import { newSwarmId } from '../util/ids.js';
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
import type { NodeCore, NodeRunner } from './core.js';
import type { KeysAtRest } from './unlock.js';

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
export class NodeMembership {
  constructor(
    private readonly core: NodeCore,
    private readonly keys: Pick<KeysAtRest, 'writeDek'>,
    private readonly runner: NodeRunner,
  ) {}

  init(req: InitRequest): Promise<string> {
    return this.core.exclusive(async () => {
      // Only a real `true` restarts the cluster: any other value is "already part of a swarm".
      const force = req.ForceNewCluster === true;
      if (this.core.state && !force) throw unavailable(ERR_SWARM_EXISTS);
      if (this.core.state && this.core.locked) throw unavailable(ERR_SWARM_LOCKED);
      if (this.core.state && force) return this.forceNewCluster();
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
      this.core.writeCerts(ca.certPem, cert, await privateKeyToPem(keys.privateKey));
      this.core.writeEtcdCerts(ca.certPem, cert);
      const state: SwarmState = {
        nodeId,
        clusterId,
        role: 'manager',
        advertiseAddr: advertise.host,
        listenAddr: `${listen.host}:${listen.port}`,
        managers: [{ nodeId, addr: `${advertise.host}:${advertise.port}` }],
      };
      try {
        this.core.state = state;
        this.core.saveState();
        this.core.dek = newUnlockKey();
        this.keys.writeDek();
        await this.runner.startManager(async (m) => {
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
            Description: this.core.description(),
            Status: { State: 'ready', Addr: advertise.host },
            ManagerStatus: { Reachability: 'reachable', Addr: `${advertise.host}:${advertise.port}` },
          };
          await m.bootstrap(ca, cluster, node);
          if (spec.EncryptionConfig?.AutoLockManagers) await m.setUnlockKey(newUnlockKey());
          await m.store.commit([{ kind: 'networks', op: 'create', object: ingressNetwork() }]);
        });
        // As dockerd: when init answers, this node leads (node ls shows it Leader).
        const settled = Date.now() + 10_000;
        while (this.core.manager && !this.core.manager.election.isLeader && Date.now() < settled) await sleep(20);
        this.runner.startSession();
        // And its node object is settled: a client that lists then inspects it reads one Version
        // (docker-py's test_inspect_node), not one from before the allocator's and agent's first writes.
        while (this.core.manager && !nodeSettled(this.core.manager.store, nodeId) && Date.now() < settled)
          await sleep(20);
      } catch (e) {
        await this.runner.teardown();
        throw e;
      }
      return nodeId;
    });
  }

  private async forceNewCluster(): Promise<string> {
    if (this.core.state!.role !== 'manager') throw unavailable(ERR_NOT_MANAGER);
    this.core.session?.stop();
    this.core.session = undefined;
    await this.core.manager?.stop();
    this.core.manager = undefined;
    await this.runner.startManager(undefined, true);
    // Only this manager remains: forget the others' addresses.
    this.core.state!.managers = this.core.state!.managers.filter((m) => m.nodeId === this.core.state!.nodeId);
    this.core.saveState();
    this.runner.startSession();
    return this.core.state!.nodeId;
  }

  join(req: JoinRequest): Promise<void> {
    return this.core.exclusive(async () => {
      if (this.core.state) throw unavailable(ERR_SWARM_EXISTS);
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
      this.core.writeCerts(rootPem, issued.certificate, keyPem);
      if (issued.etcdCertificate && issued.etcdCA) this.core.writeEtcdCerts(issued.etcdCA, issued.etcdCertificate);
      this.core.state = {
        nodeId: issued.nodeId,
        clusterId: issued.clusterId,
        role: issued.role,
        advertiseAddr: advertiseHost,
        listenAddr: `${listen.host}:${listen.port}`,
        managers: [{ nodeId: '', addr: remote }],
      };
      this.core.saveState();
      try {
        if (issued.role === 'manager') {
          const joined = await membershipCall(this.core, remote, 'Join', { addr: advertiseHost });
          this.core.dek = joined.dek ? Buffer.from(joined.dek, 'base64') : undefined;
          this.keys.writeDek();
          await this.runner.startManager(undefined, false, joined.initialCluster);
          this.core.state.managers.unshift({ nodeId: issued.nodeId, addr: `${advertiseHost}:${listen.port}` });
          this.core.saveState();
        }
        this.runner.startSession();
      } catch (e) {
        await this.runner.teardown();
        throw e instanceof ApiError ? e : rpcError(e);
      }
    });
  }

  leave(force: boolean): Promise<void> {
    return this.core.exclusive(async () => {
      if (!this.core.state) throw unavailable(ERR_NO_SWARM);
      if (this.core.state.role === 'manager' && !force) {
        let msg = 'You are attempting to leave the swarm on a node that is participating as a manager. ';
        if (this.core.manager) {
          const managers = this.core.manager.store.list('nodes').filter((n) => n.Spec.Role === 'manager');
          const reachable = managers.filter((n) => this.core.manager!.isReachable(n.ID)).length;
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
      if (this.core.manager) {
        // Leave the etcd cluster first so the remaining members do not wait for us.
        const others = (await this.core.manager.memberCount().catch(() => 1)) > 1;
        if (others)
          await this.core.manager
            .removeMember(this.core.state.nodeId)
            .catch((err) => this.core.log.warn({ err }, 'etcd member remove failed'));
      }
      await this.runner.teardown();
    });
  }
}

/** One call of the managers' Membership service, on this node's certificate. */
export async function membershipCall<M extends UnaryMethodName<'Membership'>>(
  core: Pick<NodeCore, 'files'>,
  remote: string,
  method: M,
  req: RequestOf<'Membership', M>,
): Promise<ResponseOf<'Membership', M>> {
  const f = core.files;
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
