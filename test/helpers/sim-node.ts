/**
 * A simulated swarm node's join, as `docker swarm join` does it: fetch the root CA, check it
 * against the token's digest, then send a CSR with the token. Used by bench/sim/sim-nodes.ts
 * (many nodes, each an AgentSession) and by tests that speak the dispatcher's RPCs raw.
 */
import * as grpc from '@grpc/grpc-js';
import { clientCredentials, insecureCredentials, RpcClient } from '../../src/cluster/rpc.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/cluster/pki.js';
import { parseJoinToken, rootDigest } from '../../src/manager/ca/tokens.js';
import type { NodeDescription } from '../../src/cluster/types.js';

/** A joined node's mutual-TLS material: the swarm root, its certificate and its key (PEM). */
export interface SimNodeTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** The swarm's root CA from `manager` (a gRPC target), refused unless it matches the token. */
export async function fetchRootCA(manager: string, token: string): Promise<string> {
  const insecure = new RpcClient('CA', manager, insecureCredentials());
  try {
    const rootPem = (await insecure.call('GetRootCACertificate', {}, 10_000)).certificate;
    if (rootDigest(rootPem) !== parseJoinToken(token).digest) throw new Error('remote CA does not match the token');
    return rootPem;
  } finally {
    insecure.close();
  }
}

/** Joins one node: a new key, its certificate signed by the swarm CA for the join token. */
export async function joinSimNode(
  manager: string,
  token: string,
  rootPem: string,
  name: string,
  timeoutMs = 60_000,
): Promise<{ nodeId: string; tls: SimNodeTls }> {
  const keys = await generateKeyPair();
  const keyPem = await privateKeyToPem(keys.privateKey);
  const ca = new RpcClient('CA', manager, clientCredentials(Buffer.from(rootPem)));
  try {
    const issued = await ca.call(
      'IssueNodeCertificate',
      { csr: await createCsr(keys), token, addr: '127.0.0.1' },
      timeoutMs,
    );
    return {
      nodeId: issued.nodeId,
      tls: { ca: Buffer.from(rootPem), cert: Buffer.from(issued.certificate), key: Buffer.from(keyPem) },
    };
  } catch (e) {
    throw new Error(`${name}: join failed: ${(e as grpc.ServiceError).details ?? (e as Error).message}`);
  } finally {
    ca.close();
  }
}

/** What a simulated node says of itself in its session: big enough for any replica count. */
export function simNodeDescription(name: string, rootPem: string): NodeDescription {
  return {
    Hostname: name,
    Platform: { Architecture: 'x86_64', OS: 'linux' },
    Resources: { NanoCPUs: 64e9, MemoryBytes: 256 * 2 ** 30 },
    Engine: { EngineVersion: 'simulated', Plugins: [] },
    TLSInfo: { TrustRoot: rootPem, CertIssuerSubject: '', CertIssuerPublicKey: '' },
  };
}
