import { exec, type NetnsPath } from './kernel.js';

/**
 * Connection tracking timeouts of the mesh. Every routing-mesh and VIP connection lives in
 * conntrack (its NAT, and the mark that routes the task's replies back through the ingress
 * node): when an idle connection's entry expires, the next packet finds no translation and
 * the connection is dead. Docker's IPVS mesh drops idle TCP connections after 900 s (IPVS's
 * own timeout); here an established TCP connection stays for 5 days idle, the kernel's default,
 * set explicitly in every namespace the mesh owns (ingress sandbox, task containers) and raised
 * to at least 1 day in the node's namespace (as kube-proxy does), never lowered there.
 * UDP flows keep the kernel's defaults (30 s, 120 s once both ways have been seen).
 */
export const TCP_ESTABLISHED_TIMEOUT_S = 432_000;
export const NODE_TCP_ESTABLISHED_MIN_S = 86_400;

const ESTABLISHED = 'net.netfilter.nf_conntrack_tcp_timeout_established';

/** The sysctls a namespace owned by the mesh gets (with others of the caller in the same call). */
export function ownedNamespaceSysctls(): Record<string, string> {
  return { [ESTABLISHED]: String(TCP_ESTABLISHED_TIMEOUT_S) };
}

/** The node's namespace is the operator's: its timeout is only raised to the floor. */
export async function raiseNodeConntrackTimeout(ns: NetnsPath): Promise<void> {
  const r = await exec(ns, 'sysctl', ['-n', ESTABLISHED], { allowFail: true });
  const now = Number(r.stdout.trim());
  if (r.code === 0 && Number.isFinite(now) && now < NODE_TCP_ESTABLISHED_MIN_S) {
    await exec(ns, 'sysctl', ['-qw', `${ESTABLISHED}=${NODE_TCP_ESTABLISHED_MIN_S}`], { allowFail: true });
  }
}
