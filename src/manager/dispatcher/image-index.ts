import * as grpc from '@grpc/grpc-js';
import type { Node, NodeImage, NodeImageShare, NodeImages } from '../../cluster/types.js';
import type {
  Empty,
  FindImageRequest,
  FindImageResponse,
  MayServeImageRequest,
  MayServeImageResponse,
  ReportImagesRequest,
  RpcHandlers,
} from '../../cluster/rpc.js';
import type { Logger } from '../../util/log.js';
import type { Store } from '../store/store.js';
import { retryOnConflict } from '../store/retry.js';
import { answerReport, reportingNode, unauthenticated, type Identify } from './own-node-report.js';
import { mayHavePrivateImage } from './image-access.js';

/** Whether `img` is the image `digest` names: its ID, or a manifest digest it was pulled by. */
const hasDigest = (img: NodeImage, digest: string) =>
  img.Id === digest || img.Refs.some((r) => r.endsWith(`@${digest}`));

/** The images a node last reported, looked up by node ID (the store's `nodeImages`). */
export type ImagesOf = (nodeId: string) => NodeImageShare | undefined;

/**
 * Which image a reference means in the swarm and who holds it. A digest decides; a tag may
 * name different images on different nodes (each loaded its own): the one most nodes hold wins.
 * A node holding it privately (pulled with credentials) counts only when `mayHave` allows
 * the asker that image (image-access.ts); without `mayHave`, never.
 */
export function findImage(
  nodes: readonly Node[],
  imagesOf: ImagesOf,
  req: FindImageRequest,
  exclude?: string,
  mayHave?: (imageId: string, refs: string[]) => boolean,
): FindImageResponse {
  const ready = nodes.flatMap((n) => {
    const share = n.ID !== exclude && n.Status.State === 'ready' && n.Status.Addr ? imagesOf(n.ID) : undefined;
    return share ? [{ n, share }] : [];
  });
  const byId = new Map<string, typeof ready>();
  const privately = new Set<string>();
  for (const h of ready)
    for (const img of h.share.Images) {
      const match = req.digest ? hasDigest(img, req.digest) : !!req.ref && img.Refs.includes(req.ref);
      if (!match || (img.Private && !mayHave?.(img.Id, img.Refs))) continue;
      byId.set(img.Id, [...(byId.get(img.Id) ?? []), h]);
      if (img.Private) privately.add(img.Id);
    }
  const best = [...byId].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))[0];
  if (!best) return { holders: [] };
  const peer = (h: (typeof ready)[number]) => ({ nodeId: h.n.ID, addr: `${h.n.Status.Addr}:${h.share.Port}` });
  if (privately.has(best[0])) return { imageId: best[0], holders: best[1].map(peer), private: true };
  // Nodes fetching it serve the layers they got so far: the first holder is not everyone's only source.
  const partial = ready.filter((h) => !best[1].includes(h) && h.share.Fetching?.includes(best[0]));
  return {
    imageId: best[0],
    holders: best[1].map(peer),
    ...(partial.length ? { partial: partial.map(peer) } : {}),
  };
}

/** findImage over what the store holds now. */
export function findImageIn(
  store: Pick<Store, 'view' | 'viewOne'>,
  req: FindImageRequest,
  exclude?: string,
  mayHave?: (imageId: string, refs: string[]) => boolean,
): FindImageResponse {
  return findImage(store.view('nodes'), (id) => store.viewOne('nodeImages', id), req, exclude, mayHave);
}

/**
 * Stores a node's report when it differs from the stored one (no write, no event otherwise);
 * a write that lost to another is made again on the newer object. Resolves whether it wrote.
 */
async function storeNodeImages(store: Store, nodeId: string, share: NodeImageShare): Promise<boolean> {
  return retryOnConflict(
    async () => {
      const had = store.get('nodeImages', nodeId);
      if (had && JSON.stringify(shareOf(had)) === JSON.stringify(share)) return false;
      const now = new Date().toISOString();
      const object: NodeImages = {
        ID: nodeId,
        Version: had?.Version ?? { Index: 0 },
        CreatedAt: had?.CreatedAt ?? now,
        UpdatedAt: now,
        ...share,
      };
      await store.commit([{ kind: 'nodeImages', op: had ? 'update' : 'create', object }]);
      return true;
    },
    {
      exhausted: () => {
        throw new Error('node images kept changing');
      },
    },
  );
}

const shareOf = ({ Port, Images, Fetching }: NodeImageShare): NodeImageShare => ({
  Port,
  Images,
  ...(Fetching ? { Fetching } : {}),
});

/**
 * ReportImages: a node publishes the images it holds as its `nodeImages` object (the caller's
 * certificate names the node). FindImage: the nodes holding an image, for a node that lacks
 * it (or the API resolving a service's image to a digest). MayServeImage: a node about to
 * serve a private image asks whether the node asking it may have it.
 */
export function imageIndexHandlers(
  store: Store,
  identify: Identify,
  log: Logger,
): Pick<RpcHandlers<'Dispatcher'>, 'ReportImages' | 'FindImage' | 'MayServeImage'> {
  const mayHave = (nodeId: string) => (imageId: string, refs: string[]) =>
    mayHavePrivateImage(store.tasksBy('node', nodeId), (id) => store.get('services', id), nodeId, imageId, refs);
  return {
    ReportImages: (call: grpc.ServerUnaryCall<ReportImagesRequest, Empty>, cb: grpc.sendUnaryData<Empty>) => {
      const nodeId = reportingNode(store, identify, call as grpc.ServerUnaryCall<unknown, unknown>);
      if (!nodeId) return cb(unauthenticated());
      const share = {
        Port: call.request.share.Port,
        Images: call.request.share.Images.map((i) => ({
          Id: i.Id,
          Refs: i.Refs.map(String),
          ...(i.Private ? { Private: true } : {}),
        })),
        ...(call.request.share.Fetching?.length ? { Fetching: call.request.share.Fetching.map(String) } : {}),
      };
      const write = storeNodeImages(store, nodeId, share).then(
        (wrote) => wrote && log.debug({ node: nodeId, images: share.Images.length }, 'node images reported'),
      );
      answerReport(write, cb);
    },
    FindImage: (call: grpc.ServerUnaryCall<FindImageRequest, FindImageResponse>, cb) => {
      const nodeId = reportingNode(store, identify, call as grpc.ServerUnaryCall<unknown, unknown>);
      if (!nodeId) return cb(unauthenticated());
      cb(null, findImageIn(store, call.request, nodeId, mayHave(nodeId)));
    },
    MayServeImage: (call: grpc.ServerUnaryCall<MayServeImageRequest, MayServeImageResponse>, cb) => {
      const server = reportingNode(store, identify, call as grpc.ServerUnaryCall<unknown, unknown>);
      if (!server) return cb(unauthenticated());
      const { nodeId, imageId, refs } = call.request;
      cb(null, { allowed: mayHave(nodeId)(imageId, refs) });
    },
  };
}
