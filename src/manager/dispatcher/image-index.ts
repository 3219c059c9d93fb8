import * as grpc from '@grpc/grpc-js';
import type { Node, NodeImage } from '../../cluster/types.js';
import type {
  Empty,
  FindImageRequest,
  FindImageResponse,
  ReportImagesRequest,
  RpcHandlers,
} from '../../cluster/rpc.js';
import type { Logger } from '../../util/log.js';
import type { Store } from '../store/store.js';
import { answerReport, reportingNode, unauthenticated, updateOwnNode, type Identify } from './own-node-report.js';

/** Whether `img` is the image `digest` names: its ID, or a manifest digest it was pulled by. */
const hasDigest = (img: NodeImage, digest: string) =>
  img.Id === digest || img.Refs.some((r) => r.endsWith(`@${digest}`));

/**
 * Which image a reference means in the swarm and who holds it. A digest decides; a tag may
 * name different images on different nodes (each loaded its own): the one most nodes hold wins.
 */
export function findImage(nodes: Node[], req: FindImageRequest, exclude?: string): FindImageResponse {
  const ready = nodes.filter((n) => n.ID !== exclude && n.Status.State === 'ready' && n.ImageShare && n.Status.Addr);
  const byId = new Map<string, Node[]>();
  for (const n of ready)
    for (const img of n.ImageShare!.Images) {
      const match = req.digest ? hasDigest(img, req.digest) : !!req.ref && img.Refs.includes(req.ref);
      if (match) byId.set(img.Id, [...(byId.get(img.Id) ?? []), n]);
    }
  const best = [...byId].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))[0];
  if (!best) return { holders: [] };
  return {
    imageId: best[0],
    holders: best[1].map((n) => ({ nodeId: n.ID, addr: `${n.Status.Addr}:${n.ImageShare!.Port}` })),
  };
}

/**
 * ReportImages: a node publishes the images it holds on its own node object (the caller's
 * certificate names the node). FindImage: the nodes holding an image, for a node that lacks
 * it (or the API resolving a service's image to a digest).
 */
export function imageIndexHandlers(
  store: Store,
  identify: Identify,
  log: Logger,
): Pick<RpcHandlers<'Dispatcher'>, 'ReportImages' | 'FindImage'> {
  return {
    ReportImages: (call: grpc.ServerUnaryCall<ReportImagesRequest, Empty>, cb: grpc.sendUnaryData<Empty>) => {
      const nodeId = reportingNode(store, identify, call as grpc.ServerUnaryCall<unknown, unknown>);
      if (!nodeId) return cb(unauthenticated());
      const share = {
        Port: call.request.share.Port,
        Images: call.request.share.Images.map((i) => ({ Id: i.Id, Refs: i.Refs.map(String) })),
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
      cb(null, findImage(store.view('nodes'), call.request, nodeId));
    },
  };
}
