import fs from 'node:fs';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { createRootCA, signNodeCert, type RootCAMaterial } from '../../src/manager/ca/root-ca.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/cluster/pki.js';
import {
  EtcdMember,
  etcdClient,
  peerUrl,
  waitForEtcd,
  type EtcdClientTls,
} from '../../src/manager/store/etcd-member.js';
import { retryReconfig } from '../../src/manager/store/etcd-reconfig.js';
import type { Logger } from '../../src/util/log.js';
import { uniqueName } from './netns.js';
import { TEST_ROOT } from './daemon.js';
import { freePort } from './free-port.js';

/** One member of a test etcd on loopback: its process, ports and pid file. */
export interface TestEtcdMember {
  name: string;
  member: EtcdMember;
  clientPort: number;
  peerPort: number;
  pidFile: string;
}

/** An etcd (Debian etcd-server) of one or more members on loopback, with TLS from a fresh swarm CA. */
export interface TestEtcdCluster {
  /** Its certificates, data and pid files. */
  dir: string;
  members: TestEtcdMember[];
  /** A new client of member `i` (the first by default); stop() closes it. */
  client(i?: number): Etcd3;
  /** Closes every client, stops every member and removes the files. */
  stop(): Promise<void>;
}

/** The one-member form most tests use. */
export interface TestEtcd {
  dir: string;
  member: EtcdMember;
  client(): Etcd3;
  stop(): Promise<void>;
}

export async function startTestEtcd(prefix: string, log: Logger): Promise<TestEtcd> {
  const c = await startTestEtcdCluster(prefix, log, 1);
  return { dir: c.dir, member: c.members[0].member, client: () => c.client(0), stop: c.stop };
}

/** A manager certificate (SAN swarm-manager, as etcd's peers require) written as node.crt/node.key in `dir`. */
async function writeMemberCert(ca: RootCAMaterial, dir: string, nodeId: string): Promise<EtcdClientTls> {
  const keys = await generateKeyPair();
  const cert = await signNodeCert(ca, { csrPem: await createCsr(keys), nodeId, role: 'manager', clusterId: 'c1' });
  const keyPem = await privateKeyToPem(keys.privateKey);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'ca.crt'), ca.certPem);
  fs.writeFileSync(path.join(dir, 'node.crt'), cert);
  fs.writeFileSync(path.join(dir, 'node.key'), keyPem);
  return { ca: Buffer.from(ca.certPem), cert: Buffer.from(cert), key: Buffer.from(keyPem) };
}

/**
 * `size` members: the first starts a cluster, each next one is added (member add) and joins it,
 * as a manager joining a swarm does.
 */
export async function startTestEtcdCluster(prefix: string, log: Logger, size: number): Promise<TestEtcdCluster> {
  const dir = path.join(TEST_ROOT, uniqueName(prefix));
  const ca = await createRootCA();
  const members: TestEtcdMember[] = [];
  const clients: Etcd3[] = [];
  let tls: EtcdClientTls | undefined;
  const client = (i = 0) => {
    const c = etcdClient([`https://127.0.0.1:${members[i].clientPort}`], tls!);
    clients.push(c);
    return c;
  };
  const stop = async () => {
    for (const c of clients) c.close();
    await Promise.all(members.map((m) => m.member.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    let initialCluster: string | undefined;
    for (let i = 0; i < size; i++) {
      const name = `m${i + 1}`;
      // One member keeps its files in `dir` itself (tests read dir/etcd.pid).
      const mdir = size === 1 ? dir : path.join(dir, name);
      const certs = await writeMemberCert(ca, mdir, name);
      tls ??= certs;
      const [clientPort, peerPort] = [await freePort(), await freePort()];
      if (i > 0) {
        // As a joining manager: etcd refuses a change until the last member is healthy (strict reconfig check).
        const c0 = client(0);
        const added = await retryReconfig('member add', (o) =>
          c0.cluster.memberAdd({ peerURLs: [peerUrl('127.0.0.1', peerPort)] }, o),
        );
        initialCluster = added.members.map((m) => `${m.name || name}=${m.peerURLs[0]}`).join(',');
      }
      const pidFile = path.join(mdir, 'etcd.pid');
      const member = new EtcdMember(
        {
          name,
          dataDir: path.join(mdir, 'etcd'),
          advertiseAddr: '127.0.0.1',
          certFile: path.join(mdir, 'node.crt'),
          keyFile: path.join(mdir, 'node.key'),
          caFile: path.join(mdir, 'ca.crt'),
          clusterToken: 'c1',
          initialCluster,
          logFile: path.join(mdir, 'etcd.log'),
          pidFile,
          clientPort,
          peerPort,
        },
        log,
      );
      members.push({ name, member, clientPort, peerPort, pidFile });
      await member.start();
      await waitForEtcd(client(i), 20_000, member);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, members, client, stop };
}
