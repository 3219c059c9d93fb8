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

export interface RegistryOptions {
  /** HOST:PORT it listens on inside the namespace (default 127.0.0.1:5000). */
  addr?: string;
  /** More top-level configuration lines, e.g. an `auth:` section. */
  extraConfig?: string[];
  /** What GET /v2/ answers once it serves: 200, or 401 behind token auth. */
  readyStatus?: number;
}

/** Debian's docker-registry (distribution v2) inside `ns` (a port: on 127.0.0.1), storage in a temp dir. */
export async function startRegistry(ns: string, opts: number | RegistryOptions = {}): Promise<TestRegistry> {
  const o = typeof opts === 'number' ? { addr: `127.0.0.1:${opts}` } : opts;
  const address = o.addr ?? '127.0.0.1:5000';
  const dir = path.join(TEST_ROOT, uniqueName('registry'));
  fs.mkdirSync(dir, { recursive: true });
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dir}/data`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${address}`,
      ...(o.extraConfig ?? []),
      '',
    ].join('\n'),
  );
  const child = startProcess(
    'nsenter',
    [`--net=/run/netns/${ns}`, '--', 'docker-registry', 'serve', config],
    path.join(dir, 'registry.log'),
  );
  await waitFor(`registry in ${ns}`, async () => {
    if (child.exitCode !== null)
      throw new Error(`docker-registry exited: ${fs.readFileSync(path.join(dir, 'registry.log'), 'utf8')}`);
    const r = await inNetns(ns, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${address}/v2/`], {
      allowFail: true,
    });
    return r.stdout === String(o.readyStatus ?? 200);
  });
  return {
    address,
    async stop() {
      await stopProcess(child.pid);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
