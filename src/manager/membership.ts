import * as grpc from '@grpc/grpc-js';
import type { Etcd3, Lease, Watcher } from 'etcd3';
import type { Logger } from '../util/log.js';
import type { Empty, JoinRequest, JoinResponse, LeaveRequest, RpcHandlers } from '../cluster/rpc.js';
import type { PeerIdentities } from './peer-identity.js';
import type { EtcdStore } from './store/etcd-store.js';
import { peerUrl } from './store/etcd-member.js';
import { QuorumLost, retryReconfig } from './store/etcd-reconfig.js';

const PRESENCE_PREFIX = '/shoal/managers/';
/** How long a quorum probe (a linearizable read, tried again on quick refusals) may take. */
const QUORUM_PROBE_MS = 2000;

export interface MembershipOptions {
  nodeId: string;
  clusterId: string;
  advertiseAddr: string;
  client: Etcd3;
  store: EtcdStore;
  identities: PeerIdentities;
  log: Logger;
  /** The swarm's data-encryption key now (a joining manager gets it). */
  dek: () => Buffer | undefined;
}

/**
 * The managers as etcd members: who is reachable (a presence key each, on a lease), whether etcd
 * still has quorum, and the Membership RPCs that add and remove members (swarmkit's raft membership).
 */
export class ManagerMembership {
  private presence?: Lease;
  private presenceWatch?: Watcher;
  private readonly reachable = new Set<string>();
  private quorumTimer?: NodeJS.Timeout;
  private probing = false;
  private stopping = false;
  /** False once etcd stopped answering linearizable reads. */
  hasQuorum = true;

  constructor(private readonly o: MembershipOptions) {}

  /** Announces this manager and follows the others' presence; probes quorum every second. */
  async start(): Promise<void> {
    const { client } = this.o;
    this.presence = client.lease(5);
    await this.presence.put(PRESENCE_PREFIX + this.o.nodeId).value(this.o.advertiseAddr);
    this.presenceWatch = await client.watch().prefix(PRESENCE_PREFIX).create();
    this.presenceWatch.on('put', (kv) => this.reachable.add(kv.key.toString().slice(PRESENCE_PREFIX.length)));
    this.presenceWatch.on('delete', (kv) => this.reachable.delete(kv.key.toString().slice(PRESENCE_PREFIX.length)));
    for (const k of await client.getAll().prefix(PRESENCE_PREFIX).keys())
      this.reachable.add(k.slice(PRESENCE_PREFIX.length));
    this.presence.on('lost', () => this.renewPresenceLater(0));
    this.quorumTimer = setInterval(() => this.checkQuorumLogged(), 1000);
  }

  isReachable(nodeId: string): boolean {
    return this.reachable.has(nodeId);
  }

  private renewPresenceLater(ms: number): void {
    const renew = () =>
      void this.renewPresence().catch((err: unknown) => this.o.log.warn({ err }, 'manager presence not renewed'));
    if (ms) setTimeout(renew, ms);
    else renew();
  }

  private async renewPresence(): Promise<void> {
    if (this.stopping) return; // a stopped manager's presence ends with it
    try {
      this.presence = this.o.client.lease(5);
      await this.presence.put(PRESENCE_PREFIX + this.o.nodeId).value(this.o.advertiseAddr);
      this.presence.on('lost', () => this.renewPresenceLater(1000));
    } catch {
      this.renewPresenceLater(1000);
    }
  }

  private checkQuorumLogged(): void {
    this.checkQuorum().catch((err: unknown) => this.o.log.warn({ err }, 'quorum probe failed'));
  }

  private async checkQuorum(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    // A read refused at once ("leader changed" right after an etcd election) is tried again
    // within the probe's 2 s: one such answer used to refuse every write for a second.
    const deadline = Date.now() + QUORUM_PROBE_MS;
    let ok = false;
    while (!ok && Date.now() < deadline && !this.stopping) {
      const left = deadline - Date.now();
      ok = await Promise.race([
        this.o.client
          .get('/shoal/quorum-probe')
          .string()
          .then(
            () => true,
            () => false,
          ),
        new Promise<boolean>((r) => setTimeout(() => r(false), left).unref()),
      ]);
      if (!ok) await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, deadline - Date.now()))).unref());
    }
    if (ok !== this.hasQuorum) this.o.log.warn({ quorum: ok }, 'quorum changed');
    this.hasQuorum = ok;
    // Without quorum, look again soon: writes are refused until a probe succeeds.
    if (!ok && !this.stopping) setTimeout(() => this.checkQuorumLogged(), 200).unref();
    this.probing = false;
  }

  /** Only a manager of this swarm may change its members; undefined when the caller is one. */
  private managerOnly(
    call: grpc.ServerUnaryCall<unknown, unknown>,
  ): { code: grpc.status; details: string } | undefined {
    const id = this.o.identities.identify(call);
    if (!id) return { code: grpc.status.UNAUTHENTICATED, details: 'no valid swarm certificate' };
    if (id.role !== 'manager')
      return {
        code: grpc.status.PERMISSION_DENIED,
        details: `Permission denied: unauthorized peer role: rpc error: code = PermissionDenied desc = Permission denied: remote certificate not part of organization: swarm-manager`,
      };
    if (!this.o.store.get('nodes', id.nodeId))
      return { code: grpc.status.PERMISSION_DENIED, details: `node ${id.nodeId} is not a member of this swarm` };
    return undefined;
  }

  handlers(): RpcHandlers<'Membership'> {
    return {
      Join: async (call: grpc.ServerUnaryCall<JoinRequest, JoinResponse>, cb: grpc.sendUnaryData<JoinResponse>) => {
        const denied = this.managerOnly(call);
        if (denied) return cb(denied);
        try {
          const id = this.o.identities.identify(call)!;
          const initialCluster = await this.addMember(id.nodeId, call.request.addr);
          cb(null, { initialCluster, clusterToken: this.o.clusterId, dek: this.o.dek()?.toString('base64') });
        } catch (e) {
          // A new node gives up its join: do not leave its node object behind. A promoted node
          // stays a member of the swarm and asks again.
          if (!call.request.promotion)
            await this.o.store
              .commit([{ kind: 'nodes', op: 'delete', id: this.o.identities.identify(call)!.nodeId }])
              .catch(() => undefined);
          cb({ code: grpc.status.UNAVAILABLE, details: (e as Error).message });
        }
      },
      Leave: async (call: grpc.ServerUnaryCall<LeaveRequest, Empty>, cb: grpc.sendUnaryData<Empty>) => {
        // A node may always take out its own member: one demoted while its daemon was down
        // already holds a worker certificate when it finishes the demotion.
        const self =
          this.o.identities.identify(call)?.nodeId === call.request.nodeId &&
          this.o.store.get('nodes', call.request.nodeId);
        const denied = self ? undefined : this.managerOnly(call);
        if (denied) return cb(denied);
        try {
          await this.removeMember(call.request.nodeId);
          cb(null, {});
        } catch (e) {
          cb({ code: grpc.status.FAILED_PRECONDITION, details: (e as Error).message });
        }
      },
    };
  }

  /**
   * etcd member add; returns the initial-cluster string for the new member. Idempotent (a member
   * with this peer URL is reused), so a joiner may ask again after an answer it did not get.
   */
  async addMember(nodeId: string, addr: string): Promise<string> {
    const url = peerUrl(addr);
    const members = await retryReconfig('member add', async (opts) => {
      const list = (await this.o.client.cluster.memberList({}, opts)).members;
      if (list.some((m) => m.peerURLs.includes(url))) return list;
      return (await this.o.client.cluster.memberAdd({ peerURLs: [url] }, opts)).members;
    });
    return members.map((m) => `${m.name || (m.peerURLs.includes(url) ? nodeId : m.ID)}=${m.peerURLs[0]}`).join(',');
  }

  /** etcd member remove, refused when the remaining reachable members would lose quorum. Idempotent. */
  async removeMember(nodeId: string): Promise<void> {
    await retryReconfig('member remove', async (opts) => {
      const { members } = await this.o.client.cluster.memberList({}, opts);
      const m = members.find((x) => x.name === nodeId);
      if (!m) return;
      const remaining = members.length - 1;
      const reachableAfter = members.filter((x) => x.name !== nodeId && this.reachable.has(x.name)).length;
      if (remaining > 0 && reachableAfter < Math.floor(remaining / 2) + 1)
        throw new QuorumLost("can't remove member: not enough reachable managers would remain for a quorum");
      await this.o.client.cluster.memberRemove({ ID: m.ID }, opts);
    });
  }

  async memberCount(): Promise<number> {
    return (await this.o.client.cluster.memberList({})).members.length;
  }

  /** Stops probing and renewing; revokePresence() and cancelWatch() end the rest (the caller bounds them). */
  stop(): void {
    this.stopping = true;
    clearInterval(this.quorumTimer);
  }

  revokePresence(): Promise<unknown> | undefined {
    return this.presence?.revoke();
  }

  cancelWatch(): Promise<unknown> | undefined {
    return this.presenceWatch?.cancel();
  }
}
