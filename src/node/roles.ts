import fs from 'node:fs';
import path from 'node:path';
import { type Manager, QuorumLost } from '../manager/manager.js';
import type { NodeCore, NodeRunner } from './core.js';
import type { KeysAtRest } from './unlock.js';
import type { NodeCertificates } from './certificates.js';
import { membershipCall } from './membership.js';

/**
 * The role managers decide for this node (node update --role, node promote/demote), followed as
 * swarmkit's role manager does: a certificate for the new role, then joining or leaving etcd.
 */
export class NodeRoles {
  private roleChange?: Promise<void>;
  /** The role last decided; followed once a change under way ends. */
  private wantedRole?: 'manager' | 'worker';

  constructor(
    private readonly core: NodeCore,
    private readonly keys: Pick<KeysAtRest, 'writeDek' | 'applyUnlockKey'>,
    private readonly certs: Pick<NodeCertificates, 'requestCertificate' | 'installCertificate'>,
    private readonly runner: Pick<NodeRunner, 'startManager'>,
  ) {}

  /**
   * Follows the role managers decided for this node; retries every 5 s as SwarmKit's role manager.
   * A role decided while a change runs (a promote right after a demote: the session message
   * arrives while the demotion still waits for its certificate) is followed once that change ends.
   */
  reconcileRole(want: 'manager' | 'worker'): void {
    this.wantedRole = want;
    if (!this.core.state || (want === this.core.state.role && !this.core.state.roleChange)) return;
    if (this.roleChange) {
      this.core.log.info({ role: want }, 'role change requested while another runs; following it next');
      return;
    }
    this.roleChange = this.core
      .exclusive(() => this.changeRole(want))
      .then(
        () => 0,
        (err) => {
          this.core.log.warn({ err, role: want }, 'role change failed; retrying');
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
  private async changeRole(role: 'manager' | 'worker'): Promise<void> {
    const s = this.core.state;
    // Other managers' CAs: after a demotion this node's own manager is gone.
    const remotes = this.otherManagers();
    if (!s || (s.role === role && !s.roleChange)) return;
    if (!remotes.length) throw new Error('no other manager known for the role change');
    // A change cut short (a kill, a stop, a failed step) left the member in an unknown state.
    const interrupted = !!s.roleChange;
    s.roleChange = role;
    this.core.saveState();
    // Every step may be tried again (reconcileRole retries the whole change): each is idempotent.
    if (role === 'worker') {
      if (this.core.manager) {
        await this.core.manager.resign();
        try {
          await this.removeOwnMember(this.core.manager, s.nodeId, remotes);
        } catch (e) {
          this.core.manager.election.resume(); // still a manager until a retry succeeds
          throw e;
        }
        this.core.log.info('etcd member removed for the demotion');
        await this.core.manager.stop();
        this.core.manager = undefined;
        this.core.log.info('manager stopped for the demotion');
      } else {
        await this.leaveEtcd(s.nodeId, remotes);
      }
      fs.rmSync(path.join(this.core.dir, 'etcd'), { recursive: true, force: true });
      this.keys.applyUnlockKey(undefined); // workers are never locked
      this.core.dek = undefined;
      this.keys.writeDek();
    } else if (interrupted && !this.core.manager) {
      // A member from the cut-short change must go before joining again: a member whose data
      // is gone must never come back under its old identity.
      await this.leaveEtcd(s.nodeId, remotes);
    }
    const issued = await this.fromAnyManager(remotes, (r) => this.certs.requestCertificate(r));
    if (issued.renewed.role !== role)
      throw new Error(`CA issued a ${issued.renewed.role} certificate, expected ${role}`);
    this.certs.installCertificate(issued);
    if (role === 'manager' && !this.core.manager) {
      fs.rmSync(path.join(this.core.dir, 'etcd'), { recursive: true, force: true });
      const joined = await this.fromAnyManager(remotes, (r) =>
        membershipCall(this.core, r, 'Join', { addr: s.advertiseAddr, promotion: true }),
      );
      this.core.dek = joined.dek ? Buffer.from(joined.dek, 'base64') : undefined;
      this.keys.writeDek();
      await this.runner.startManager(undefined, false, joined.initialCluster);
    }
    s.role = role;
    delete s.roleChange;
    this.core.saveState();
    this.core.log.info({ role }, 'node role changed');
  }

  /** Takes this node's etcd member out through another manager (idempotent: gone is fine). */
  private async leaveEtcd(nodeId: string, remotes: string[]): Promise<void> {
    await this.fromAnyManager(remotes, (r) => membershipCall(this.core, r, 'Leave', { nodeId }));
    this.core.log.info('etcd member of a cut-short role change removed');
  }

  /** Other managers' addresses, the session's own first. */
  private otherManagers(): string[] {
    const s = this.core.state;
    if (!s) return [];
    const own = `${s.advertiseAddr}:${s.listenAddr.split(':').pop()}`;
    const all = [this.core.session?.current, ...s.managers.filter((m) => m.nodeId !== s.nodeId).map((m) => m.addr)];
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
        this.core.log.warn({ err, manager: r }, 'manager call failed; trying the next manager');
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
        this.core.log.warn({ err }, 'etcd member remove through the local member failed; asking another manager');
      }
    }
    await this.fromAnyManager(remotes, (r) => membershipCall(this.core, r, 'Leave', { nodeId }));
  }
}
