/**
 * Every name the default bridge network puts into the kernel, in one place. The daemon runs in
 * its own network namespace in tests and in the lab, so the fixed names do not collide there.
 */
export const DEFAULT_BRIDGE = {
  /** The network's name in the API (`docker network ls`). */
  name: 'bridge',
  /** The Linux bridge device (Docker's docker0). */
  device: 'shoal0',
  subnet: '172.17.0.0/16',
  gateway: '172.17.0.1',
  mtu: 1500,
} as const;

/** The nftables table this daemon owns; parts of the daemon each own chains in it. */
export const NFT_TABLE = { family: 'ip', name: 'shoal' } as const;

/** The chain masquerading the bridge's traffic leaving through other interfaces. */
export const BRIDGE_NAT_CHAIN = 'bridge_masquerade';

/** The interface name a container sees. */
export const CONTAINER_IFNAME = 'eth0';

/** Host end of a container's veth: `veth` + 7 hex of the endpoint ID, as Docker names them. */
export function hostVethName(endpointId: string): string {
  return `veth${endpointId.slice(0, 7)}`;
}

/** Where the bridge keeps its IPAM and network IDs under `daemonPaths(cfg).network`. */
export const BRIDGE_STATE_FILE = 'bridge.json';

/** Per-node gateway bridge for egress, DNS and host-mode ports (Docker's docker_gwbridge). */
export const GW_BRIDGE = { device: 'shoal_gwbridge', subnet: '172.18.0.0/16', gateway: '172.18.0.1' } as const;
