/**
 * Fetches an image from other swarm nodes (their peer-server.ts): the config by its digest
 * (the image ID), then the layers, several at once, spread over the peers that hold them. Each
 * blob is checked against its digest and each layer against the config's diff ID before it is
 * kept (blobs.ts, ingest.ts: temp file + rename, nothing half-written stays); a wrong blob or a
 * peer that fails or stalls mid-blob sends that layer to the next peer. Before each layer the
 * holders are asked again (`refresh`): a node that finished its own fetch meanwhile serves too,
 * and each layer goes to the holder with the fewest transfers to this node under way.
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
  /** Still fetching the image itself: it may hold some layer blobs, never the layer list. */
  partial?: boolean;
}

/**
 * Layers fetched at once (from different peers when there are several). Few, so that nodes
 * fetching together (each starting at another layer) soon hold layers to give each other.
 */
const CONCURRENT_LAYERS = 2;
/** A peer that sends nothing for this long is given up on (it may be gone without a reset). */
const STALL_MS = 15_000;
/** Holders are asked again at most this often while a fetch goes on. */
const REFRESH_MS = 1000;

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

export interface PeerFetchOptions {
  /** The holders now (the managers' answer to FindImage); asked again before each layer. */
  refresh?: () => Promise<ImagePeer[]>;
  /** At most this often (default REFRESH_MS). */
  refreshMs?: number;
  /** The layer to begin with (any number; modulo the layers missing): nodes fetching together start apart. */
  startAt?: number;
  /** Pulled with credentials where it came from: private here from its first moment, never reported public. */
  private?: boolean;
}

/** A fetching peer without that blob yet: not a fault, the next peer is asked. */
class NotYet extends Error {}

/**
 * The holders to try for one layer, least busy first: transfers under way per peer, ties
 * broken by the layer's index (so layers started at once spread over the holders). A holder
 * list that cannot be refreshed (managers unreachable) keeps the last one.
 */
class HolderList {
  private peers: ImagePeer[];
  private askedAt = Date.now();
  private asking?: Promise<void>;
  private readonly busy = new Map<string, number>();

  constructor(
    initial: ImagePeer[],
    private readonly opts: PeerFetchOptions,
    private readonly log: Logger,
  ) {
    this.peers = initial;
  }

  private async fresh(): Promise<ImagePeer[]> {
    const { refresh, refreshMs = REFRESH_MS } = this.opts;
    if (refresh && Date.now() - this.askedAt >= refreshMs) {
      this.asking ??= refresh()
        .then((p) => {
          // Known holders stay: one that vanished from the answer fails over like any other.
          const known = new Set(p.map((x) => x.nodeId));
          this.peers = [...p, ...this.peers.filter((x) => !known.has(x.nodeId))];
        })
        .catch((err: unknown) => this.log.debug({ err }, 'image holders not refreshed'))
        .finally(() => {
          this.askedAt = Date.now();
          this.asking = undefined;
        });
      await this.asking;
    }
    return this.peers;
  }

  async forLayer(index: number): Promise<ImagePeer[]> {
    const peers = await this.fresh();
    const n = peers.length;
    const load = (p: ImagePeer) => this.busy.get(p.nodeId) ?? 0;
    return peers
      .map((p, k) => ({ p, turn: (((k - index) % n) + n) % n }))
      .sort((a, b) => load(a.p) - load(b.p) || a.turn - b.turn)
      .map((x) => x.p);
  }

  /** Counts a transfer from `p` while `fn` runs. */
  async using<T>(p: ImagePeer, fn: () => Promise<T>): Promise<T> {
    this.busy.set(p.nodeId, (this.busy.get(p.nodeId) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      this.busy.set(p.nodeId, (this.busy.get(p.nodeId) ?? 1) - 1);
    }
  }
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
  opts: PeerFetchOptions = {},
): Promise<PeerFetchResult> {
  if (!peers.length) throw new Error('no peer holds it');
  const holders = new HolderList(peers, opts, log);
  const result: PeerFetchResult = { bytesFrom: new Map(), refused: [] };
  const count = (p: ImagePeer, n: number) => result.bytesFrom.set(p.nodeId, (result.bytesFrom.get(p.nodeId) ?? 0) + n);
  const failures: string[] = [];
  /** Tries `fn` on each of `order` until one works. */
  const eachPeer = async <T>(order: ImagePeer[], what: string, fn: (p: ImagePeer) => Promise<T>): Promise<T> => {
    for (const p of order) {
      try {
        return await holders.using(p, () => fn(p));
      } catch (e) {
        if (e instanceof NotYet) continue;
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
    throw new Error(`${what}: ${failures.slice(-order.length).join('; ')}`);
  };

  if (!store.blobs.has(imageId))
    await eachPeer(peers, imageId, async (p) => {
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
    const missing = diffIds.map((d, i) => ({ d, i })).filter(({ d }) => !store.layers.has(d));
    const from = missing.length ? (opts.startAt ?? 0) % missing.length : 0;
    const todo = [...missing.slice(from), ...missing.slice(0, from)];
    // A fetching peer has no layer list: the blobs named by the first whole holder that answers.
    const listFor = (p: ImagePeer) => (p.partial ? eachPeer(peers, imageId, layersOf) : layersOf(p));
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const { d, i } = todo[next++];
        if (store.layers.has(d)) continue;
        await eachPeer(await holders.forLayer(i), d, async (p) => {
          const layers = await listFor(p);
          const blob = layers[i];
          if (layers.length !== diffIds.length || !blob) throw new Error('its layer list does not match the config');
          const res = await get(p, `/v1/blobs/${blob.digest}`, tls).catch((e: unknown) => {
            throw p.partial && /answered 404/.test((e as Error).message) ? new NotYet() : e;
          });
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
    // In the same turn: a report built on the image's arrival already says private.
    if (opts.private) store.setPrivate(imageId, true);
  } finally {
    unpin();
  }
  return result;
}
