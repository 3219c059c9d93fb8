import fs from 'node:fs';
import { run } from '../util/run.js';
import { inNetns, ipBatch, ipJson, type IpLink, type NetnsTarget } from '../engine/network/ip.js';
import { hubAddress, withPrefixLen } from './addresses.js';
import { LabNames } from './settings.js';
import type { MachineRecord } from './state.js';

/**
 * The lab network: a bridge inside the hub namespace and a veth from it into each machine's
 * namespace. Every command runs inside a namespace the lab made (`ip -n`, nsenter), so the
 * host's own interfaces and routes are never touched.
 */

const named = (name: string): NetnsTarget => ({ kind: 'named', name });

export function netnsPath(ns: string): string {
  return `/run/netns/${ns}`;
}

export function netnsExists(ns: string): boolean {
  return fs.existsSync(netnsPath(ns));
}

/** Every named network namespace on the host (`ip netns list`), names only. */
export async function listNetns(): Promise<string[]> {
  const r = await run('ip', ['-json', 'netns', 'list'], { allowFail: true });
  if (r.code !== 0 || !r.stdout.trim()) return [];
  return (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name);
}

async function addNetns(ns: string): Promise<void> {
  await run('ip', ['netns', 'add', ns]);
  await ipBatch(named(ns), ['link set lo up']);
}

/** Deletes a namespace after emptying its nftables ruleset (the kernel would too, but only once no process holds it). */
export async function deleteNetns(ns: string): Promise<void> {
  if (!netnsExists(ns)) return;
  await inNetns(named(ns), 'nft', ['flush', 'ruleset'], { allowFail: true });
  await run('ip', ['netns', 'delete', ns], { allowFail: true });
}

async function linkExists(ns: string, ifname: string): Promise<boolean> {
  return (await ipJson<IpLink>(named(ns), ['link', 'show', 'dev', ifname], true)).length > 0;
}

/**
 * The hub namespace and its bridge, holding the subnet's first address; adopts what exists.
 * The hub is also every machine's gateway, as a real machine has one (Docker picks the
 * default route's interface when `swarm init` is given no --advertise-addr); it leads nowhere,
 * and answers "network unreachable" at once rather than letting packets vanish.
 */
export async function ensureHub(names: LabNames, subnet: string): Promise<void> {
  if (!netnsExists(names.hubNs)) await addNetns(names.hubNs);
  if (!(await linkExists(names.hubNs, LabNames.hubBridge))) {
    await ipBatch(named(names.hubNs), [
      `link add ${LabNames.hubBridge} type bridge`,
      `addr add ${withPrefixLen(subnet, hubAddress(subnet))} dev ${LabNames.hubBridge}`,
      `link set ${LabNames.hubBridge} up`,
      'route replace unreachable default',
    ]);
    // Per-namespace setting: nsenter makes /proc/sys/net the hub's.
    await inNetns(named(names.hubNs), 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  }
}

/**
 * A machine's namespace with loopback up and its lab interface wired to the hub bridge. The veth
 * is created inside the hub namespace with its peer moved straight into the machine's, so it
 * never appears in the host namespace.
 */
export async function plugMachine(names: LabNames, subnet: string, m: MachineRecord): Promise<void> {
  if (netnsExists(m.ns)) await deleteNetns(m.ns); // leftovers of a crash: rebuild from scratch
  if (await linkExists(names.hubNs, m.hubVeth)) await ipBatch(named(names.hubNs), [`link delete ${m.hubVeth}`]);
  await addNetns(m.ns);
  await ipBatch(named(names.hubNs), [
    `link add ${m.hubVeth} type veth peer name ${LabNames.machineIf} netns ${m.ns}`,
    `link set ${m.hubVeth} master ${LabNames.hubBridge}`,
    `link set ${m.hubVeth} ${m.disconnected ? 'down' : 'up'}`,
  ]);
  await ipBatch(named(m.ns), [
    `addr add ${withPrefixLen(subnet, m.address)} dev ${LabNames.machineIf}`,
    `link set ${LabNames.machineIf} up`,
    `route add default via ${hubAddress(subnet)} dev ${LabNames.machineIf}`,
  ]);
}

/** Removes a machine's namespace; its veth goes with it. */
export async function unplugMachine(names: LabNames, m: MachineRecord): Promise<void> {
  // The veth first (its peer goes with it): deleting the namespace first would race the kernel's own removal of it.
  if (m.hubVeth && netnsExists(names.hubNs) && (await linkExists(names.hubNs, m.hubVeth))) {
    await ipBatch(named(names.hubNs), [`link delete ${m.hubVeth}`]);
  }
  await deleteNetns(m.ns);
}

/**
 * A partition: the hub end of the machine's veth goes down, so the machine's eth0 loses its
 * carrier and no frame passes either way, while the machine and its daemon keep running.
 */
export async function setConnected(names: LabNames, m: MachineRecord, connected: boolean): Promise<void> {
  if (!netnsExists(m.ns)) return;
  await ipBatch(named(names.hubNs), [`link set ${m.hubVeth} ${connected ? 'up' : 'down'}`]);
}
