/**
 * The node's part in sharing images across the swarm: while in a swarm it serves its images'
 * blobs to the other nodes (engine/images/peer-server.ts, with the node certificate), reports
 * which images it holds to the managers (ReportImages, like its other state), and fetches an
 * image a task needs from the nodes the managers say hold it (FindImage, peer-fetch.ts).
 */
import { createHash } from 'node:crypto';
import type { Engine } from '../engine/engine.js';
import type { FindImageResponse } from '../cluster/rpc.js';
import { IMAGE_SHARE_PORT, type NodeImage } from '../cluster/types.js';
import { fetchImageFromPeers, type PeerFetchResult } from '../engine/images/peer-fetch.js';
import { ImagePeerServer, type PeerTls } from '../engine/images/peer-server.js';
import { formatReference, withDefaultTag, type ImageReference } from '../engine/images/reference.js';
import type { Logger } from '../util/log.js';
import { SerialQueue } from '../util/serial-queue.js';
import type { SwarmMembership } from './link.js';
import { ManagerConnection } from './manager-connection.js';

/** How often the node checks its certificate and its image list (a report goes only when they changed). */
const TICK_MS = 2000;
/** A burst of image changes (a `docker load` of several images, a pull's names) goes as one report. */
const CHANGE_COALESCE_MS = 100;
/** The same report again after this long, in case the managers' copy was lost (their store made anew). */
const REPORT_AGAIN_MS = 30_000;

export class ImageSharing {
  private readonly connection: ManagerConnection;
  private readonly server: ImagePeerServer;
  private timer?: NodeJS.Timeout;
  private servingAs?: { nodeId: string; cert: string };
  private reported?: { body: string; at: number };
  private busy = false;
  /** Something changed while a tick ran: tick again right after it, not at the next interval. */
  private again = false;
  private unsubscribe?: () => void;
  private changeTimer?: NodeJS.Timeout;
  private readonly reports = new SerialQueue();
  private readonly inflight = new Map<string, Promise<PeerFetchResult | undefined>>();
  /** Public images being fetched from peers now (reported: their finished layer blobs are served). */
  private readonly fetching = new Set<string>();

  constructor(
    private readonly engine: Engine,
    private readonly swarm: SwarmMembership,
    private readonly log: Logger,
    private readonly port = Number(process.env.SHOAL_IMAGE_SHARE_PORT) || IMAGE_SHARE_PORT,
  ) {
    this.connection = new ManagerConnection(() => this.swarm.agentTarget());
    // A private image goes to a peer only when the managers say so (manager/dispatcher/image-access.ts).
    this.server = new ImagePeerServer(
      engine.images,
      log,
      async (nodeId, imageId, refs) => {
        const { allowed } = await this.connection.call('MayServeImage', { nodeId, imageId, refs }, 10_000);
        return allowed;
      },
      // Layers of a public image still being fetched go to the nodes fetching it too.
      () => this.fetching,
    );
  }

  /** Bytes this node served to peers. */
  get bytesServed(): number {
    return this.server.bytesServed;
  }

  start(): void {
    this.timer = setInterval(() => this.tickSafely(), TICK_MS);
    // Image changes are reported at once: a peer may ask for a loaded or pulled image right
    // after. (The report is its own store object: it never moves the node's Version.)
    this.unsubscribe = this.engine.images.onChange(() => {
      this.changeTimer ??= setTimeout(() => {
        this.changeTimer = undefined;
        this.reportNow().catch((err: unknown) => this.log.debug({ err }, 'image report: next tick retries'));
      }, CHANGE_COALESCE_MS);
    });
    // A session (re)established: serve and report now, not at the next tick.
    this.swarm.link.onAssignments((_tasks, _files, changes) => {
      if (!changes) this.tickSafely();
    });
    this.tickSafely();
  }

  stop(): void {
    clearInterval(this.timer);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearTimeout(this.changeTimer);
    this.changeTimer = undefined;
    this.stopServing();
  }

  private stopServing(): void {
    this.server.close();
    this.servingAs = undefined;
  }

  private tickSafely(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.again = false;
    this.tick()
      .catch((err: unknown) => this.log.warn({ err }, 'image sharing: will retry'))
      .finally(() => {
        this.busy = false;
        if (this.again) this.tickSafely();
      });
  }

  private async tick(): Promise<void> {
    const target = this.swarm.agentTarget();
    if (!target) {
      // Left the swarm: nothing is served until the node is in one again.
      if (this.servingAs) this.stopServing();
      this.reported = undefined;
      return;
    }
    const tls = target.tls();
    const cert = tls.cert.toString('utf8');
    if (this.servingAs?.nodeId !== target.nodeId) {
      this.server.close();
      await this.server.listen(tls, this.port);
      this.servingAs = { nodeId: target.nodeId, cert };
      this.reported = undefined;
      this.log.info({ port: this.server.port }, 'serving image blobs to swarm peers');
    } else if (this.servingAs.cert !== cert) {
      this.server.setTls(tls);
      this.servingAs.cert = cert;
    }
    await this.report(target.nodeId);
  }

  private localImages(): NodeImage[] {
    const store = this.engine.images;
    return store
      .all()
      .map((img) => ({ Id: img.id, Refs: store.refsOf(img.id), ...(img.record.private ? { Private: true } : {}) }))
      .sort((a, b) => a.Id.localeCompare(b.Id));
  }

  /** Reports are built and sent one at a time: two in flight could land out of order, the older one last. */
  private report(nodeId: string): Promise<void> {
    return this.reports.run(() => this.reportOnce(nodeId));
  }

  private async reportOnce(nodeId: string): Promise<void> {
    const share = {
      Port: this.server.port!,
      Images: this.localImages(),
      ...(this.fetching.size ? { Fetching: [...this.fetching].sort() } : {}),
    };
    const body = `${nodeId} ${JSON.stringify(share)}`;
    if (this.reported?.body === body && Date.now() - this.reported.at < REPORT_AGAIN_MS) return;
    await this.connection.call('ReportImages', { share }, 10_000);
    this.reported = { body, at: Date.now() };
  }

  /** Reports now (an image arrived): peers may ask for it at once. */
  async reportNow(): Promise<void> {
    const target = this.swarm.agentTarget();
    if (target && this.server.port) await this.report(target.nodeId);
  }

  /** Which image `ref` means in the swarm and who holds it; a digest in the reference decides. */
  async locate(ref: ImageReference): Promise<FindImageResponse> {
    const full = withDefaultTag(ref);
    const req = full.digest ? { digest: full.digest } : { ref: formatReference(full) };
    return this.connection.call('FindImage', req, 10_000);
  }

  /**
   * Fetches the image `ref` names from the peers that hold it and gives it the reference's
   * names here. Undefined when no peer holds it; throws when holders exist but none could give it.
   */
  fetch(ref: ImageReference): Promise<PeerFetchResult | undefined> {
    // Tasks of one service on this node start together: one transfer for all of them.
    const key = formatReference(withDefaultTag(ref));
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchOnce(ref).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetchOnce(ref: ImageReference): Promise<PeerFetchResult | undefined> {
    const target = this.swarm.agentTarget();
    if (!target) return undefined;
    const found = await this.locate(ref);
    if (!found.imageId || !found.holders.length) return undefined;
    const tls: PeerTls = target.tls();
    const imageId = found.imageId;
    const t0 = Date.now();
    // Nodes that finish their own fetch meanwhile become holders too (they report at once).
    const refresh = async () => {
      const again = await this.locate({ ...ref, digest: imageId });
      if (again.imageId !== imageId) return [];
      return [...again.holders, ...(again.partial ?? []).map((p) => ({ ...p, partial: true }))];
    };
    // Nodes fetching together start at different layers (by node ID) and give each other what they got.
    const startAt = parseInt(createHash('sha256').update(target.nodeId).digest('hex').slice(0, 8), 16);
    if (!found.private) {
      this.fetching.add(imageId);
      this.tickSafely();
    }
    let result: PeerFetchResult;
    try {
      result = await fetchImageFromPeers(this.engine.images, imageId, found.holders, tls, this.log, {
        refresh,
        startAt,
        private: !!found.private,
      });
    } finally {
      this.fetching.delete(imageId);
      this.tickSafely();
    }
    nameImage(this.engine, ref, found.imageId);
    this.log.info(
      {
        image: imageId,
        from: Object.fromEntries(result.bytesFrom),
        refused: result.refused.length,
        seconds: (Date.now() - t0) / 1000,
      },
      'image fetched from peers',
    );
    await this.reportNow().catch(() => undefined);
    return result;
  }
}

/** Gives a fetched (or local) image the names of the reference that asked for it: tag, and digest. */
export function nameImage(engine: Engine, ref: ImageReference, imageId: string): void {
  const full = withDefaultTag(ref);
  if (full.digest) engine.images.setReference({ domain: full.domain, path: full.path, digest: full.digest }, imageId);
  else engine.images.setReference(full, imageId);
}
