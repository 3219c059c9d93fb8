import fs from 'node:fs';
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { createRootCA, signNodeCert } from '../../src/manager/ca/root-ca.js';
import { createCsr, generateKeyPair, privateKeyToPem } from '../../src/cluster/pki.js';
import { EtcdMember, etcdClient, waitForEtcd, type EtcdClientTls } from '../../src/manager/store/etcd-member.js';
import type { Logger } from '../../src/util/log.js';
import { uniqueName } from './netns.js';
import { TEST_ROOT } from './daemon.js';
import { freePort } from './free-port.js';

/** A one-member etcd (Debian etcd-server) on loopback, with TLS from a fresh swarm CA. */
export interface TestEtcd {
  /** Its certificates, data and pid file (etcd.pid). */
  dir: string;
  member: EtcdMember;
  /** A new client of this member; stop() closes it. */
  client(): Etcd3;
  /** Closes every client, stops etcd and removes its files. */
  stop(): Promise<void>;
}

export async function startTestEtcd(prefix: string, log: Logger): Promise<TestEtcd> {
  const dir = path.join(TEST_ROOT, uniqueName(prefix));
  fs.mkdirSync(dir, { recursive: true });
  const ca = await createRootCA();
  const keys = await generateKeyPair();
  const cert = await signNodeCert(ca, {
    csrPem: await createCsr(keys),
    nodeId: 'm1',
    role: 'manager',
    clusterId: 'c1',
  });
  const keyPem = await privateKeyToPem(keys.privateKey);
  fs.writeFileSync(path.join(dir, 'ca.crt'), ca.certPem);
  fs.writeFileSync(path.join(dir, 'node.crt'), cert);
  fs.writeFileSync(path.join(dir, 'node.key'), keyPem);
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const member = new EtcdMember(
    {
      name: 'm1',
      dataDir: path.join(dir, 'etcd'),
      advertiseAddr: '127.0.0.1',
      certFile: path.join(dir, 'node.crt'),
      keyFile: path.join(dir, 'node.key'),
      caFile: path.join(dir, 'ca.crt'),
      clusterToken: 'c1',
      logFile: path.join(dir, 'etcd.log'),
      pidFile: path.join(dir, 'etcd.pid'),
      clientPort,
      peerPort,
    },
    log,
  );
  const clients: Etcd3[] = [];
  const stop = async () => {
    for (const c of clients) c.close();
    await member.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const tls: EtcdClientTls = { ca: Buffer.from(ca.certPem), cert: Buffer.from(cert), key: Buffer.from(keyPem) };
  const client = () => {
    const c = etcdClient([`https://127.0.0.1:${clientPort}`], tls);
    clients.push(c);
    return c;
  };
  try {
    await member.start();
    await waitForEtcd(client(), 20_000, member);
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, member, client, stop };
}
