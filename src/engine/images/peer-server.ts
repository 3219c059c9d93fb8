/**
 * This node's image server for the other swarm nodes: HTTPS with mutual TLS, the client must
 * hold a certificate from the swarm's root CA (a process outside the swarm cannot read).
 *   GET /v1/images/<image ID>  → the stored blob of each layer, in the config's order
 *   GET /v1/blobs/<digest>     → a blob (config or layer), by its sha256
 * The receiver trusts none of it beyond the digests (peer-fetch.ts).
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../util/log.js';
import type { ImageStore } from './store.js';
import { isSha256Digest } from './reference.js';

export interface PeerTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** One blob per layer, as a registry manifest lists them. */
export interface PeerLayer {
  digest: string;
  mediaType: string;
  size: number;
}

/** What this node stores of an image's layers (undefined when a layer has no stored blob left). */
export function peerLayers(store: ImageStore, imageId: string): PeerLayer[] | undefined {
  const img = store.get(imageId);
  if (!img) return undefined;
  const out: PeerLayer[] = [];
  for (const diffId of img.config.rootfs.diff_ids) {
    if (!store.layers.has(diffId)) return undefined;
    const blob = store.layers.meta(diffId).blobs.find((b) => store.blobs.has(b.digest));
    if (!blob) return undefined;
    out.push({ digest: blob.digest, mediaType: blob.mediaType, size: store.blobs.size(blob.digest) });
  }
  return out;
}

export class ImagePeerServer {
  private server?: https.Server;
  /** Bytes of blobs sent to peers since start (metrics, benchmarks). */
  bytesServed = 0;

  constructor(
    private readonly store: ImageStore,
    private readonly log: Logger,
  ) {}

  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  /** Listens on `port`, or on any free port when that one is taken. Returns the port. */
  async listen(tls: PeerTls, port: number): Promise<number> {
    const server = https.createServer(
      { ...tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      (req, res) => this.handle(req, res),
    );
    server.on('tlsClientError', (err) => this.log.debug({ err }, 'image peer refused'));
    const tryListen = (p: number) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p, () => {
          server.off('error', reject);
          resolve();
        });
      });
    try {
      await tryListen(port);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      await tryListen(0);
    }
    this.server = server;
    return this.port!;
  }

  /** New certificates (renewal, root rotation) for the next connections. */
  setTls(tls: PeerTls): void {
    this.server?.setSecureContext({ ...tls });
  }

  close(): void {
    this.server?.close();
    this.server?.closeAllConnections();
    this.server = undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const m = /^\/v1\/(images|blobs)\/(sha256:[a-f0-9]{64})$/.exec(req.url ?? '');
    if (req.method !== 'GET' || !m || !isSha256Digest(m[2])) {
      res.writeHead(404).end();
      return;
    }
    if (m[1] === 'images') {
      const layers = peerLayers(this.store, m[2]);
      if (!layers) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ layers }));
      return;
    }
    if (!this.store.blobs.has(m[2])) {
      res.writeHead(404).end();
      return;
    }
    const size = this.store.blobs.size(m[2]);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    const src = this.store.blobs.readStream(m[2]);
    src.on('data', (c: Buffer | string) => (this.bytesServed += c.length));
    pipeline(src, res).catch((err: unknown) => this.log.debug({ err, blob: m[2] }, 'peer went away mid-blob'));
  }
}
