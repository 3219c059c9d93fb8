import type { Network, Node, NodeTunnel } from '../../cluster/types.js';
import type { NodeNetworkPlan } from './plan.js';
import { ENCRYPTED_OVERLAY_MTU, TUNNEL_PORT, type TunnelPeer } from './wireguard.js';
import { VXLAN_PORT } from './names.js';

/**
 * Encrypted overlays (`docker network create -d overlay --opt encrypted`) on top of the plain
 * data path: the VXLAN device of an encrypted network sends from this node's tunnel address
 * to its peers' tunnel addresses, so every one of its packets goes through WireGuard, and an
 * nftables guard drops its VNIs on any other interface. Nothing of an encrypted network is
 * programmed while this node's tunnel is not ready, and no peer is programmed before its key
 * is known: no fallback to cleartext.
 */

/** Docker's overlay driver option: present (any value) means encrypted. */
export const ENCRYPTED_OPTION = 'encrypted';

export function isEncrypted(n: Pick<Network, 'Spec'>): boolean {
  return Object.prototype.hasOwnProperty.call(n.Spec.DriverConfiguration?.Options ?? {}, ENCRYPTED_OPTION);
}

/**
 * This node's tunnel as the transform sees it: ready with an address, or why not. A tunnel
 * that is down for a while keeps its address: sandboxes and endpoints stay, only the peers go.
 */
export type LocalTunnel = { ready: true; address: string } | { ready: false; reason: string; address?: string };

export interface EncryptedPlan {
  plan: NodeNetworkPlan;
  /** The tunnel's peers: every other node with a ready key that an encrypted network here exchanges traffic with. */
  peers: TunnelPeer[];
  /** VNIs whose VXLAN may only cross the tunnel. */
  vnis: number[];
  /** Endpoints left out because this node cannot encrypt: containerId → message. */
  refused: { containerId: string; networkId: string; message: string }[];
}

/** The message a task on an encrypted network fails with when this node cannot encrypt. */
export function cannotEncryptMessage(network: string, reason: string): string {
  return `network ${network} is encrypted (--opt encrypted) and this node cannot encrypt its traffic: ${reason}; refusing to send it in cleartext`;
}

/**
 * Rewrites a plain plan for the encrypted networks in it. `nodes` gives every node's reported
 * tunnel; a peer is known by its underlay address (RemotePeerPlan.nodeAddr).
 */
export function encryptPlan(
  plan: NodeNetworkPlan,
  networks: Network[],
  nodes: Node[],
  selfId: string,
  local: LocalTunnel,
): EncryptedPlan {
  const encrypted = new Set(networks.filter(isEncrypted).map((n) => n.ID));
  const mine = plan.overlays.filter((o) => encrypted.has(o.id));
  if (!mine.length) return { plan, peers: [], vnis: [], refused: [] };
  const ids = new Set(mine.map((o) => o.id));
  if (!local.ready && local.address) {
    return {
      plan: {
        ...plan,
        overlays: plan.overlays.map((o) =>
          ids.has(o.id) ? { ...o, mtu: ENCRYPTED_OVERLAY_MTU, vxlanLocal: local.address } : o,
        ),
        peers: plan.peers.filter((p) => !ids.has(p.networkId)),
      },
      peers: [],
      vnis: mine.map((o) => o.vni),
      refused: [],
    };
  }
  if (!local.ready) {
    const names = new Map(mine.map((o) => [o.id, o.name]));
    return {
      plan: {
        ...plan,
        overlays: plan.overlays.filter((o) => !ids.has(o.id)),
        endpoints: plan.endpoints.filter((e) => !ids.has(e.networkId)),
        peers: plan.peers.filter((p) => !ids.has(p.networkId)),
      },
      peers: [],
      vnis: mine.map((o) => o.vni),
      refused: plan.endpoints
        .filter((e) => ids.has(e.networkId))
        .map((e) => ({
          containerId: e.containerId,
          networkId: e.networkId,
          message: cannotEncryptMessage(names.get(e.networkId)!, local.reason),
        })),
    };
  }
  const byAddr = new Map<string, { node: Node; tunnel: NodeTunnel }>();
  for (const n of nodes) {
    if (n.ID === selfId || !n.Status.Addr || n.Tunnel?.State !== 'ready' || !n.Tunnel.PublicKey || !n.Tunnel.Address)
      continue;
    byAddr.set(n.Status.Addr, { node: n, tunnel: n.Tunnel });
  }
  const tunnelPeers = new Map<string, TunnelPeer>();
  const peers = plan.peers.flatMap((p) => {
    if (!ids.has(p.networkId)) return [p];
    const t = byAddr.get(p.nodeAddr);
    // A peer without a key yet gets nothing: its addresses stay unreachable until it has one.
    if (!t) return [];
    tunnelPeers.set(t.tunnel.PublicKey, {
      publicKey: t.tunnel.PublicKey,
      endpoint: `${p.nodeAddr}:${t.tunnel.Port || TUNNEL_PORT}`,
      address: t.tunnel.Address,
    });
    return [{ ...p, nodeAddr: t.tunnel.Address }];
  });
  return {
    plan: {
      ...plan,
      overlays: plan.overlays.map((o) =>
        ids.has(o.id) ? { ...o, mtu: ENCRYPTED_OVERLAY_MTU, vxlanLocal: local.address } : o,
      ),
      peers,
    },
    peers: [...tunnelPeers.values()],
    vnis: mine.map((o) => o.vni),
    refused: [],
  };
}

/** The nftables table in the node's namespace that keeps encrypted VNIs inside the tunnel. */
export const NFT_ENCRYPTION_TABLE = 'shoal_encrypted';

/**
 * Drops VXLAN packets of encrypted networks that would leave, or that arrive, on any interface
 * but the tunnel: a cleartext packet never goes out, and a forged one (from a removed node,
 * or anyone on the underlay) never gets in. The VNI sits at bytes 4-6 of the VXLAN header,
 * after UDP's 8 bytes: bits 96-119 of the transport header.
 */
export function encryptionGuardScript(tunnelIf: string, vnis: number[]): string {
  const lines = [`table inet ${NFT_ENCRYPTION_TABLE} {}`, `delete table inet ${NFT_ENCRYPTION_TABLE}`];
  if (!vnis.length) return lines.join('\n') + '\n';
  const set = `{ ${[...new Set(vnis)].sort((a, b) => a - b).join(', ')} }`;
  lines.push(
    `table inet ${NFT_ENCRYPTION_TABLE} {`,
    `  chain out { type filter hook output priority -10; policy accept; oifname != "${tunnelIf}" udp dport ${VXLAN_PORT} @th,96,24 ${set} drop; }`,
    `  chain in { type filter hook input priority -10; policy accept; iifname != "${tunnelIf}" udp dport ${VXLAN_PORT} @th,96,24 ${set} drop; }`,
    '}',
  );
  return lines.join('\n') + '\n';
}
