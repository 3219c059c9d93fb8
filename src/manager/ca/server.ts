import * as grpc from '@grpc/grpc-js';
import type { Node } from '../../cluster/types.js';
import type {
  Empty,
  RpcHandlers,
  IssueRequest,
  IssueResponse,
  PeerIdentity,
  RenewRequest,
  RenewResponse,
  RootCAResponse,
} from '../../cluster/rpc.js';
import { SWARM_PORT } from '../../cluster/rpc.js';
import type { Store } from '../store/store.js';
import { newSwarmId } from '../../util/ids.js';
import { signNodeCert, DEFAULT_NODE_CERT_EXPIRY_MS, type NodeCertRequest, type RootCAMaterial } from './root-ca.js';
import { tokensEqual } from './tokens.js';
import type { Logger } from '../../util/log.js';

export interface CAServerDeps {
  store: Store;
  log: Logger;
  clusterId: string;
  /** The signing root; during a rotation also the new root cross-signed by the old one. */
  ca(): RootCAMaterial & { intermediate?: string };
  /** The root the cluster shows (the old one until a rotation ends): what joiners check their token against. */
  shownRoot(): string;
  /** The CA of etcd's peer and client TLS: the swarm's first root, kept through rotations. */
  etcdCA(): RootCAMaterial;
  identify(call: grpc.ServerUnaryCall<unknown, unknown>): PeerIdentity | undefined;
}

/** Node certificate lifetime from the cluster spec (nanoseconds there). */
export function nodeCertExpiryMs(store: Store): number {
  const ns = store.list('cluster')[0]?.Spec.CAConfig?.NodeCertExpiry;
  return ns ? ns / 1e6 : DEFAULT_NODE_CERT_EXPIRY_MS;
}

/**
 * The CA service: hands out the root certificate to anyone (the joiner checks it against its
 * token), issues certificates for a valid join token, renews them for current members.
 */
export function caHandlers(d: CAServerDeps): RpcHandlers<'CA'> {
  return {
    GetRootCACertificate: (
      _call: grpc.ServerUnaryCall<Empty, RootCAResponse>,
      cb: grpc.sendUnaryData<RootCAResponse>,
    ) => cb(null, { certificate: d.shownRoot() }),

    IssueNodeCertificate: async (
      call: grpc.ServerUnaryCall<IssueRequest, IssueResponse>,
      cb: grpc.sendUnaryData<IssueResponse>,
    ) => {
      try {
        const cluster = d.store.get('cluster', d.clusterId);
        const token = call.request.token ?? '';
        let role: 'manager' | 'worker' | undefined;
        if (cluster && tokensEqual(token, cluster.JoinTokens.Manager)) role = 'manager';
        else if (cluster && tokensEqual(token, cluster.JoinTokens.Worker)) role = 'worker';
        if (!role)
          return cb({
            code: grpc.status.INVALID_ARGUMENT,
            details: 'A valid join token is necessary to join this cluster',
          });
        const nodeId = newSwarmId();
        const addr = call.request.addr;
        const certificate = await issue(d, {
          csrPem: call.request.csr,
          nodeId,
          role,
          clusterId: d.clusterId,
          addresses: addr ? [addr] : [],
          expiryMs: nodeCertExpiryMs(d.store),
        });
        const now = new Date().toISOString();
        const node: Node = {
          ID: nodeId,
          Version: { Index: 0 },
          CreatedAt: now,
          UpdatedAt: now,
          Spec: { Labels: {}, Role: role, Availability: 'active' },
          Status: { State: 'unknown', Addr: addr },
          ...(role === 'manager'
            ? { ManagerStatus: { Reachability: 'unknown' as const, Addr: `${addr}:${SWARM_PORT}` } }
            : {}),
        };
        const etcd = role === 'manager' ? await etcdCert(d, call.request.csr, nodeId, addr) : {};
        await d.store.commit([{ kind: 'nodes', op: 'create', object: node }]);
        d.log.info({ node: nodeId, role, addr }, 'issued node certificate');
        cb(null, { nodeId, certificate, role, clusterId: d.clusterId, ...etcd });
      } catch (e) {
        cb({ code: grpc.status.INTERNAL, details: (e as Error).message });
      }
    },

    RenewNodeCertificate: async (
      call: grpc.ServerUnaryCall<RenewRequest, RenewResponse>,
      cb: grpc.sendUnaryData<RenewResponse>,
    ) => {
      try {
        const id = d.identify(call);
        if (!id) return cb({ code: grpc.status.UNAUTHENTICATED, details: 'no valid swarm certificate' });
        const node = d.store.get('nodes', id.nodeId);
        if (!node)
          return cb({
            code: grpc.status.PERMISSION_DENIED,
            details: `node ${id.nodeId} is not a member of this swarm`,
          });
        const role = node.Spec.Role;
        const addr = node.ManagerStatus?.Addr?.replace(/:\d+$/, '') ?? node.Status.Addr;
        const certificate = await issue(d, {
          csrPem: call.request.csr,
          nodeId: id.nodeId,
          role,
          clusterId: d.clusterId,
          addresses: addr ? [addr] : [],
          expiryMs: nodeCertExpiryMs(d.store),
        });
        const etcd = role === 'manager' ? await etcdCert(d, call.request.csr, id.nodeId, addr) : {};
        cb(null, { certificate, role, ...etcd });
      } catch (e) {
        cb({ code: grpc.status.INTERNAL, details: (e as Error).message });
      }
    },
  };
}

/** A node certificate from the signing root, followed by the rotation's cross-signed root while one runs. */
async function issue(d: CAServerDeps, req: NodeCertRequest): Promise<string> {
  const ca = d.ca();
  return (await signNodeCert(ca, req)) + (ca.intermediate ?? '');
}

async function etcdCert(d: CAServerDeps, csrPem: string, nodeId: string, addr: string | undefined) {
  const ca = d.etcdCA();
  const etcdCertificate = await signNodeCert(ca, {
    csrPem,
    nodeId,
    role: 'manager',
    clusterId: d.clusterId,
    addresses: addr ? [addr] : [],
    expiryMs: nodeCertExpiryMs(d.store),
  });
  return { etcdCertificate, etcdCA: ca.certPem };
}
