import fs from 'node:fs';
import path from 'node:path';
import { startProcess, stopProcess, waitFor } from './process.js';
import { inNetns, uniqueName } from './netns.js';
import { TEST_ROOT } from './daemon.js';

export interface TestRegistry {
  /** HOST:PORT as seen from inside the namespace. */
  address: string;
  stop(): Promise<void>;
}

/** Debian's docker-registry (distribution v2) inside `ns`, on 127.0.0.1, storage in a temp dir. */
export async function startRegistry(ns: string, port = 5000): Promise<TestRegistry> {
  const dir = path.join(TEST_ROOT, uniqueName('registry'));
  fs.mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(config, [
    'version: 0.1',
    'log:',
    '  level: warn',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dir}/data`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n'));
  const child = startProcess('nsenter', [`--net=/run/netns/${ns}`, '--', 'docker-registry', 'serve', config], path.join(dir, 'registry.log'));
  const address = `127.0.0.1:${port}`;
  await waitFor(`registry in ${ns}`, async () => {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${fs.readFileSync(path.join(dir, 'registry.log'), 'utf8')}`);
    const r = await inNetns(ns, 'curl', ['-sf', `http://${address}/v2/`], { allowFail: true });
    return r.code === 0;
  });
  return {
    address,
    async stop() {
      await stopProcess(child.pid);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

