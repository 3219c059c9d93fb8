import type { PoolState } from './ipam.js';
import type { Pool6State } from './ipam6.js';

/** The option naming a bridge's Linux device, as in Docker. */
export const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';
/** Docker's embedded resolver address, as containers' resolv.conf names it. */
export const EMBEDDED_DNS = '127.0.0.11';

/** One container's endpoint on a user-defined bridge. */
export interface UserEndpoint {
  containerId: string;
  endpointId: string;
  ip: string;
  mac: string;
  hostVeth: string;
  /** The interface inside the container (eth0, eth1, …). */
  ifname: string;
  aliases: string[];
  /** Given with `--ip`. */
  staticIp: boolean;
  /** The IPv6 address on an `--ipv6` network. */
  ip6?: string;
  /** Given with `--ip6`. */
  staticIp6?: boolean;
  /** `--link container:alias` on this network: the alias resolves for this container only. */
  links?: string[];
}

/** A user-defined bridge network as remembered across daemon restarts. */
export interface UserNetwork {
  id: string;
  name: string;
  created: string;
  device: string;
  subnet: string;
  gateway: string;
  /** `--ip-range`: where dynamic addresses come from. */
  ipRange?: string;
  /** The subnet was the user's (`--subnet`): only then is `--ip` allowed, as in Docker. */
  userSubnet: boolean;
  /** `--aux-address`: names for addresses kept out of the pool. */
  auxAddresses?: Record<string, string>;
  /** `--ipam-opt`; absent when none were given (inspect shows null then, as Docker). */
  ipamOptions?: Record<string, string>;
  internal: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  pool: PoolState;
  endpoints: Record<string, UserEndpoint>;
  /** `--ipv6`: every endpoint gets an address of the IPv6 subnet too. */
  enableIPv6?: boolean;
  /** The IPv6 subnet (`--subnet fd00::/64`); given without `--ipv6` it is only shown, as in dockerd. */
  v6?: IPv6Config;
  /** This node's network of a node-local swarm network: its ID is the swarm network's, the agent owns it. */
  swarmScope?: boolean;
}

/** The IPv6 side of a bridge network. */
export interface IPv6Config {
  subnet: string;
  /** The bridge's IPv6 address. */
  gateway: string;
  /** As given (inspect's IPAM shows the request): maybe none. */
  requested: { Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> };
  pool: Pool6State;
}

export interface UserBridgesState {
  networks: Record<string, UserNetwork>;
}

/** What `POST /networks/create` carries for a bridge (swagger NetworkCreateRequest). */
export interface BridgeCreateRequest {
  Name: string;
  Internal?: boolean;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  IPAM?: {
    Driver?: string;
    Config?:
      | { Subnet?: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> | null }[]
      | null;
    Options?: Record<string, string> | null;
  } | null;
  EnableIPv6?: boolean;
}

export interface ConnectOptions {
  ip?: string;
  /** `--ip6`. */
  ip6?: string;
  aliases?: string[];
  /** Asked for (`network connect --mac-address`); else derived from the address, as Docker does. */
  mac?: string;
  /** `container:alias` (or `container`), resolvable by this container alone. */
  links?: string[];
}
