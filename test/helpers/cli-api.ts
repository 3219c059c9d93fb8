import { Router } from '../../src/api/router.js';
import { SERVER_HEADERS } from '../../src/api/version.js';
import { run, type RunResult } from '../../src/util/run.js';

/**
 * For tests that drive the real docker CLI against a few API routes on an in-memory store:
 * a router that already answers what the CLI asks before anything else, and the CLI itself.
 */

/** A router with `/_ping` and `/version` (as a 28.0 daemon); the test mounts its routes on it. */
export function cliRouter(): Router {
  const router = new Router();
  const ping = () => ({ body: 'OK', headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  router.get('/_ping', ping);
  router.head('/_ping', ping);
  router.get('/version', () => ({
    body: {
      ApiVersion: SERVER_HEADERS['Api-Version'],
      Version: '28.0.0',
      MinAPIVersion: '1.24',
      Os: 'linux',
      Arch: 'amd64',
    },
  }));
  return router;
}

/** The real docker CLI against the API on a unix socket, never throwing (check .code). */
export function dockerAt(socket: string, args: string[], input?: string): Promise<RunResult> {
  return run('/usr/local/bin/docker', args, {
    env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CLI_HINTS: 'false' },
    allowFail: true,
    input,
  });
}
