import { createHash } from 'node:crypto';

/**
 * Every name the overlay data path gives a kernel object. Sandbox namespaces live in the
 * kernel-wide /run/netns, so they carry the node's prefix; devices inside a sandbox or a
 * container's namespace can have fixed names.
 */

// The gateway bridge is the engine's too (containers' egress): its name lives with the engine's.
export { GW_BRIDGE } from '../../engine/network/names.js';

/** The sandbox's own interface on the gateway bridge in the ingress sandbox; gets gateway + 1. */
export const INGRESS_GW_IFNAME = 'gw0';
export const INGRESS_GW_HOST_VETH = 'vgingress';

/** Inside a network's sandbox namespace. */
export const SANDBOX_BRIDGE = 'br0';
export const SANDBOX_VXLAN = 'vxlan0';

/** VXLAN's IANA port, and the MTU left inside a 1500-byte underlay (50 bytes of encapsulation). */
export const VXLAN_PORT = 4789;
export const OVERLAY_MTU = 1450;

/** nftables tables this module owns, one per namespace kind. */
export const NFT_NODE_TABLE = 'shoal_overlay';
export const NFT_INGRESS_TABLE = 'shoal_ingress';
export const NFT_CONTAINER_TABLE = 'shoal_lb';

const short = (s: string, n: number) => createHash('sha256').update(s).digest('hex').slice(0, n);

/** The sandbox namespace of one overlay network on one node. */
export function sandboxName(prefix: string, networkId: string): string {
  return `${prefix}-${networkId.slice(0, 12)}`;
}

/** The VXLAN device's name in the node namespace for the instant between creation and the move. */
export function transientVxlanName(vni: number): string {
  return `vx${vni}`;
}

/** Sandbox end of a container's veth on one network. */
export function sandboxVethName(containerId: string): string {
  return `ve${short(containerId, 10)}`;
}

/** Node end of a container's veth on the gateway bridge. */
export function gwVethName(containerId: string): string {
  return `vg${short(containerId, 10)}`;
}
