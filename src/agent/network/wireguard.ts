import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../../util/log.js';
import { exec, ipBatch, ipJson, type LinkInfo, type NetnsPath } from './kernel.js';

/**
 * One node's WireGuard interface, which carries the VXLAN of encrypted overlays between nodes.
 * The kernel's WireGuard when the kernel has it; else Debian's wireguard-go on /dev/net/tun
 * (this machine's kernel has neither WireGuard nor IPsec ESP). `wg` configures both alike.
 */

/** Tunnel addresses: 100.64.0.0/10 (shared address space, never routed publicly). */
export const TUNNEL_SUBNET = '100.64.0.0/10';
export const TUNNEL_PORT = 51820;
/** WireGuard's own MTU inside a 1500-byte underlay (IPv4 20 + UDP 8 + WireGuard 32 + headroom). */
export const TUNNEL_MTU = 1420;
/** The overlay MTU of an encrypted network: the tunnel's less VXLAN's 50 bytes. */
export const ENCRYPTED_OVERLAY_MTU = TUNNEL_MTU - 50;

export type TunnelMode = 'kernel' | 'userspace';

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

/** A Curve25519 key pair in WireGuard's format (base64 of the raw 32 bytes), made here: the private half never leaves the node. */
export function newKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const raw = (b64url: string | undefined) => Buffer.from(b64url ?? '', 'base64url').toString('base64');
  return {
    privateKey: raw(privateKey.export({ format: 'jwk' }).d),
    publicKey: raw(publicKey.export({ format: 'jwk' }).x),
  };
}

/**
 * A node's tunnel address: the low 22 bits of its underlay address in 100.64.0.0/10. Stable
 * across restarts and key rotations; distinct for nodes whose underlay addresses differ in
 * those bits (every node of one /10 or smaller underlay).
 */
export function tunnelAddress(underlay: string): string {
  const parts = underlay.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: ${underlay}`);
  const low = (((parts[1] << 16) | (parts[2] << 8) | parts[3]) & 0x3fffff) >>> 0;
  const n = ((100 << 24) | (64 << 16) | low) >>> 0;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface TunnelPeer {
  publicKey: string;
  /** `underlay:port` where the peer's WireGuard listens. */
  endpoint: string;
  /** The peer's tunnel address (its only allowed source). */
  address: string;
}

/** Why this node cannot encrypt, or how it can: checked once per tunnel creation. */
export async function detectMode(ns: NetnsPath, probeName: string): Promise<{ mode?: TunnelMode; reason?: string }> {
  const k = await exec(ns, 'ip', ['link', 'add', probeName, 'type', 'wireguard'], { allowFail: true });
  if (k.code === 0) {
    await exec(ns, 'ip', ['link', 'delete', probeName], { allowFail: true });
    return { mode: 'kernel' };
  }
  const missing: string[] = [];
  if (!(await onPath('wireguard-go'))) missing.push('wireguard-go is not installed (apt-get install wireguard-go)');
  if (!(await onPath('wg'))) missing.push('wg is not installed (apt-get install wireguard-tools)');
  if (!fs.existsSync('/dev/net/tun')) missing.push('/dev/net/tun is missing');
  if (missing.length) return { reason: `the kernel has no WireGuard and ${missing.join(', ')}` };
  return { mode: 'userspace' };
}

async function onPath(cmd: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    try {
      fs.accessSync(`${dir}/${cmd}`, fs.constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

export class WireGuardDevice {
  private child?: ChildProcess;
  private childExit?: string;
  private destroyed = false;
  private keys: KeyPair = newKeyPair();
  /** Peers as last configured: public key → endpoint/address. */
  private peers = new Map<string, TunnelPeer>();

  private constructor(
    readonly ifname: string,
    readonly mode: TunnelMode,
    readonly address: string,
    private readonly ns: NetnsPath,
    private readonly log: Logger,
    private readonly onLost?: () => void,
  ) {}

  get publicKey(): string {
    return this.keys.publicKey;
  }

  /**
   * Makes the interface (a leftover of a previous run is replaced: its key died with that run),
   * with a new key, its address and the route of the tunnel subnet. An unreachable route under
   * it keeps VXLAN of encrypted networks from ever taking the default route in the clear when
   * the interface is gone.
   */
  static async create(opts: {
    ifname: string;
    mode: TunnelMode;
    underlay: string;
    ns: NetnsPath;
    log: Logger;
    onLost?: () => void;
  }): Promise<WireGuardDevice> {
    const d = new WireGuardDevice(opts.ifname, opts.mode, tunnelAddress(opts.underlay), opts.ns, opts.log, opts.onLost);
    await exec(opts.ns, 'ip', ['link', 'delete', opts.ifname], { allowFail: true });
    try {
      if (opts.mode === 'kernel') await ipBatch(opts.ns, [`link add ${opts.ifname} type wireguard`]);
      else await d.startUserspace();
      await d.setKey(d.keys);
    } catch (e) {
      await d.destroy();
      throw e;
    }
    await ipBatch(opts.ns, [
      `link set ${opts.ifname} mtu ${TUNNEL_MTU}`,
      `addr replace ${d.address}/32 dev ${opts.ifname}`,
      `link set ${opts.ifname} up`,
      `route replace ${TUNNEL_SUBNET} dev ${opts.ifname}`,
      `route replace unreachable ${TUNNEL_SUBNET} metric 4242`,
    ]);
    return d;
  }

  /** wireguard-go in the foreground as this daemon's child; it makes the tun device in the node's namespace. */
  private async startUserspace(): Promise<void> {
    const args = [...(this.ns ? ['nsenter', `--net=${this.ns}`, '--'] : []), 'wireguard-go', '-f', this.ifname];
    const child = spawn(args[0], args.slice(1), {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'error' },
    });
    this.child = child;
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-2000);
    });
    child.on('exit', (code, signal) => {
      // Its banner (a box of line-drawing characters) says nothing: the last other line does.
      const said = stderr
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !/[│┌└─]/.test(l))
        .pop();
      this.childExit = `wireguard-go exited (${signal ?? code})${said ? `: ${said}` : ''}`;
      if (!this.destroyed) {
        this.log.error({ ifname: this.ifname, reason: this.childExit }, 'overlay tunnel lost');
        this.onLost?.();
      }
    });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (this.childExit) throw new Error(this.childExit);
      const r = await exec(this.ns, 'wg', ['show', this.ifname, 'listen-port'], { allowFail: true });
      if (r.code === 0) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    child.kill();
    throw new Error(`wireguard-go did not bring ${this.ifname} up within 5 s`);
  }

  /** Why the tunnel cannot carry traffic now, or undefined when it can. */
  async fault(): Promise<string | undefined> {
    if (this.childExit) return this.childExit;
    const [link] = await ipJson<LinkInfo>(this.ns, ['link', 'show', 'dev', this.ifname]);
    if (!link) return `interface ${this.ifname} is gone`;
    if (!link.flags?.includes('UP')) return `interface ${this.ifname} is down`;
    const r = await exec(this.ns, 'wg', ['show', this.ifname, 'public-key'], { allowFail: true });
    if (r.code !== 0) return `wg cannot reach ${this.ifname}: ${r.stderr.trim()}`;
    if (r.stdout.trim() !== this.keys.publicKey) return `interface ${this.ifname} has a key this node did not set`;
    return undefined;
  }

  /** A new key pair: sessions made with the old one end; peers accept the new one once the managers tell them. */
  async rotate(): Promise<void> {
    const keys = newKeyPair();
    await this.setKey(keys);
    this.keys = keys;
  }

  private async setKey(keys: KeyPair): Promise<void> {
    // wg reads the key from a file only (never an argument: ps would show it): a private directory, removed at once.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-wg-'));
    try {
      const file = path.join(dir, 'key');
      fs.writeFileSync(file, keys.privateKey + '\n', { mode: 0o600 });
      await exec(this.ns, 'wg', ['set', this.ifname, 'listen-port', String(TUNNEL_PORT), 'private-key', file]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Brings the peer list to `want`: unknown keys are removed, so a removed or rotated-away key is refused at once. */
  async setPeers(want: TunnelPeer[]): Promise<void> {
    const next = new Map(want.map((p) => [p.publicKey, p]));
    const args: string[] = [];
    for (const k of this.peers.keys()) if (!next.has(k)) args.push('peer', k, 'remove');
    for (const [k, p] of next) {
      const was = this.peers.get(k);
      if (was && was.endpoint === p.endpoint && was.address === p.address) continue;
      args.push('peer', k, 'endpoint', p.endpoint, 'allowed-ips', `${p.address}/32`, 'persistent-keepalive', '25');
    }
    if (!args.length) return;
    await exec(this.ns, 'wg', ['set', this.ifname, ...args]);
    this.peers = next;
  }

  /** Peers as the interface has them, with the time of their last handshake (0: never). */
  async handshakes(): Promise<Map<string, number>> {
    const r = await exec(this.ns, 'wg', ['show', this.ifname, 'latest-handshakes'], { allowFail: true });
    return new Map(
      r.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t'))
        .map(([k, t]) => [k, Number(t)]),
    );
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
    await exec(this.ns, 'ip', ['link', 'delete', this.ifname], { allowFail: true });
    await exec(this.ns, 'ip', ['route', 'delete', 'unreachable', TUNNEL_SUBNET, 'metric', '4242'], { allowFail: true });
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      const gone = new Promise((r) => this.child!.once('exit', r));
      this.child.kill();
      await gone;
    }
    // A wireguard-go that was killed leaves its control socket behind (the directory is kernel-wide, not per namespace).
    if (this.mode === 'userspace') fs.rmSync(`/var/run/wireguard/${this.ifname}.sock`, { force: true });
  }
}
