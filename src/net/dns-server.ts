import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Logger } from '../util/log.js';
import { emptyZone, lookup, networksWithName, type DnsZone } from './dns-zone.js';

export interface Upstream {
  address: string;
  port: number;
}

export interface DnsServerOptions {
  address: string;
  port: number;
  /** Where names that are not the swarm's go (the host's resolvers). */
  upstreams: Upstream[];
  /** Docker answers with a TTL of 600 seconds. */
  ttl?: number;
}

const FORWARD_TIMEOUT_MS = 2000;

/** The node's resolver over UDP and TCP: swarm names from the zone, everything else forwarded. */
export class DnsServer {
  private zone: DnsZone = emptyZone();
  private udp?: dgram.Socket;
  private tcp?: net.Server;

  constructor(
    readonly options: DnsServerOptions,
    private readonly log?: Logger,
  ) {}

  setZone(zone: DnsZone): void {
    this.zone = zone;
  }

  async start(): Promise<void> {
    const { address, port } = this.options;
    const udp = dgram.createSocket('udp4');
    udp.on('message', (msg, rinfo) => {
      void this.answer(msg, rinfo.address)
        .then((reply) => {
          // A callback takes send errors (the asker gone meanwhile); a socket closed by stop() meanwhile throws.
          if (reply && this.udp === udp)
            udp.send(
              reply,
              rinfo.port,
              rinfo.address,
              (err) => err && this.log?.debug({ err: err.message, asker: rinfo.address }, 'dns reply not sent'),
            );
        })
        .catch((e: Error) => this.log?.debug({ err: e.message, asker: rinfo.address }, 'dns query dropped'));
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, address, () => resolve());
    });
    udp.on('error', () => undefined);
    this.udp = udp;
    const tcp = net.createServer((sock) => this.serveTcp(sock));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, address, () => resolve());
    });
    this.tcp = tcp;
  }

  async stop(): Promise<void> {
    const udp = this.udp;
    this.udp = undefined;
    udp?.close();
    await new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r()));
  }

  private serveTcp(sock: net.Socket): void {
    let buf = Buffer.alloc(0);
    sock.on('error', () => sock.destroy());
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        void this.answer(msg, sock.remoteAddress?.replace(/^::ffff:/, '') ?? '')
          .then((reply) => {
            if (!reply || sock.destroyed) return;
            const head = Buffer.alloc(2);
            head.writeUInt16BE(reply.length);
            sock.write(Buffer.concat([head, reply]));
          })
          .catch((e: Error) => this.log?.debug({ err: e.message, asker: sock.remoteAddress }, 'dns query dropped'));
      }
    });
  }

  /** The reply to one query, or undefined to drop it (undecodable). */
  async answer(msg: Buffer, asker: string): Promise<Buffer | undefined> {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return undefined;
    }
    const q = query.questions?.[0];
    const ips = q && (q.type === 'A' || q.type === 'AAAA') ? lookup(this.zone, asker, q.name) : undefined;
    if (!q || !ips) {
      // Every forwarded query, with what the zone knew: a swarm name that went upstream is a zone question.
      this.log?.debug(
        {
          name: q?.name,
          type: q?.type,
          asker,
          askerKnown: asker in this.zone.askers,
          askerNetworks: this.zone.askers[asker] ?? [],
          nameOnNetworks: q ? networksWithName(this.zone, q.name) : [],
        },
        'dns query forwarded',
      );
      return this.forward(msg, query);
    }
    this.log?.trace({ name: q.name, type: q.type, asker, ips }, 'dns query answered');
    const answers: dnsPacket.Answer[] =
      q.type === 'AAAA'
        ? []
        : ips.map((ip) => ({
            type: 'A' as const,
            name: q.name,
            class: 'IN' as const,
            ttl: this.options.ttl ?? 600,
            data: ip,
          }));
    return dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: [q],
      answers,
    });
  }

  /** Asks each upstream in turn over UDP; SERVFAIL when none answers. */
  private async forward(msg: Buffer, query: dnsPacket.Packet): Promise<Buffer> {
    for (const up of this.options.upstreams) {
      const reply = await new Promise<Buffer | undefined>((resolve) => {
        const sock = dgram.createSocket('udp4');
        const timer = setTimeout(() => done(undefined), FORWARD_TIMEOUT_MS);
        let finished = false;
        const done = (b: Buffer | undefined) => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          sock.close();
          resolve(b);
        };
        sock.on('error', () => done(undefined));
        sock.on('message', (b) => done(b));
        sock.send(msg, up.port, up.address, (err) => err && done(undefined));
      });
      if (reply) return reply;
    }
    return dnsPacket.encode({
      type: 'response',
      id: query.id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | 2 /* SERVFAIL */,
      questions: query.questions ?? [],
    });
  }
}

/** `nameserver` lines of a resolv.conf (the host's resolvers, port 53). */
export function upstreamsFromResolvConf(text: string): Upstream[] {
  return [...text.matchAll(/^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)].map((m) => ({ address: m[1], port: 53 }));
}
