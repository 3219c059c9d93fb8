import path from 'node:path';
import type { TestDaemon } from '../test/helpers/daemon.js';

/**
 * The Prometheus text of a manager's etcd member (its client port inside the manager's netns,
 * with the node's swarm certificates); '' when it does not answer.
 */
export async function etcdMetricsText(d: TestDaemon): Promise<string> {
  const certs = path.join(d.dataRoot, 'swarm/certificates');
  const r = await d.inNs(
    'curl',
    [
      '-s',
      '--cacert',
      `${certs}/swarm-root-ca.crt`,
      '--cert',
      `${certs}/swarm-node.crt`,
      '--key',
      `${certs}/swarm-node.key`,
      'https://127.0.0.1:2379/metrics',
    ],
    { allowFail: true },
  );
  return r.stdout;
}
