import path from 'node:path';
import { run } from '../../src/util/run.js';
import { REPO_ROOT, type TestDaemon } from './daemon.js';

export const PUSH_MICRO = path.join(REPO_ROOT, 'scripts/push-micro');

/**
 * Builds micro (examples/micro/build.ts), loads it into `daemon` and pushes it to the registry
 * at `registryHostPort` through that daemon, with scripts/push-micro. The daemon must reach the
 * registry (same netns, and `--insecure-registry` unless it is on 127.0.0.0/8 or localhost).
 * Returns the pushed reference, `HOST:PORT/micro:1.0.0`.
 */
export async function pushMicro(daemon: Pick<TestDaemon, 'socket'>, registryHostPort: string): Promise<string> {
  await run(PUSH_MICRO, [registryHostPort, daemon.socket], { env: { ...process.env, DOCKER_CLI_HINTS: 'false' } });
  return `${registryHostPort}/micro:1.0.0`;
}
