import type * as grpc from '@grpc/grpc-js';
import type { Network, NodeTunnel, Task } from '../cluster/types.js';
import type { NetworkViewMessage, RpcClient } from '../cluster/rpc.js';
import type { Logger } from '../util/log.js';
import { nftApply } from './network/kernel.js';
import type { NodeNetworkPlan } from './network/plan.js';
import {
  cannotEncryptMessage,
  encryptionGuardScript,
  encryptPlan,
  isEncrypted,
  type LocalTunnel,
} from './network/encryption.js';
import { detectMode, TUNNEL_PORT, tunnelAddress, WireGuardDevice } from './network/wireguard.js';
import { SerialQueue } from '../util/serial-queue.js';

/** How often a lost tunnel is made again (each attempt is logged). */
const RECREATE_MS = 5000;

/**
 * This node's side of encrypted overlays: brings its WireGuard tunnel up when an encrypted
 * network first needs it, reports the public key and the tunnel's state to the managers
 * (so `docker node inspect` shows a node that cannot encrypt), makes a new key when the
 * managers raise the key epoch, configures the peers they publish, and rewrites each network
 * plan so encrypted networks run inside the tunnel or not at all.
 */
export class OverlayEncryption {
  private device?: WireGuardDevice;
  private epoch = 0;
  private unavailable?: string;
  private down?: string;
  private lastAttempt = 0;
  private reported = '';
  /** The guard script last applied; starts as "none", so a node without encrypted networks never touches nftables for them. */
  private guard = encryptionGuardScript('', []);
  private readonly lock = new SerialQueue();
  private readonly refusedLogged = new Set<string>();

  constructor(
    readonly nodeId: string,
    private readonly log: Logger,
    /** The managers' dispatcher as the network view stream reaches it (undefined between sessions). */
    private readonly client: () => RpcClient<'Dispatcher'> | undefined,
    /** Asks for a network pass (the tunnel was lost: report it now, not at the next sweep). */
    private readonly kick: () => void = () => undefined,
  ) {}

  get ifname(): string {
    return `wg${this.nodeId.slice(0, 10)}`;
  }

  /** The plan with encrypted networks put in the tunnel (or left out while it cannot be). */
  apply(plan: NodeNetworkPlan, view: NetworkViewMessage): Promise<NodeNetworkPlan> {
    return this.serial(async () => {
      const wanted = plan.overlays.some((o) => view.networks.some((n) => n.ID === o.id && isEncrypted(n)));
      if (!wanted && !this.device) {
        await this.setGuard([]);
        return plan;
      }
      const local = await this.ready(plan.nodeAddr, view.overlayKeyEpoch ?? 0);
      const out = encryptPlan(plan, view.networks, view.nodes, this.nodeId, local);
      await this.setGuard(out.vnis);
      if (this.device && local.ready) await this.device.setPeers(out.peers);
      // Once per container and network: the plan is applied every few seconds.
      for (const r of out.refused) {
        const key = `${r.containerId}/${r.networkId}`;
        if (this.refusedLogged.has(key)) continue;
        this.refusedLogged.add(key);
        this.log.error({ container: r.containerId, network: r.networkId }, r.message);
      }
      await this.report(plan.nodeAddr);
      return out.plan;
    });
  }

  /**
   * The start hook's check: a task on an encrypted network starts only when this node can
   * encrypt; else it fails with a message that says why.
   */
  async admit(task: Task, networks: Network[], nodeAddr: string, epoch: number): Promise<void> {
    const enc = (task.NetworksAttachments ?? [])
      .map((a) => networks.find((n) => n.ID === a.Network.ID))
      .filter((n): n is Network => !!n && isEncrypted(n));
    if (!enc.length) return;
    const local = await this.serial(() => this.ready(nodeAddr, epoch));
    if (!local.ready) throw new Error(cannotEncryptMessage(enc[0].Spec.Name ?? enc[0].ID, local.reason));
  }

  /** Leaving the swarm: the tunnel and the guard go. */
  destroy(): Promise<void> {
    return this.serial(async () => {
      await this.device?.destroy();
      this.device = undefined;
      await this.setGuard([]);
      this.reported = '';
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run(fn);
  }

  /** Brings the tunnel up (again after a loss), rotates its key to the managers' epoch. */
  private async ready(nodeAddr: string, epoch: number): Promise<LocalTunnel> {
    if (this.unavailable) return { ready: false, reason: this.unavailable };
    if (!nodeAddr) return { ready: false, reason: 'the node has no underlay address yet' };
    if (this.device) {
      const fault = await this.device.fault();
      if (fault) {
        if (this.down !== fault)
          this.log.error(
            { ifname: this.ifname, reason: fault },
            'overlay tunnel down: encrypted networks stop until it is back (no cleartext fallback)',
          );
        this.down = fault;
        // Reported down first; a new tunnel (with a new key) comes on a later pass.
        this.lastAttempt = Date.now();
        await this.device.destroy();
        this.device = undefined;
      }
    }
    if (!this.device) {
      if (this.down && Date.now() - this.lastAttempt < RECREATE_MS)
        return { ready: false, reason: `tunnel down: ${this.down}`, address: tunnelAddress(nodeAddr) };
      this.lastAttempt = Date.now();
      const { mode, reason } = await detectMode(undefined, `wgp${this.nodeId.slice(0, 10)}`);
      if (!mode) {
        this.unavailable = reason!;
        this.log.error(
          { reason },
          'this node cannot encrypt overlay traffic: tasks on encrypted networks are refused here',
        );
        return { ready: false, reason: this.unavailable };
      }
      try {
        this.device = await WireGuardDevice.create({
          ifname: this.ifname,
          mode,
          underlay: nodeAddr,
          ns: undefined,
          log: this.log,
          onLost: this.kick,
        });
        this.epoch = epoch;
        if (this.down) this.log.info({ ifname: this.ifname }, 'overlay tunnel back up');
        else this.log.info({ ifname: this.ifname, mode, address: this.device.address }, 'overlay tunnel up');
        this.down = undefined;
      } catch (e) {
        this.down = (e as Error).message;
        this.log.error({ err: e }, 'overlay tunnel could not be made');
        return { ready: false, reason: `tunnel down: ${this.down}`, address: tunnelAddress(nodeAddr) };
      }
    }
    if (epoch > this.epoch) {
      await this.device.rotate();
      this.log.info({ epoch }, 'overlay tunnel key rotated');
      this.epoch = epoch;
    }
    return { ready: true, address: this.device.address };
  }

  private tunnel(): NodeTunnel {
    if (this.device && !this.down)
      return {
        PublicKey: this.device.publicKey,
        Address: this.device.address,
        Port: TUNNEL_PORT,
        Epoch: this.epoch,
        State: 'ready',
        Mode: this.device.mode,
      };
    if (this.unavailable)
      return {
        PublicKey: '',
        Address: '',
        Port: 0,
        Epoch: this.epoch,
        State: 'unavailable',
        Message: this.unavailable,
      };
    return {
      PublicKey: '',
      Address: '',
      Port: 0,
      Epoch: this.epoch,
      State: 'down',
      Message: this.down ?? 'tunnel not up',
    };
  }

  /** Tells the managers what changed; a failed report is sent again on the next pass. */
  private async report(_nodeAddr: string): Promise<void> {
    const tunnel = this.tunnel();
    const body = JSON.stringify(tunnel);
    const client = this.client();
    if (body === this.reported || !client) return;
    try {
      await client.call('ReportTunnel', { tunnel }, 5000);
      this.reported = body;
    } catch (err) {
      this.log.warn({ err }, 'tunnel report failed; retried on the next pass');
    }
  }

  private async setGuard(vnis: number[]): Promise<void> {
    const script = encryptionGuardScript(this.ifname, vnis);
    if (script === this.guard) return;
    await nftApply(undefined, script);
    this.guard = script;
  }
}
