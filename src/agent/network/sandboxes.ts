import fs from 'node:fs';
import { formatIp, macFromIp, parseIp, parseSubnet } from '../../net/ipv4.js';
import type { LocalEndpointPlan, NodeNetworkPlan, OverlayNetworkPlan } from './plan.js';
import { epKey, push, type Peer } from './desired.js';
import {
  GW_BRIDGE,
  INGRESS_GW_HOST_VETH,
  INGRESS_GW_IFNAME,
  OVERLAY_MTU,
  SANDBOX_BRIDGE,
  SANDBOX_VXLAN,
  VXLAN_PORT,
  gwVethName,
  sandboxName,
  sandboxVethName,
  transientVxlanName,
} from './names.js';
import {
  bridgeJson,
  exec,
  ipJson,
  sysctl,
  sysctls,
  type FdbEntry,
  type LinkInfo,
  type NeighEntry,
  type NetnsPath,
} from './kernel.js';
import { ownedNamespaceSysctls } from './conntrack.js';
import type { Endpoint, GwAttachment, ProgrammedState } from './programmed.js';

// Sandboxes (one namespace per overlay network) and the containers' veths into them.

export const NETNS_DIR = '/run/netns';
export const gwPrefixLen = parseSubnet(GW_BRIDGE.subnet).prefixLen;
/** The node's address in the ingress sandbox, on the gateway bridge. */
export const INGRESS_GW_IP = formatIp(parseIp(GW_BRIDGE.gateway) + 1);

/** Reads the sandboxes a previous run left (daemon restart); half-made ones go. */
export async function observeSandboxes(st: ProgrammedState): Promise<void> {
  const prefix = `${st.sandboxPrefix}-`;
  const names = fs.existsSync(NETNS_DIR) ? fs.readdirSync(NETNS_DIR).filter((n) => n.startsWith(prefix)) : [];
  for (const name of names) {
    const path = `${NETNS_DIR}/${name}`;
    const [vx] = await ipJson<LinkInfo>(path, ['-details', 'link', 'show', 'dev', SANDBOX_VXLAN]);
    const vni = vx?.linkinfo?.info_data?.id;
    const [br] = await ipJson<LinkInfo>(path, ['addr', 'show', 'dev', SANDBOX_BRIDGE]);
    if (vni === undefined || !br) {
      // Half-made by a crash: nothing running can depend on it.
      await removeSandbox(st, name);
      continue;
    }
    const neigh = await ipJson<NeighEntry>(path, ['neigh', 'show', 'dev', SANDBOX_VXLAN]);
    const fdb = await bridgeJson<FdbEntry>(path, ['fdb', 'show', 'dev', SANDBOX_VXLAN]);
    const dstOf = new Map(fdb.filter((f) => f.dst).map((f) => [f.mac.toLowerCase(), f.dst!]));
    const peers = new Map<string, Peer>();
    for (const n of neigh) {
      const mac = n.lladdr?.toLowerCase();
      const nodeAddr = mac && dstOf.get(mac);
      if (mac && nodeAddr) peers.set(n.dst, { mac, nodeAddr });
    }
    const inet = (br.addr_info ?? []).find((a) => a.family === 'inet');
    const veths = await ipJson<LinkInfo>(path, ['link', 'show', 'master', SANDBOX_BRIDGE]);
    st.sandboxes.set(name, {
      name,
      path,
      vni,
      subnet: '',
      lbIp: inet?.local,
      peers,
      unclaimed: new Set(veths.map((l) => l.ifname).filter((n) => n.startsWith('ve'))),
    });
  }
  st.log.info(
    { sandboxes: st.sandboxes.size, gatewayVeths: st.unclaimedGw.size },
    'overlay state read from the kernel',
  );
}

/** An overlay network's sandbox: namespace, bridge, VXLAN device (and, for ingress, the routing mesh's endpoint). */
export async function createSandbox(
  st: ProgrammedState,
  name: string,
  net: OverlayNetworkPlan,
  ingress: NodeNetworkPlan | undefined,
  nodeAddr: string,
): Promise<void> {
  const path = `${NETNS_DIR}/${name}`;
  const vx = transientVxlanName(net.vni);
  await exec(undefined, 'ip', ['netns', 'add', name]);
  st.sandboxes.set(name, { name, path, vni: net.vni, subnet: net.subnet, peers: new Map(), unclaimed: new Set() });
  // The VXLAN device is made in the node namespace, so its UDP socket listens on the underlay, then moved in.
  await st.ip(st.node, [
    `link add ${vx} mtu ${net.mtu ?? OVERLAY_MTU} type vxlan id ${net.vni} dstport ${VXLAN_PORT} nolearning proxy local ${net.vxlanLocal ?? nodeAddr}`,
    `link set ${vx} netns ${name}`,
  ]);
  const lines = [
    'link set lo up',
    `link add ${SANDBOX_BRIDGE} mtu ${net.mtu ?? OVERLAY_MTU} type bridge`,
    `link set ${vx} name ${SANDBOX_VXLAN}`,
    `link set ${SANDBOX_VXLAN} master ${SANDBOX_BRIDGE}`,
    `link set ${SANDBOX_VXLAN} up`,
  ];
  if (ingress?.ingressEndpoint) {
    const lb = ingress.ingressEndpoint;
    lines.push(
      `link set ${SANDBOX_BRIDGE} address ${lb.mac ?? macFromIp(lb.ip)}`,
      `addr add ${lb.ip}/${parseSubnet(net.subnet).prefixLen} dev ${SANDBOX_BRIDGE}`,
      `link add ${INGRESS_GW_IFNAME} type veth peer name ${INGRESS_GW_HOST_VETH} netns ${nsRef(st.node)}`,
      `addr add ${INGRESS_GW_IP}/${gwPrefixLen} dev ${INGRESS_GW_IFNAME}`,
      `link set ${INGRESS_GW_IFNAME} up`,
    );
  }
  lines.push(`link set ${SANDBOX_BRIDGE} up`);
  if (ingress?.ingressEndpoint) lines.push(`route add default via ${GW_BRIDGE.gateway} dev ${INGRESS_GW_IFNAME}`);
  await st.ip(path, lines);
  // Bridged frames skip netfilter here: the sandbox is plain L2 (the ingress balancer routes, so it still sees its traffic).
  await sysctl(path, 'net.bridge.bridge-nf-call-iptables', '0');
  if (ingress?.ingressEndpoint) {
    st.sandboxes.get(name)!.lbIp = ingress.ingressEndpoint.ip;
    await sysctls(path, { 'net.ipv4.ip_forward': '1', ...ownedNamespaceSysctls() });
    await st.ip(st.node, [
      `link set ${INGRESS_GW_HOST_VETH} master ${GW_BRIDGE.device}`,
      `link set ${INGRESS_GW_HOST_VETH} up`,
    ]);
  }
  st.log.debug({ network: net.name, vni: net.vni, sandbox: name }, 'overlay sandbox created');
}

export async function removeSandbox(st: ProgrammedState, name: string): Promise<void> {
  const path = `${NETNS_DIR}/${name}`;
  // Devices go first: a namespace is freed lazily, and its VNI must be free for a re-create right away.
  await exec(path, 'ip', ['link', 'delete', SANDBOX_VXLAN], { allowFail: true });
  if (st.sandboxes.get(name)?.lbIp)
    await exec(st.node, 'ip', ['link', 'delete', INGRESS_GW_HOST_VETH], { allowFail: true });
  await exec(undefined, 'ip', ['netns', 'delete', name], { allowFail: true });
  st.sandboxes.delete(name);
  for (const [k, ep] of st.endpoints) if (ep.sandbox === name) st.endpoints.delete(k);
  st.nftApplied.delete(`s:${name}`);
}

/** One container's veths into its sandboxes and its gateway-bridge attachment, adopting a previous run's. */
export async function attachContainer(
  st: ProgrammedState,
  containerId: string,
  eps: LocalEndpointPlan[],
  overlays: Map<string, OverlayNetworkPlan>,
): Promise<void> {
  const ns = eps[0].netnsPath;
  const todo = eps.filter((e) => !st.endpoints.has(epKey(containerId, e.networkId)));
  if (!todo.length && st.gws.has(containerId)) return;
  const links = await ipJson<LinkInfo>(ns, ['addr', 'show']);
  if (!links.length) throw new Error(`container network namespace ${ns} is gone`);
  const used = new Set(links.map((l) => l.ifname));
  const freeIf = () => {
    for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
  };
  const lines: string[] = ['link set lo up'];
  const sandboxLines = new Map<string, string[]>();
  const made: Endpoint[] = [];
  for (const e of todo) {
    const net = overlays.get(e.networkId)!;
    const sbName = sandboxName(st.sandboxPrefix, net.id);
    const sb = st.sandboxes.get(sbName);
    if (!sb) throw new Error(`sandbox of network ${net.name} missing`);
    const veth = sandboxVethName(containerId);
    const mac = (e.mac ?? macFromIp(e.ip)).toLowerCase();
    const ep: Endpoint = {
      containerId,
      networkId: net.id,
      sandbox: sbName,
      netnsPath: ns,
      ip: e.ip,
      mac,
      ifname: e.ifname ?? '',
      veth,
    };
    // A previous run's veth: keep it if the container side is what the plan says.
    const have = links.find(
      (l) => l.address?.toLowerCase() === mac && (l.addr_info ?? []).some((a) => a.local === e.ip),
    );
    if (sb.unclaimed.has(veth) && have) {
      sb.unclaimed.delete(veth);
      st.endpoints.set(epKey(containerId, net.id), { ...ep, ifname: have.ifname });
      continue;
    }
    if (sb.unclaimed.delete(veth)) await st.ip(sb.path, [`link delete ${veth}`]);
    ep.ifname = e.ifname && !used.has(e.ifname) ? e.ifname : freeIf();
    used.add(ep.ifname);
    lines.push(
      `link add ${ep.ifname} mtu ${net.mtu ?? OVERLAY_MTU} address ${mac} type veth peer name ${veth} netns ${sbName}`,
      `addr add ${e.ip}/${parseSubnet(net.subnet).prefixLen} dev ${ep.ifname}`,
      `link set ${ep.ifname} up`,
    );
    push(sandboxLines, sb.path, `link set ${veth} master ${SANDBOX_BRIDGE}`, `link set ${veth} up`);
    made.push(ep);
  }
  const nodeLines: string[] = [];
  const gw = await gatewayAttachment(
    st,
    containerId,
    ns,
    links,
    () => {
      const f = freeIf();
      used.add(f);
      return f;
    },
    lines,
    nodeLines,
  );
  try {
    if (lines.length > 1) await st.ip(ns, lines);
    for (const [path, l] of sandboxLines) await st.ip(path, l);
    await st.ip(st.node, nodeLines);
  } catch (e) {
    // Undo this container's half: its veths (deleting one end removes both).
    for (const ep of made) await exec(ns, 'ip', ['link', 'delete', ep.ifname], { allowFail: true });
    if (nodeLines.length) await exec(st.node, 'ip', ['link', 'delete', gw.hostVeth], { allowFail: true });
    st.gws.delete(containerId);
    throw e;
  }
  for (const ep of made) st.endpoints.set(epKey(containerId, ep.networkId), ep);
  if (made.length) {
    // Routing-mesh requests arrive with the client's address on an interface that is not the
    // route back to it (the reply goes by mark): strict reverse-path filtering would drop them.
    await sysctls(ns, {
      'net.ipv4.conf.all.rp_filter': '0',
      ...Object.fromEntries(made.map((ep) => [`net.ipv4.conf.${ep.ifname}.rp_filter`, '0'])),
      ...ownedNamespaceSysctls(),
    });
  }
}

/**
 * The container's leg on the gateway bridge (its way out of an overlay): a previous run's is adopted,
 * else the commands that make one are added to `lines` (in the container) and `nodeLines` (on the node).
 */
async function gatewayAttachment(
  st: ProgrammedState,
  containerId: string,
  ns: string,
  links: LinkInfo[],
  freeIf: () => string,
  lines: string[],
  nodeLines: string[],
): Promise<GwAttachment> {
  const existing = st.gws.get(containerId);
  if (existing) return existing;
  const hostVeth = gwVethName(containerId);
  const have = links.find((l) => (l.addr_info ?? []).some((a) => a.family === 'inet' && inGwSubnet(a.local)));
  let gw: GwAttachment;
  if (st.unclaimedGw.delete(hostVeth) && have) {
    gw = {
      containerId,
      netnsPath: ns,
      ip: have.addr_info!.find((a) => inGwSubnet(a.local))!.local,
      ifname: have.ifname,
      hostVeth,
    };
  } else {
    const ifname = freeIf();
    gw = { containerId, netnsPath: ns, ip: allocateGwIp(st), ifname, hostVeth };
    lines.push(
      `link add ${ifname} type veth peer name ${hostVeth} netns ${nsRef(st.node)}`,
      `addr add ${gw.ip}/${gwPrefixLen} dev ${ifname}`,
      `link set ${ifname} up`,
    );
    // A container on the default bridge that joins an overlay (`docker network connect`) keeps
    // its bridge route out: it must still have one when it leaves the overlay again.
    if (!(await ipJson<object>(ns, ['route', 'show', 'default'])).length)
      lines.push(`route replace default via ${GW_BRIDGE.gateway} dev ${ifname}`);
    nodeLines.push(`link set ${hostVeth} master ${GW_BRIDGE.device}`, `link set ${hostVeth} up`);
  }
  st.gws.set(containerId, gw);
  return gw;
}

function allocateGwIp(st: ProgrammedState): string {
  const used = new Set([...st.gws.values()].map((g) => g.ip));
  const base = parseIp(GW_BRIDGE.gateway);
  for (let n = base + 2; ; n++) {
    const ip = formatIp(n);
    if (!used.has(ip)) return ip;
  }
}

function inGwSubnet(ip: string): boolean {
  const s = parseSubnet(GW_BRIDGE.subnet);
  return (parseIp(ip) & ~((1 << (32 - s.prefixLen)) - 1)) >>> 0 === s.base;
}

/** How `ip link … netns X` names a namespace: a /run/netns name, or a PID living in it. */
function nsRef(ns: NetnsPath): string {
  if (ns === undefined) return String(process.pid);
  const named = /^\/run\/netns\/([^/]+)$/.exec(ns);
  if (named) return named[1];
  const pid = /^\/proc\/(\d+)\/ns\/net$/.exec(ns);
  if (pid) return pid[1];
  throw new Error(`cannot name namespace ${ns} for ip link: use /run/netns/<name> or /proc/<pid>/ns/net`);
}
