/**
 * Fetches an image from other swarm nodes (their peer-server.ts): the config by its digest
 * (the image ID), then the layers, several at once, spread over the peers that hold them. Each
 * blob is checked against its digest and each layer against the config's diff ID before it is
 * kept (blobs.ts, ingest.ts: temp file + rename, nothing half-written stays); a wrong blob or a
 * peer that fails or stalls mid-blob sends that layer to the next peer.
 */
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { X509Certificate } from 'node:crypto';
import type { Logger } from '../../util/log.js';
import type { ImageStore } from './store.js';
import { ingestLayer } from './ingest.js';
import type { ImageConfigBlob } from './manifest.js';
import type { PeerLayer, PeerTls } from './peer-server.js';

export interface ImagePeer {
  nodeId: string;
  /** host:port of its image server. */
  addr: string;
}

/** Layers fetched at once (from different peers when there are several). */
const CONCURRENT_LAYERS = 4;
/** A peer that sends nothing for this long is given up on (it may be gone without a reset). */
const STALL_MS = 15_000;

/** GET over mutual TLS; the peer's certificate must name the node the managers said (CN = node ID). */
function get(peer: ImagePeer, path: string, tls: PeerTls): Promise<IncomingMessage> {
  const at = peer.addr.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: peer.addr.slice(0, at),
        port: Number(peer.addr.slice(at + 1)),
        path,
        ...tls,
        agent: false,
        checkServerIdentity: (_host, cert) =>
          new X509Certificate(cert.raw).subject.split('\n').includes(`CN=${peer.nodeId}`)
            ? undefined
            : new Error(`peer at ${peer.addr} is not node ${peer.nodeId}`),
      },
      (res) => {
        if (res.statusCode === 200) return resolve(res);
        res.resume();
        reject(new Error(`peer ${peer.nodeId} answered ${res.statusCode} for ${path}`));
      },
    );
    req.setTimeout(STALL_MS, () => req.destroy(new Error(`peer ${peer.nodeId} stalled`)));
    req.on('error', reject);
  });
}

async function readAll(res: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > limit) throw new Error('answer too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export interface PeerFetchResult {
  /** Bytes received per peer node ID. */
  bytesFrom: Map<string, number>;
  /** Blobs refused (wrong digest or diff ID) or cut off, with the peer that sent them. */
  refused: { nodeId: string; digest: string; reason: string }[];
}

/**
 * Makes image `imageId` local from `peers`. Throws when no peer could give some part of it
 * (the message says what failed at each peer); what was fetched before stays, verified.
 */
export async function fetchImageFromPeers(
  store: ImageStore,
  imageId: string,
  peers: ImagePeer[],
  tls: PeerTls,
  log: Logger,
): Promise<PeerFetchResult> {
  if (!peers.length) throw new Error('no peer holds it');
  const result: PeerFetchResult = { bytesFrom: new Map(), refused: [] };
  const count = (p: ImagePeer, n: number) => result.bytesFrom.set(p.nodeId, (result.bytesFrom.get(p.nodeId) ?? 0) + n);
  const failures: string[] = [];
  /** Tries `fn` on each peer from `start` on until one works. */
  const eachPeer = async <T>(start: number, what: string, fn: (p: ImagePeer) => Promise<T>): Promise<T> => {
    for (let k = 0; k < peers.length; k++) {
      const p = peers[(start + k) % peers.length];
      try {
        return await fn(p);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        // Node's client says 'aborted' / ECONNRESET when the peer's connection ends mid-answer.
        const reason =
          err.message === 'aborted' || err.code === 'ECONNRESET'
            ? `connection lost mid-transfer (${err.message})`
            : err.message;
        log.warn({ peer: p.nodeId, what, err: reason }, 'image fetch from peer failed; trying the next');
        result.refused.push({ nodeId: p.nodeId, digest: what, reason });
        failures.push(`${p.nodeId}: ${reason}`);
      }
    }
    throw new Error(`${what}: ${failures.slice(-peers.length).join('; ')}`);
  };

  if (!store.blobs.has(imageId))
    await eachPeer(0, imageId, async (p) => {
      const res = await get(p, `/v1/blobs/${imageId}`, tls);
      const { size } = await store.blobs.putStream(res, imageId);
      count(p, size);
    });
  const configJson = store.blobs.read(imageId);
  const config = JSON.parse(configJson.toString('utf8')) as ImageConfigBlob;
  const diffIds = config.rootfs?.diff_ids ?? [];
  const unpin = store.pin(diffIds);
  try {
    // Each peer's blob list, asked once: peers may store a layer differently (plain tar, gzip).
    const lists = new Map<string, Promise<PeerLayer[]>>();
    const layersOf = (p: ImagePeer) => {
      let l = lists.get(p.nodeId);
      if (!l) {
        l = get(p, `/v1/images/${imageId}`, tls)
          .then((res) => readAll(res, 1 << 20))
          .then((b) => (JSON.parse(b.toString('utf8')) as { layers: PeerLayer[] }).layers);
        lists.set(p.nodeId, l);
      }
      return l;
    };
    const todo = diffIds.map((d, i) => ({ d, i })).filter(({ d }) => !store.layers.has(d));
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const { d, i } = todo[next++];
        if (store.layers.has(d)) continue;
        await eachPeer(i, d, async (p) => {
          const layers = await layersOf(p);
          const blob = layers[i];
          if (layers.length !== diffIds.length || !blob) throw new Error('its layer list does not match the config');
          const res = await get(p, `/v1/blobs/${blob.digest}`, tls);
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          try {
            await ingestLayer(store, res, {
              expectedDigest: blob.digest,
              expectedDiffId: d,
              mediaType: blob.mediaType,
            });
          } finally {
            count(p, n);
          }
        });
      }
    };
    // Every worker finishes (or fails) before the layers are unpinned.
    const done = await Promise.allSettled(Array.from({ length: Math.min(CONCURRENT_LAYERS, todo.length) }, worker));
    const failed = done.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    store.addImage(configJson);
  } finally {
    unpin();
  }
  return result;
}
