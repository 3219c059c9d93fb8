/**
 * This node's image server for the other swarm nodes: HTTPS with mutual TLS, the client must
 * hold a certificate from the swarm's root CA (a process outside the swarm cannot read).
 *   GET /v1/images/<image ID>  → the stored blob of each layer, in the config's order
 *   GET /v1/blobs/<digest>     → a blob (config or layer), by its sha256
 * The receiver trusts none of it beyond the digests (peer-fetch.ts). A blob only private images
 * hold (pulled with credentials) goes only to a node the managers say may have one of them
 * (`mayServe`: a task of its own that runs the image and was given credentials); else 403.
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../util/log.js';
import type { Image, ImageStore } from './store.js';
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

/**
 * The private images of this store that hold blob `digest` (as config or stored layer blob),
 * whether a public one holds it too (then it is anyone's: a shared base layer), and whether
 * any image holds it at all.
 */
export function blobHolders(
  store: ImageStore,
  digest: string,
): { anyPublic: boolean; privateImages: string[]; anyImage: boolean } {
  const holds = (img: Image) =>
    img.id === digest || img.config.rootfs.diff_ids.some((d) => layerHasBlob(store, d, digest));
  const all = store.all();
  const privateImages = all.filter((img) => img.record.private && holds(img)).map((img) => img.id);
  const anyPublic = all.some((img) => !img.record.private && holds(img));
  return { anyPublic, privateImages, anyImage: anyPublic || privateImages.length > 0 };
}

const layerHasBlob = (store: ImageStore, diffId: string, digest: string) =>
  store.layers.has(diffId) && store.layers.meta(diffId).blobs.some((b) => b.digest === digest);

/**
 * A blob no image holds yet is served only as part of a public image this node is fetching
 * now (its config, or a layer it already has): the blobs of a private image being pulled or
 * fetched, or left over, go to nobody.
 */
export function partOfPublicFetch(store: ImageStore, digest: string, fetching: Iterable<string>): boolean {
  for (const id of fetching) {
    if (id === digest) return true;
    if (!store.blobs.has(id)) continue;
    const config = JSON.parse(store.blobs.read(id).toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
    if ((config.rootfs?.diff_ids ?? []).some((d) => layerHasBlob(store, d, digest))) return true;
  }
  return false;
}

/** Whether node `requester` may have the private image `imageId` (named `refs` here): the managers decide. */
export type PeerAccess = (requester: string, imageId: string, refs: string[]) => Promise<boolean>;

/** A yes from the managers holds this long: one image's blobs come in several requests at once. */
const ACCESS_TTL_MS = 10_000;

export class ImagePeerServer {
  private server?: https.Server;
  /** Bytes of blobs sent to peers since start (metrics, benchmarks). */
  bytesServed = 0;

  /** requester + image ID → until when the managers' yes holds. */
  private readonly allowed = new Map<string, number>();

  constructor(
    private readonly store: ImageStore,
    private readonly log: Logger,
    /** Asked for private images only; without it they are never served. */
    private readonly mayServe?: PeerAccess,
    /** The public images this node is fetching now (their blobs are served before the image is whole). */
    private readonly fetchingPublic: () => Iterable<string> = () => [],
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
    // The client certificate, checked against the swarm's root CA, names the node (CN = node ID).
    const cn = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
    const requester = typeof cn === 'string' ? cn : '';
    this.permitted(requester, m[1] === 'images' ? [m[2]] : undefined, m[2])
      .then((ok) => {
        if (!ok) {
          this.log.info({ peer: requester, digest: m[2] }, 'private image refused to a peer without a task for it');
          res.writeHead(403).end();
        } else if (m[1] === 'images') this.sendLayers(res, m[2]);
        else this.sendBlob(res, m[2]);
      })
      .catch((err: unknown) => {
        this.log.warn({ err, peer: requester }, 'image peer access check failed');
        if (!res.headersSent) res.writeHead(503).end();
      });
  }

  /**
   * Whether `requester` may read `digest`: yes when a public image holds it (or it is part of a public fetch),
   * else when the managers allow it one of the private images holding it (`images`: the one asked for).
   */
  private async permitted(requester: string, images: string[] | undefined, digest: string): Promise<boolean> {
    let candidates: string[];
    if (images) candidates = images.filter((id) => this.store.get(id)?.record.private);
    else {
      const holders = blobHolders(this.store, digest);
      if (holders.anyPublic) return true;
      if (!holders.anyImage) return partOfPublicFetch(this.store, digest, this.fetchingPublic());
      candidates = holders.privateImages;
    }
    if (!candidates.length) return true;
    if (!this.mayServe || !requester) return false;
    const now = Date.now();
    for (const id of candidates) {
      const key = `${requester} ${id}`;
      if ((this.allowed.get(key) ?? 0) > now) return true;
      if (await this.mayServe(requester, id, this.store.refsOf(id))) {
        for (const [k, until] of this.allowed) if (until <= now) this.allowed.delete(k);
        this.allowed.set(key, now + ACCESS_TTL_MS);
        return true;
      }
    }
    return false;
  }

  private sendLayers(res: ServerResponse, imageId: string): void {
    const layers = peerLayers(this.store, imageId);
    if (!layers) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ layers }));
  }

  private sendBlob(res: ServerResponse, digest: string): void {
    if (!this.store.blobs.has(digest)) {
      res.writeHead(404).end();
      return;
    }
    const size = this.store.blobs.size(digest);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    const src = this.store.blobs.readStream(digest, 1 << 18);
    src.on('data', (c: Buffer | string) => (this.bytesServed += c.length));
    pipeline(src, res).catch((err: unknown) => this.log.debug({ err, blob: digest }, 'peer went away mid-blob'));
  }
}
