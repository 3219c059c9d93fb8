import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/util/run.js';
import { createLogger } from '../../src/util/log.js';
import { NetworkReconciler } from '../../src/agent/network/reconciler.js';
import type { NodeNetworkPlan, OverlayNetworkPlan, PortPlan } from '../../src/agent/network/plan.js';
import { planFromCluster, VXLAN_ID_OPTION } from '../../src/agent/network/from-cluster.js';
import type { Network, Node, Service, Task } from '../../src/cluster/types.js';
import { createNetns, deleteNetns, uniqueName } from './netns.js';
import { startProcess, stopProcess, waitFor } from './process.js';

/**
 * Nodes as network namespaces on a private LAN (its bridge lives in a namespace of its own,
 * so no test address ever shows up in the host's), containers as processes in new network
 * namespaces, and a tiny stand-in for the agent: a cluster model turned into one plan per node.
 */

const FAKE_DNS_JS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fake-dns.js');
export const LAN_PREFIX = '192.168.77';
export const UPSTREAM_ANSWER = '203.0.113.7';
export const UPSTREAM_PORT = 5353;

export interface LabNode {
  name: string;
  ns: string;
  addr: string;
  prefix: string;
  ingressIp: string;
  reconciler?: NetworkReconciler;
  upstreamPid?: number;
}

export interface LabContainer {
  id: string;
  name: string;
  node: string;
  pid: number;
  /** networkId → address */
  addresses: Record<string, string>;
  service?: string;
}

export interface LabService {
  id: string;
  name: string;
  endpointMode: 'vip' | 'dnsrr';
  vips: Record<string, string>;
  ports: PortPlan[];
}

export class OverlayLab {
  readonly id = uniqueName('shov');
  readonly dir: string;
  lanNs = '';
  clientNs = '';
  readonly clientAddr = `${LAN_PREFIX}.100`;
  readonly nodes: LabNode[] = [];
  readonly containers: LabContainer[] = [];
  readonly services: LabService[] = [];
  readonly networks: OverlayNetworkPlan[] = [];
  private readonly pids: number[] = [];
  readonly log = createLogger('overlay-lab', 'warn');

  constructor(root: string) {
    this.dir = path.join(root, this.id);
    fs.mkdirSync(this.dir, { recursive: true });
  }

  async start(nodeCount: number): Promise<void> {
    this.lanNs = await createNetns(`${this.id}-lan`);
    await run('ip', ['-n', this.lanNs, 'link', 'add', 'lanbr', 'type', 'bridge']);
    await run('ip', ['-n', this.lanNs, 'link', 'set', 'lanbr', 'up']);
    for (let i = 1; i <= nodeCount; i++) {
      const ns = await createNetns(`${this.id}-n${i}`);
      const addr = `${LAN_PREFIX}.${10 + i}`;
      await this.plug(ns, `n${i}`, addr);
      this.nodes.push({ name: `n${i}`, ns, addr, prefix: `${this.id}n${i}`, ingressIp: `10.255.0.${249 + i}` });
    }
    this.clientNs = await createNetns(`${this.id}-cl`);
    await this.plug(this.clientNs, 'cl', this.clientAddr);
  }

  /** A namespace's eth0 on the LAN bridge. */
  private async plug(ns: string, tag: string, addr: string): Promise<void> {
    await run('ip', ['-n', this.lanNs, 'link', 'add', `l-${tag}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await run('ip', ['-n', this.lanNs, 'link', 'set', `l-${tag}`, 'master', 'lanbr', 'up']);
    await run('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  }

  /** The node's fake upstream resolver on its loopback, then its reconciler. */
  async openNode(node: LabNode): Promise<NetworkReconciler> {
    if (!node.upstreamPid) {
      const log = path.join(this.dir, `upstream-${node.name}.log`);
      const p = startProcess(
        'nsenter',
        [
          `--net=/run/netns/${node.ns}`,
          '--',
          process.execPath,
          FAKE_DNS_JS,
          '127.0.0.1',
          String(UPSTREAM_PORT),
          UPSTREAM_ANSWER,
        ],
        log,
      );
      node.upstreamPid = p.pid!;
      this.pids.push(p.pid!);
      await waitFor('fake upstream', () => fs.readFileSync(log, 'utf8').includes('ready'));
    }
    node.reconciler = await NetworkReconciler.open({
      nodeNetns: `/run/netns/${node.ns}`,
      sandboxPrefix: node.prefix,
      dnsUpstreams: [{ address: '127.0.0.1', port: UPSTREAM_PORT }],
      log: this.log,
    });
    return node.reconciler;
  }

  /** A "container": busybox httpd on :8000 in a new network namespace, serving /name. */
  async startContainer(
    name: string,
    node: string,
    addresses: Record<string, string>,
    service?: string,
  ): Promise<LabContainer> {
    const www = path.join(this.dir, 'www', name);
    fs.mkdirSync(www, { recursive: true });
    fs.writeFileSync(path.join(www, 'name'), name);
    const child = startProcess(
      'unshare',
      ['-n', 'busybox', 'httpd', '-f', '-p', '8000', '-h', www],
      path.join(this.dir, `${name}.log`),
    );
    const pid = child.pid!;
    this.pids.push(pid);
    const own = fs.readlinkSync('/proc/self/ns/net');
    await waitFor(
      `container ${name}`,
      () =>
        fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'busybox' &&
        fs.readlinkSync(`/proc/${pid}/ns/net`) !== own,
    );
    const c: LabContainer = { id: `${this.id}-${name}`.padEnd(64, '0'), name, node, pid, addresses, service };
    this.containers.push(c);
    return c;
  }

  async stopContainer(name: string): Promise<void> {
    const i = this.containers.findIndex((c) => c.name === name);
    const [c] = this.containers.splice(i, 1);
    await stopProcess(c.pid, 'SIGKILL');
  }

  /**
   * What the agent computes for `node`: the model as the store's objects (nodes, networks,
   * services with their VIPs and ports, running tasks with attachments), through planFromCluster.
   */
  planFor(node: LabNode): NodeNetworkPlan {
    const meta = (ID: string) => ({ ID, Version: { Index: 1 }, CreatedAt: '', UpdatedAt: '' });
    const nodes: Node[] = this.nodes.map((n) => ({
      ...meta(n.name),
      Spec: { Role: 'worker', Availability: 'active' },
      Status: { State: 'ready', Addr: n.addr },
    }));
    const networks: Network[] = this.networks.map((n) => ({
      ...meta(n.id),
      Spec: { Name: n.name, Ingress: !!n.ingress },
      DriverState: { Name: 'overlay', Options: { [VXLAN_ID_OPTION]: String(n.vni) } },
      IPAMOptions: { Configs: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    }));
    const prefixLen = (netId: string) => this.networks.find((n) => n.id === netId)!.subnet.split('/')[1];
    const services: Service[] = this.services.map((s) => ({
      ...meta(s.id),
      Spec: { Name: s.name, TaskTemplate: {} },
      Endpoint: {
        Spec: { Mode: s.endpointMode },
        Ports: s.ports.map((p) => ({
          Protocol: p.protocol,
          TargetPort: p.target,
          PublishedPort: p.published,
          PublishMode: p.mode,
        })),
        VirtualIPs: Object.entries(s.vips).map(([NetworkID, ip]) => ({
          NetworkID,
          Addr: `${ip}/${prefixLen(NetworkID)}`,
        })),
      },
    }));
    const tasks: Task[] = this.containers.map((c, i) => ({
      ...meta(c.id),
      // The container's name as an alias on each network, so tests can resolve it.
      Spec: { Networks: Object.keys(c.addresses).map((Target) => ({ Target, Aliases: [c.name] })) },
      ServiceID: this.services.find((s) => s.name === c.service)?.id ?? `standalone-${c.name}`,
      Slot: i + 1,
      NodeID: c.node,
      Status: { Timestamp: '', State: 'running', Message: '' },
      DesiredState: 'running',
      NetworksAttachments: Object.entries(c.addresses).map(([netId, ip]) => ({
        Network: networks.find((n) => n.ID === netId)!,
        Addresses: [`${ip}/${prefixLen(netId)}`],
      })),
    }));
    return planFromCluster({
      nodeId: node.name,
      nodes,
      networks,
      services,
      tasks,
      localContainer: (t) => {
        const c = this.containers.find((c) => c.id === t.ID);
        return c && { containerId: c.id, netnsPath: `/proc/${c.pid}/ns/net` };
      },
      ingressEndpoints: Object.fromEntries(this.nodes.map((n) => [n.name, `${n.ingressIp}/24`])),
    });
  }

  async applyAll(nodes: LabNode[] = this.nodes): Promise<void> {
    for (const n of nodes) {
      const report = await n.reconciler!.applyPlan(this.planFor(n));
      if (report.errors.length) throw new Error(`${n.name}: ${JSON.stringify(report.errors)}`);
    }
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes) await n.reconciler?.destroy().catch(() => undefined);
    for (const pid of this.pids) await stopProcess(pid, 'SIGKILL');
    for (const n of this.nodes) await deleteNetns(n.ns);
    if (this.clientNs) await deleteNetns(this.clientNs);
    if (this.lanNs) await deleteNetns(this.lanNs);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  track(pid: number): void {
    this.pids.push(pid);
  }
}

/** Runs a program in a container's namespace; never throws. */
export const inPid = (pid: number, cmd: string, args: string[]) =>
  run('nsenter', ['-t', String(pid), '-n', '--', cmd, ...args], { allowFail: true });

/** GET /name over HTTP from a namespace (by PID or name); the serving container's name, or '' on failure. */
export async function whoAnswers(from: { pid: number } | { ns: string }, url: string): Promise<string> {
  // curl: busybox 1.35's wget crashes on -T.
  const args = ['curl', '-s', '--max-time', '3', url];
  const r =
    'pid' in from
      ? await inPid(from.pid, args[0], args.slice(1))
      : await run('ip', ['netns', 'exec', from.ns, ...args], { allowFail: true });
  return r.code === 0 ? r.stdout.trim() : '';
}
