import * as grpc from '@grpc/grpc-js';
import type { Node, NodeImage } from '../../cluster/types.js';
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
import { answerReport, reportingNode, unauthenticated, updateOwnNode, type Identify } from './own-node-report.js';
import { mayHavePrivateImage } from './image-access.js';

/** Whether `img` is the image `digest` names: its ID, or a manifest digest it was pulled by. */
const hasDigest = (img: NodeImage, digest: string) =>
  img.Id === digest || img.Refs.some((r) => r.endsWith(`@${digest}`));

/**
 * Which image a reference means in the swarm and who holds it. A digest decides; a tag may
 * name different images on different nodes (each loaded its own): the one most nodes hold wins.
 * A node holding it privately (pulled with credentials) counts only when `mayHave` allows
 * the asker that image (image-access.ts); without `mayHave`, never.
 */
export function findImage(
  nodes: Node[],
  req: FindImageRequest,
  exclude?: string,
  mayHave?: (imageId: string, refs: string[]) => boolean,
): FindImageResponse {
  const ready = nodes.filter((n) => n.ID !== exclude && n.Status.State === 'ready' && n.ImageShare && n.Status.Addr);
  const byId = new Map<string, Node[]>();
  const privately = new Set<string>();
  for (const n of ready)
    for (const img of n.ImageShare!.Images) {
      const match = req.digest ? hasDigest(img, req.digest) : !!req.ref && img.Refs.includes(req.ref);
      if (!match || (img.Private && !mayHave?.(img.Id, img.Refs))) continue;
      byId.set(img.Id, [...(byId.get(img.Id) ?? []), n]);
      if (img.Private) privately.add(img.Id);
    }
  const best = [...byId].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))[0];
  if (!best) return { holders: [] };
  const peer = (n: Node) => ({ nodeId: n.ID, addr: `${n.Status.Addr}:${n.ImageShare!.Port}` });
  if (privately.has(best[0])) return { imageId: best[0], holders: best[1].map(peer), private: true };
  // Nodes fetching it serve the layers they got so far: the first holder is not everyone's only source.
  const partial = ready.filter((n) => !best[1].includes(n) && n.ImageShare!.Fetching?.includes(best[0]));
  return {
    imageId: best[0],
    holders: best[1].map(peer),
    ...(partial.length ? { partial: partial.map(peer) } : {}),
  };
}

/**
 * ReportImages: a node publishes the images it holds on its own node object (the caller's
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
      const write = updateOwnNode(store, nodeId, (n) => {
        if (JSON.stringify(n.ImageShare) === JSON.stringify(share)) return false;
        n.ImageShare = share;
        return true;
      }).then((wrote) => wrote && log.debug({ node: nodeId, images: share.Images.length }, 'node images reported'));
      answerReport(write, cb);
    },
    FindImage: (call: grpc.ServerUnaryCall<FindImageRequest, FindImageResponse>, cb) => {
      const nodeId = reportingNode(store, identify, call as grpc.ServerUnaryCall<unknown, unknown>);
      if (!nodeId) return cb(unauthenticated());
      cb(null, findImage(store.view('nodes'), call.request, nodeId, mayHave(nodeId)));
    },
    MayServeImage: (call: grpc.ServerUnaryCall<MayServeImageRequest, MayServeImageResponse>, cb) => {
      const server = reportingNode(store, identify, call as grpc.ServerUnaryCall<unknown, unknown>);
      if (!server) return cb(unauthenticated());
      const { nodeId, imageId, refs } = call.request;
      cb(null, { allowed: mayHave(nodeId)(imageId, refs) });
    },
  };
}
