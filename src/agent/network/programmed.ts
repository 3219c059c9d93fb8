import type { Logger } from '../../util/log.js';
import type { Peer } from './desired.js';
import { bridgeBatch, exec, ipBatch, nftApply, type NetnsPath } from './kernel.js';

/** One overlay network's sandbox namespace as programmed. */
export interface Sandbox {
  name: string;
  path: string;
  vni: number;
  subnet: string;
  /** The routing mesh's address on br0 (ingress sandbox only). */
  lbIp?: string;
  peers: Map<string, Peer>;
  /** Container veths found there after a restart, not yet matched to the plan. */
  unclaimed: Set<string>;
}

export interface Endpoint {
  containerId: string;
  networkId: string;
  sandbox: string;
  netnsPath: string;
  ip: string;
  mac: string;
  ifname: string;
  veth: string;
}

export interface GwAttachment {
  containerId: string;
  netnsPath: string;
  ip: string;
  ifname: string;
  hostVeth: string;
}

/** What one applyPlan did: kernel transactions issued, and containers it could not program. */
export interface ApplyReport {
  ipBatches: number;
  bridgeBatches: number;
  nftTransactions: number;
  /** Each kernel call's wall time ("nft c:<id> 12ms"), for the debug log of a slow pass. */
  timings: string[];
  errors: { containerId?: string; networkId?: string; message: string }[];
}

/**
 * What the reconciler has programmed into the kernel (sandboxes, endpoints, gateway attachments,
 * reply routes, nftables scripts) and the kernel calls that change it, counted in the report.
 */
export class ProgrammedState {
  readonly sandboxes = new Map<string, Sandbox>();
  readonly endpoints = new Map<string, Endpoint>();
  readonly gws = new Map<string, GwAttachment>();
  /** Gateway-bridge veths found after a restart, not yet matched to the plan. */
  readonly unclaimedGw = new Set<string>();
  /** Per container: the reply routes last programmed (interface and ingress endpoints). */
  readonly replyRoutes = new Map<string, string>();
  /** Last script applied per namespace: unchanged tables are not rewritten. */
  readonly nftApplied = new Map<string, string>();
  report: ApplyReport = freshReport();

  constructor(
    /** The node's namespace; undefined: this process's. */
    readonly node: NetnsPath,
    readonly sandboxPrefix: string,
    readonly log: Logger,
  ) {}

  async ip(ns: NetnsPath, lines: string[], force = false): Promise<void> {
    if (!lines.length) return;
    this.report.ipBatches++;
    const t0 = Date.now();
    if (force) await exec(ns, 'ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
    else await ipBatch(ns, lines);
    this.timed(`ip ${lines.length}`, t0);
  }

  private timed(what: string, t0: number): void {
    this.report.timings.push(`${what} ${Date.now() - t0}ms`);
  }

  async fdb(ns: NetnsPath, lines: string[], force = false): Promise<void> {
    if (!lines.length) return;
    this.report.bridgeBatches++;
    const t0 = Date.now();
    await bridgeBatch(ns, lines, force);
    this.timed(`bridge ${lines.length}`, t0);
  }

  async nft(key: string, ns: NetnsPath, script: string, allowFail = false): Promise<void> {
    if (this.nftApplied.get(key) === script) return;
    this.report.nftTransactions++;
    const t0 = Date.now();
    try {
      await nftApply(ns, script);
      this.timed(`nft ${key.slice(0, 14)}`, t0);
      this.nftApplied.set(key, script);
    } catch (e) {
      if (!allowFail) this.fail(e, { containerId: key.startsWith('c:') ? key.slice(2) : undefined });
    }
  }

  fail(e: unknown, where: { containerId?: string; networkId?: string } = {}): void {
    this.report.errors.push({ ...where, message: (e as Error).message });
  }
}

export function freshReport(): ApplyReport {
  return { ipBatches: 0, bridgeBatches: 0, nftTransactions: 0, timings: [], errors: [] };
}
