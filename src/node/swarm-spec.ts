import type { ClusterSpec } from '../cluster/types.js';
import { defaultClusterSpec, mergeClusterSpec } from '../manager/control/cluster-spec.js';
import type { ManagerAddr } from '../cluster/rpc.js';

/** Docker's messages for a node that cannot answer manager calls. */
export const ERR_NO_SWARM_MANAGER =
  'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
export const ERR_NOT_MANAGER =
  "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
export const ERR_SWARM_EXISTS =
  'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.';
export const ERR_NO_SWARM = 'This node is not part of a swarm';
export const ERR_NO_LEADER =
  "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.";

/** What this node remembers about its swarm membership (<data-root>/swarm/state.json). */
export interface SwarmState {
  nodeId: string;
  clusterId: string;
  role: 'manager' | 'worker';
  advertiseAddr: string;
  listenAddr: string;
  managers: ManagerAddr[];
  /**
   * A role change began toward this role and has not ended: the etcd member and its data may be
   * in any state (a demotion's member removed, a promotion's member added but not started). Kept
   * on disk so that a daemon killed midway finishes the change instead of starting a removed member.
   */
  roleChange?: 'manager' | 'worker';
}

export interface InitRequest {
  ListenAddr?: string;
  AdvertiseAddr?: string;
  DataPathAddr?: string;
  DataPathPort?: number;
  DefaultAddrPool?: string[];
  SubnetSize?: number;
  ForceNewCluster?: boolean;
  Spec?: ClusterSpec;
}

export interface JoinRequest {
  ListenAddr?: string;
  AdvertiseAddr?: string;
  RemoteAddrs?: string[];
  JoinToken?: string;
  DataPathAddr?: string;
}

/** Nanoseconds per second: Docker's durations are in ns. */
export const NS = 1e9;
// The cluster spec's defaults and merge rules are the control API's (swarm init uses them too).
export { defaultClusterSpec, mergeClusterSpec };
